"""Pipeline takes its steps from PIPELINE_STEPS, in the documented order."""

from __future__ import annotations

import pytest
import torch

from groundbench.postprocess import DEFAULT_CONFIG, PIPELINE_STEPS, Pipeline
from groundbench.postprocess.pipeline import STEP_ORDER
from groundbench.registry import Entry
from groundbench.types import RawMaps


def test_every_step_pipeline_uses_is_registered_under_its_config_key():
    assert STEP_ORDER == tuple(DEFAULT_CONFIG)
    assert sorted(STEP_ORDER) == PIPELINE_STEPS.names()
    for name in STEP_ORDER:
        assert PIPELINE_STEPS.meta(name)["config_key"] == name


def test_pipeline_calls_the_registered_step(monkeypatch: pytest.MonkeyPatch):
    original = PIPELINE_STEPS.entry("smooth")
    calls = []

    def spy(maps, sigma_px):
        calls.append(tuple(maps.shape))
        return original.obj(maps, sigma_px) + 1.0

    monkeypatch.setitem(PIPELINE_STEPS._entries, "smooth", Entry("smooth", spy, original.meta))
    raw = RawMaps(ids=("a",), maps=(torch.tensor([[0.0, 1.0], [0.0, 0.0]]),))
    out = Pipeline.from_config({"upsample": {"mode": "nearest"}}).run(raw, [(4, 4)])
    assert calls == [(1, 4, 4)]
    assert out.heatmap.min().item() == 1.0
