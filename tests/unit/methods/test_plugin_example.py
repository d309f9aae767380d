"""The example plugin of docs/plugins.md runs, points at the named colour, and evaluates."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from groundbench.methods import resolve_method
from groundbench.synthetic.settings import COLOURS
from groundbench.types import GroundingSample, RawMaps

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"


@pytest.fixture
def plugin(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    yield resolve_method("plugin:grid_plugin:colour_grid")
    sys.modules.pop("grid_plugin", None)


def _sample(i, phrase):
    return GroundingSample(id=f"ex/{i}", image_path="none.png", width=48, height=32,
                           text=phrase, phrase=phrase, span=(0, len(phrase)),
                           boxes=np.array([[36.0, 0.0, 42.0, 4.0]]))  # fmt: skip


def test_the_example_plugin_points_at_the_named_colour(plugin):
    image = np.full((32, 48, 3), 128, dtype=np.uint8)
    image[:4, 36:42] = COLOURS["red"]  # grid cell (row 0, column 6) of 8 × 8
    image.setflags(write=False)  # as the evaluation passes them
    samples = [_sample(0, "the red star"), _sample(1, "the star")]
    raw = plugin.predict(samples, [image, image], device=torch.device("cpu"))
    assert isinstance(raw, RawMaps) and raw.kind == "heatmap"
    assert raw.ids == ("ex/0", "ex/1")
    red, plain = raw.maps
    assert red.shape == plain.shape == (8, 8)
    assert divmod(int(red.argmax()), 8) == (0, 6)
    assert torch.equal(plain, torch.zeros(8, 8))
    assert plugin.supervision == "training-free" and plugin.fingerprint_complete


def test_the_docs_show_the_tested_code():
    docs = (EXAMPLES.parent / "plugins.md").read_text(encoding="utf-8")
    shown = docs.split("## Example", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    source = (EXAMPLES / "grid_plugin.py").read_text(encoding="utf-8")
    for line in shown.strip().splitlines():
        assert line.split("  #")[0].rstrip() in source, line
