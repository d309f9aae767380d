"""Contract every registered pipeline step keeps: documented shapes, dtypes, determinism.

A new step must add a case to ``CASES`` (the first test fails until it does).
"""

from __future__ import annotations

import pytest
import torch

from groundbench.postprocess import DEFAULT_CONFIG, PIPELINE_STEPS

B, L, H, P, h, w, Y, X = 3, 2, 4, 2, 5, 6, 20, 24


def _rand(*shape: int, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0)).to(dtype)


# name -> (builder of positional inputs for a dtype, kwargs, expected output shapes)
CASES = {
    "average": (lambda dt: (_rand(B, P, h, w, dtype=dt),), {"passes": "mean"}, [(B, h, w)]),
    "aggregate": (
        lambda dt: (_rand(B, L, H, h, w, dtype=dt),),
        {"layers": [-1], "heads": "max"},
        [(B, h, w)],
    ),
    "normalise": (lambda dt: (_rand(B, h, w, dtype=dt), "softmax"), {}, [(B, h, w)]),
    "upsample": (lambda dt: (_rand(B, h, w, dtype=dt), (Y, X)), {"mode": "bicubic"}, [(B, Y, X)]),
    "smooth": (lambda dt: (_rand(B, Y, X, dtype=dt), 1.5), {}, [(B, Y, X)]),
    "threshold": (lambda dt: (_rand(B, Y, X, dtype=dt),), {"method": "otsu"}, [(B, Y, X)]),
    "regions": (
        lambda dt: (_rand(B, Y, X) > 0.7, "peak_cluster"),
        {"heatmap": _rand(B, Y, X)},
        [(B, Y, X), (B, 4)],
    ),
}


def test_every_step_has_a_contract_case_and_a_config_key():
    assert sorted(CASES) == PIPELINE_STEPS.names()
    for name in PIPELINE_STEPS.names():
        meta = PIPELINE_STEPS.meta(name)
        assert meta["config_key"] in DEFAULT_CONFIG
        assert meta["input"] and meta["output"]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_step_shapes_dtypes_and_determinism(name, dtype):
    step = PIPELINE_STEPS.get(name)
    build, kwargs, shapes = CASES[name]
    first = step(*build(dtype), **kwargs)
    second = step(*build(dtype), **kwargs)
    outs = first if isinstance(first, tuple) else (first,)
    again = second if isinstance(second, tuple) else (second,)
    assert [tuple(o.shape) for o in outs] == shapes
    for o, a in zip(outs, again, strict=True):
        assert torch.equal(o, a)
    main = outs[0]
    if name in ("threshold", "regions"):
        assert main.dtype == torch.bool
    else:
        assert main.dtype == torch.float32
    if name == "regions":
        assert outs[1].dtype == torch.float64


@pytest.mark.parametrize("name", ["average", "aggregate", "normalise", "upsample", "smooth"])
def test_float_steps_propagate_nan(name):
    build, kwargs, _ = CASES[name]
    args = list(build(torch.float32))
    args[0] = args[0].clone()
    args[0].view(-1)[-1] = float("nan")  # last layer/head/pass: selected by every case
    assert PIPELINE_STEPS.get(name)(*args, **kwargs).isnan().any()
