"""Assemble the report from finished records and write its directory atomically.

The files are first written into ``OUT.partial/final`` and then renamed to ``OUT`` in one
step, so ``OUT`` is either a complete report or absent; an older ``OUT`` is replaced only
once the new one is complete.
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from groundbench import __version__
from groundbench.errors import GroundbenchError
from groundbench.metrics import METRICS
from groundbench.metrics.aggregate import aggregate_by_tag
from groundbench.report import (
    render_markdown,
    render_report_json,
    render_samples_csv,
)
from groundbench.report.figures import GalleryItem, plot_gallery, plot_tag_bars
from groundbench.types import GroundingSample, Undefined

_LABEL_TO_CODE = {u.label: int(u) for u in Undefined}
_LABEL_TO_CODE[""] = 0


def aggregate_records(
    keys: Sequence[str],
    records: Sequence[Mapping[str, Any]],
    tags: Sequence[frozenset[str]],
    *,
    resamples: int,
    seed: int,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{key: {"all" | tag: Aggregate dict}}`` from per-sample records (aligned with ``tags``)."""
    out = {}
    for key in keys:
        values = np.array(
            [np.nan if r["values"][key] is None else r["values"][key] for r in records]
        )
        codes = np.array([_LABEL_TO_CODE[r["undefined"][key]] for r in records], dtype=np.int8)
        by_tag = aggregate_by_tag(values, codes, tags, resamples=resamples, seed=seed)
        out[key] = {
            t: agg.to_dict()
            for t, agg in sorted(by_tag.items(), key=lambda kv: (kv[0] != "all", kv[0]))
        }
    return out


def environment(
    device: torch.device, batch_size: int, num_workers: int, world_size: int
) -> dict[str, Any]:
    """Operational settings and versions: recorded, never hashed."""
    import numpy
    import scipy

    return {
        "device": str(device),
        "batch_size": batch_size,
        "num_workers": num_workers,
        "world_size": world_size,
        "versions": {
            "groundbench": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
        },
        "created_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    }


def gallery_samples(
    samples: Sequence[GroundingSample],
    records: Sequence[Mapping[str, Any]],
    key: str,
    seed: int,
    k: int = 3,
) -> list[tuple[GroundingSample, str]]:
    """Best, worst and random samples by metric ``key`` (seeded), with a panel label each."""
    higher = METRICS.meta(key.split("[")[0].split("@")[0]).get("higher_is_better", True)
    defined = [i for i, r in enumerate(records) if r["values"][key] is not None]
    order = sorted(
        defined, key=lambda i: (records[i]["values"][key] * (-1 if higher else 1), samples[i].id)
    )
    best, worst = order[:k], order[::-1][:k]
    rest = [i for i in defined if i not in best and i not in worst]
    rand = (
        list(np.random.default_rng(seed).choice(rest, size=min(k, len(rest)), replace=False))
        if rest
        else []
    )
    picked = (
        [(i, "best") for i in best]
        + [(i, "worst") for i in worst if i not in best]
        + [(int(i), "random") for i in rand]
    )
    return [(samples[i], f"{label} {key}={records[i]['values'][key]:.2f}") for i, label in picked]


def gallery_items(scorer, chosen: Sequence[tuple[GroundingSample, str]]) -> list[GalleryItem]:
    """Recompute the maps of the chosen samples and pair them with their images."""
    items = []
    for sample, label in chosen:
        try:
            image = sample.load_image()
        except GroundbenchError:
            continue
        heat = scorer.maps([sample], [image]).heatmap[0].float().cpu().numpy()
        h, w = scorer.size_of(sample)
        if (h, w) != image.shape[:2]:
            import skimage.transform

            image = (skimage.transform.resize(image, (h, w), order=1) * 255).astype(np.uint8)
        boxes = sample.boxes * np.array([w / sample.width, h / sample.height] * 2)
        title = f"{label}\n{sample.phrase[:40]}"
        items.append(GalleryItem(image=image, heatmap=heat, boxes=boxes, title=title))
    return items


def write_report_dir(
    out_dir: Path, work: Path, report: dict[str, Any], samples_csv: bytes, figure_writers
) -> None:
    """Write every file into ``work/final`` then move it to ``out_dir`` in one rename."""
    final = work / "final"
    shutil.rmtree(final, ignore_errors=True)
    (final / "figures").mkdir(parents=True)
    figures = [name for name, write in figure_writers if write(final / name) is not None]
    (final / "samples.csv").write_bytes(samples_csv)
    (final / "report.md").write_bytes(render_markdown(report, figures))
    (final / "report.json").write_bytes(render_report_json(report))
    if out_dir.exists():
        old = work / "previous"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
    os.replace(final, out_dir)
    shutil.rmtree(work, ignore_errors=True)


def figure_writers(scorer, samples, records, metrics, seed):
    """(file name, writer) pairs for the report's figures."""
    first = next(iter(metrics))
    writers = [
        (f"figures/tags_{_slug(first)}.png", lambda p: plot_tag_bars(p, first, metrics[first]))
    ]
    chosen = gallery_samples(samples, records, first, seed)

    def gallery(path: Path):
        items = gallery_items(scorer, chosen)
        return plot_gallery(path, items) if items else None

    writers.append(("figures/gallery.png", gallery))
    return writers


def _slug(key: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in key).strip("_")


__all__ = [
    "aggregate_records",
    "environment",
    "figure_writers",
    "render_samples_csv",
    "write_report_dir",
]
