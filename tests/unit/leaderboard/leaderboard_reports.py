"""Write valid schema-1 report directories (report.json + samples.csv) for leaderboard tests."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from groundbench.leaderboard import add_entry
from groundbench.metrics import display_key
from groundbench.metrics.aggregate import aggregate_by_tag
from groundbench.protocol import protocol_hash
from groundbench.types import Undefined

METRICS = [
    {"name": "pointing", "variant": "albef", "tolerance_px": 0.0},
    {"name": "box_acc", "iou": 0.5},
    {"name": "soft_iou"},
]


def canonical_protocol(
    split: str = "test",
    *,
    variant: str = "albef",
    control: str | None = None,
    include_tags: Sequence[str] = (),
    smooth_px: float = 0.0,
) -> dict[str, Any]:
    """A canonical synth protocol dict with every section the evaluate contract fills."""
    metrics = [dict(m) for m in METRICS]
    metrics[0]["variant"] = variant
    return {
        "schema": 1,
        "dataset": {"adapter": "native", "name": "synth", "split": split, "options": {}},
        "select": {
            "include_tags": list(include_tags),
            "exclude_tags": [],
            "min_area_fraction": 0.0,
        },
        "resolution": "image",
        "region": "boxes",
        "pipeline": {"normalise": "minmax", "smooth": {"sigma_px": smooth_px}},
        "metrics": metrics,
        "bootstrap": {"resamples": 200, "seed": 0},
        "control": control,
    }


def sample_ids(n: int, split: str = "test") -> list[str]:
    return [f"synth/{split}/{i:05d}" for i in range(n)]


def write_report(
    out: Path,
    values: Mapping[str, Sequence[float]],
    *,
    method: str = "centre_prior",
    fingerprint: str | None = None,
    supervision: str = "training-free",
    canonical: dict[str, Any] | None = None,
    name: str | None = None,
    ids: Sequence[str] | None = None,
    tags: Sequence[Sequence[str]] | None = None,
    dataset_fingerprint: str = "d" * 64,
    fingerprint_complete: bool | None = True,
) -> Path:
    """Write ``out/report.json`` and ``out/samples.csv``; NaN values are written as undefined.

    Args:
        out: report directory (created).
        values: metric name in ``METRICS`` (``pointing``, ``box_acc``, ``soft_iou``) → per-sample
            values; a metric left out gets the first metric's values.
    """
    canonical = canonical or canonical_protocol()
    split = canonical["dataset"]["split"]
    first = next(iter(values.values()))
    n = len(first)
    ids = list(ids or sample_ids(n, split))
    tags = [
        frozenset(t)
        for t in (tags or [("attribute",) if i % 2 else ("relational",) for i in range(n)])
    ]
    fingerprint = fingerprint or hashlib.sha256(method.encode()).hexdigest()
    keys, columns = [], {}
    for spec in canonical["metrics"]:
        key = display_key(spec["name"], {k: v for k, v in spec.items() if k != "name"})
        v = np.asarray(values.get(spec["name"], first), dtype=np.float64)
        und = np.where(np.isnan(v), int(Undefined.EMPTY_REGION), 0).astype(np.int8)
        keys.append(key)
        columns[key] = (v, und)
    order = np.argsort(ids, kind="stable")
    text = _samples_csv(
        [ids[i] for i in order],
        [tags[i] for i in order],
        {k: (v[order], u[order]) for k, (v, u) in columns.items()},
    )
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    h = protocol_hash(canonical)
    boot = canonical["bootstrap"]
    report = {
        "schema": 1,
        "groundbench_version": "0.1.0",
        "protocol": {
            "name": name or f"synth_{split}.albef",
            "id": h[:12],
            "hash": h,
            "canonical": canonical,
        },
        "dataset": {
            "adapter": "native",
            "name": "synth",
            "split": split,
            "fingerprint": dataset_fingerprint,
            "n_samples": n,
        },
        "method": {
            "spec": method,
            "name": method,
            "fingerprint": fingerprint,
            "supervision": supervision,
            **(
                {}
                if fingerprint_complete is None
                else {"fingerprint_complete": fingerprint_complete}
            ),
        },
        "metrics": {
            k: {
                tag: agg.to_dict()
                for tag, agg in aggregate_by_tag(
                    v, u, tags, resamples=boot["resamples"], seed=boot["seed"]
                ).items()
            }
            for k, (v, u) in columns.items()
        },
        "samples": {"file": "samples.csv", "n": n, "sha256": digest},
        "environment": {
            "device": "cpu",
            "batch_size": 32,
            "num_workers": 0,
            "world_size": 1,
            "versions": {"python": "3.11", "torch": "2", "numpy": "2"},
            "created_at": "2026-01-01T00:00:00+00:00",
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples.csv").write_text(text, encoding="utf-8", newline="")
    (out / "report.json").write_text(
        json.dumps(report, indent=2, allow_nan=False), encoding="utf-8"
    )
    return out


def _samples_csv(
    ids: list[str], tags: list[frozenset[str]], columns: Mapping[str, tuple[np.ndarray, np.ndarray]]
) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "tags", *[c for k in columns for c in (k, f"{k}:undefined")]])
    for i, sid in enumerate(ids):
        row: list[str] = [sid, ";".join(sorted(tags[i]))]
        for v, u in columns.values():
            row += ["", Undefined(int(u[i])).label] if u[i] else [repr(float(v[i])), ""]
        w.writerow(row)
    return buf.getvalue()


def rewrite_report(report_dir: Path, edit) -> None:
    """Apply ``edit(report_dict)`` to ``report_dir/report.json`` in place."""
    path = report_dir / "report.json"
    report = json.loads(path.read_text())
    edit(report)
    path.write_text(json.dumps(report, indent=2))


# method → (in-distribution pointing rate, compositional rate, blind rate)
RATES = {"model": (0.8, 0.6, 0.3), "centre_prior": (0.4, 0.4, 0.4)}


def populate_board(root, n: int = 40):
    """Write reports for RATES on synth test/compositional/blind and mg test; add them to a board."""
    rng = np.random.default_rng(0)
    board = root / "board"
    protocols = {
        "synth_test.albef": canonical_protocol("test"),
        "synth_compositional.albef": canonical_protocol("compositional"),
        "synth_test_blind.albef": canonical_protocol("test", control="blind"),
        "synth_test.mg": canonical_protocol("test", variant="mg"),
    }
    for method, rates in RATES.items():
        for (name, canonical), rate in zip(protocols.items(), (*rates, rates[0]), strict=True):
            hits = (rng.random(n) < rate).astype(np.float64)
            soft = rng.random(n)
            run = write_report(
                root / "runs" / f"{method}-{name}",
                {"pointing": hits, "box_acc": hits * (rng.random(n) < 0.7), "soft_iou": soft},
                method=method,
                supervision="box-free" if method == "model" else "training-free",
                canonical=canonical,
                name=name,
                dataset_fingerprint=("a" if "compositional" in name else "b") * 64,
            )
            add_entry(run, board)
    return board
