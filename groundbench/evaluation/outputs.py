"""Assemble the report from finished records and write its directory atomically.

The files are first written into ``OUT.partial/final`` and then renamed to ``OUT`` in one
step, so ``OUT`` is either a complete report or absent; an older ``OUT`` is replaced only
once the new one is complete.
"""

from __future__ import annotations

import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from groundbench import __version__
from groundbench.evaluation.gallery import GalleryKeeper, gallery_choice, gallery_items
from groundbench.evaluation.workdir import replace_out_dir
from groundbench.report import render_markdown, render_report_json
from groundbench.report.figures import plot_gallery, plot_tag_bars
from groundbench.report.records import Records


def environment(
    device: torch.device, batch_size: int, num_workers: int, world_size: int
) -> dict[str, Any]:
    """Operational settings and versions: recorded, never hashed.

    ``cpu`` is the CPU model the metric kernels compiled for: the last digits of float64
    sums (NSS, soft-IoU) follow its vector width.
    """
    import numba
    import numpy
    import scipy
    from llvmlite import binding

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
            "numba": numba.__version__,
        },
        "cpu": f"{platform.machine()} {binding.get_host_cpu_name()}",
        "created_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    }


def write_report_dir(
    out_dir: Path,
    work: Path,
    report: dict[str, Any],
    samples_csv: bytes,
    figure_writers,
    extra_files: dict[str, bytes] | None = None,
) -> None:
    """Write every file into ``work/final``, then move it to ``out_dir`` in one rename.

    ``extra_files`` maps file names to bytes (the split-level metrics' hits).

    An older report at ``out_dir`` is replaced; anything else there was refused before the
    run started (:func:`~groundbench.evaluation.workdir.check_out_dir`) and is refused again.
    """
    final = work / "final"
    shutil.rmtree(final, ignore_errors=True)
    (final / "figures").mkdir(parents=True)
    figures = [name for name, write in figure_writers if write(final / name) is not None]
    (final / "samples.csv").write_bytes(samples_csv)
    for name, data in (extra_files or {}).items():
        (final / name).write_bytes(data)
    (final / "report.md").write_bytes(render_markdown(report, figures))
    (final / "report.json").write_bytes(render_report_json(report))
    replace_out_dir(out_dir, final, work)


def figure_writers(scorer, samples, records: Records, metrics, seed: int, keeper: GalleryKeeper):
    """(file name, writer) pairs for the report's figures."""
    first = records.keys[0]
    writers = [
        (f"figures/tags_{_slug(first)}.png", lambda p: plot_tag_bars(p, first, metrics[first]))
    ]
    chosen = gallery_choice(records, first, keeper.higher_is_better, seed)

    def gallery(path: Path):
        items = gallery_items(scorer, samples, records, chosen, keeper)
        return plot_gallery(path, items) if items else None

    writers.append(("figures/gallery.png", gallery))
    return writers


def _slug(key: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in key).strip("_")


__all__ = ["environment", "figure_writers", "write_report_dir"]
