"""A three-image dataset in the native format, and a protocol that reads it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PROTOCOL = """\
schema: 1
dataset: {adapter: native, name: tiny, split: test}
pipeline: {normalise: minmax, threshold: {method: fraction_of_max, value: 0.5}}
metrics: [{name: pointing, variant: albef}, {name: box_acc, iou: 0.5}]
bootstrap: {resamples: 20, seed: 0}
"""


def write_tiny_dataset(root: Path, seed: int = 0, n: int = 6) -> Path:
    """``n`` samples on three 40×32 noise images drawn with ``seed``."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(3):
        pixels = rng.integers(0, 256, size=(32, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{i}.png")
    lines = []
    for k in range(n):
        x = 2.0 + 5 * k
        rec = {"id": f"tiny/{k:03d}", "image": f"images/{k % 3}.png", "width": 40, "height": 32,
               "text": "a thing", "phrase": "thing", "span": [2, 7],
               "boxes": [[x, 4.0, x + 8.0, 20.0]], "tags": ["small"] if k % 2 else []}  # fmt: skip
        lines.append(json.dumps(rec) + "\n")
    (root / "test.jsonl").write_text("".join(lines), encoding="utf-8")
    manifest = "name: tiny\nformat_version: 1\nsplits:\n  test: {kind: grounding}\n"
    (root / "dataset.yaml").write_text(manifest, encoding="utf-8")
    return root


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """(protocol path, data root); file hashes are cached under tmp_path."""
    monkeypatch.setenv("GROUNDBENCH_CACHE", str(tmp_path / "cache"))
    from groundbench.evaluation import data

    monkeypatch.setattr(data, "_STORE", None)
    monkeypatch.setattr(data, "_HASHES", {})
    protocol = tmp_path / "tiny.yaml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    return protocol, write_tiny_dataset(tmp_path / "data")
