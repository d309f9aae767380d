"""A tiny hand-made dataset evaluated end to end; samples.csv and report.json are pinned.

Any change of a number (beyond 1e-12 relative: float64 sums may round differently on
another CPU's vector width), a column, a key or the protocol canonical form shows up here.
When the change is intended, rewrite the pinned files with
``pytest tests/golden --update-golden`` and review the diff.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from groundbench.evaluate import evaluate

GOLDEN = Path(__file__).with_name("evaluate_tiny")

PROTOCOL = """\
schema: 1
dataset: {adapter: native, name: tiny, split: test}
region: boxes
pipeline:
  normalise: minmax
  upsample: {mode: bilinear}
  threshold: {method: fraction_of_max, value: 0.5}
  regions: largest_component
metrics:
  - {name: pointing, variant: albef}
  - {name: pointing, tolerance_px: 4}
  - {name: box_acc, iou: 0.5}
  - {name: miou}
  - {name: soft_iou}
  - {name: auc}
  - {name: nss}
  - {name: spearman}
bootstrap: {resamples: 50, seed: 0}
"""

# (image index, phrase, boxes xyxy, tags); images are 40 wide, 32 high
RECORDS = [
    (0, "the square", [[4.0, 4.0, 12.0, 12.0]], ["attribute"]),
    (0, "the bar", [[14.0, 10.0, 30.0, 22.0]], ["relational"]),
    (1, "both dots", [[2.0, 2.0, 6.0, 6.0], [30.0, 24.0, 36.0, 30.0]], ["small"]),
    (1, "the whole picture", [[0.0, 0.0, 40.0, 32.0]], []),
    (2, "the centre", [[16.0, 12.0, 24.0, 20.0]], ["attribute", "small"]),
]


def _write_dataset(root: Path) -> Path:
    (root / "images" / "test").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        pixels = rng.integers(0, 256, size=(32, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / "test" / f"{i:05d}.png")
    lines = []
    for n, (img, phrase, boxes, tags) in enumerate(RECORDS):
        rec = {"id": f"tiny/test/{n:03d}", "image": f"images/test/{img:05d}.png", "width": 40,
               "height": 32, "text": phrase, "phrase": phrase, "span": [0, len(phrase)],
               "boxes": boxes, "tags": tags}  # fmt: skip
        lines.append(json.dumps(rec) + "\n")
    (root / "test.jsonl").write_text("".join(lines), encoding="utf-8")
    manifest = "name: tiny\nformat_version: 1\nsplits:\n  test: {kind: grounding}\n"
    (root / "dataset.yaml").write_text(manifest, encoding="utf-8")
    return root


def _same(got, pinned) -> bool:
    """Equal, but floats (also as CSV text) to 1e-12 relative; NaN equals NaN."""
    if isinstance(got, dict) and isinstance(pinned, dict):
        return got.keys() == pinned.keys() and all(_same(got[k], pinned[k]) for k in got)
    if isinstance(got, list) and isinstance(pinned, list):
        return len(got) == len(pinned) and all(map(_same, got, pinned))
    if isinstance(got, str) and isinstance(pinned, str):
        try:
            got, pinned = float(got), float(pinned)
        except ValueError:
            return got == pinned
    if isinstance(got, float) and isinstance(pinned, float):
        both_nan = math.isnan(got) and math.isnan(pinned)
        return both_nan or math.isclose(got, pinned, rel_tol=1e-12, abs_tol=1e-15)
    return type(got) is type(pinned) and got == pinned


def _csv_cells(text: bytes) -> list[list[str]]:
    return [line.split(",") for line in text.decode("utf-8").splitlines()]


def _pinned_report(report_dir: Path) -> dict:
    """report.json without what legitimately changes between runs and releases."""
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    report.pop("environment")
    report.pop("groundbench_version")
    # The fingerprint hashes the PNG files' bytes, which depend on the zlib that wrote them;
    # tests/unit/evaluate/test_fingerprint.py pins what it covers.
    assert len(report["dataset"].pop("fingerprint")) == 64
    # samples.csv's bytes carry the last digits of NSS and soft-IoU, which depend on the CPU's
    # vector width (docs/reports.md); its cells are compared to 1e-12 instead.
    assert len(report["samples"].pop("sha256")) == 64
    return report


@pytest.mark.parametrize("method", ["centre_prior:0.2", "oracle_box"])
def test_tiny_report_is_pinned(tmp_path, update_golden, method):
    data = _write_dataset(tmp_path / "data")
    protocol = tmp_path / "tiny.yaml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    out = tmp_path / "report"
    evaluate(str(protocol), method, out_dir=out, data_root=data, progress=False, batch_size=2)

    stem = method.split(":")[0]
    csv_path, json_path = GOLDEN / f"{stem}.samples.csv", GOLDEN / f"{stem}.report.json"
    got_csv, got_json = (out / "samples.csv").read_bytes(), _pinned_report(out)
    if update_golden:
        GOLDEN.mkdir(exist_ok=True)
        csv_path.write_bytes(got_csv)
        json_path.write_text(json.dumps(got_json, indent=2, sort_keys=True) + "\n", "utf-8")
    assert _same(_csv_cells(got_csv), _csv_cells(csv_path.read_bytes()))
    assert _same(got_json, json.loads(json_path.read_text(encoding="utf-8")))


def test_golden_comparison_tells_numbers_apart():
    assert _same({"a": [1.0, "x", "0.30000000000000004"]}, {"a": [1.0, "x", "0.3"]})
    assert not _same({"a": [1.0]}, {"a": [1.0 + 1e-9]})
    assert not _same(["4.35"], ["4.36"]) and not _same(["x"], ["y"]) and not _same([1], [1.0])
