"""Build a tiny evaluated study for the human-study tests: a generated synthetic set, two
baselines evaluated on it, a study file and its prepared folder."""

from __future__ import annotations

import json
from pathlib import Path

from groundbench.evaluate import evaluate
from groundbench.human.prepare import prepare
from groundbench.synthetic import PROBE_SPLITS, generate

TINY = {"scenes": {"train": 2, "val": 2, "test": 6} | {s: 1 for s in PROBE_SPLITS}}
PROTOCOL = "synth_test.albef"


def build_reports(root: Path) -> tuple[Path, list[Path]]:
    """Generate the data under ``root/data`` and evaluate two baselines; return (data, reports)."""
    data = generate(root / "data", TINY, seed=0, progress=False)
    reports = []
    for method in ("centre_prior", "uniform"):
        out = root / "reports" / method
        evaluate(PROTOCOL, method, out_dir=out, data_root=data, progress=False)
        reports.append(out)
    return data, reports


def write_study(folder: Path, data: Path, reports: list[Path], **extra) -> Path:
    """Write ``folder/study.yaml`` (JSON is YAML) comparing ``reports``."""
    folder.mkdir(parents=True, exist_ok=True)
    study = {
        "schema": 1,
        "about": "test study",
        "type": "pairwise",
        "methods": [str(r) for r in reports],
        "annotators": ["ann1", "ann2", "ann3"],
        "per_item": 2,
        "sample": {"n": 6},
        "gold_rate": 0.25,
        "rendering": {"width": 64},
        "data_root": str(data),
        "seed": 0,
    } | extra
    path = folder / "study.yaml"
    path.write_text(json.dumps(study), encoding="utf-8")
    return path


def build_study(root: Path) -> Path:
    """A prepared study folder under ``root/S``."""
    data, reports = build_reports(root)
    return prepare(write_study(root / "spec", data, reports), root / "S")
