"""Every registered metric keeps the metric contract: shapes, dtypes, NaN flags, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from groundbench.metrics import METRICS, _inputs
from groundbench.types import Undefined, rasterise_boxes

NAMES = METRICS.names()


def _inputs_for(B=3, Y=9, X=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    heat = torch.rand(B, Y, X, generator=g)
    boxes = torch.tensor([[[1.0, 1.0, 5.0, 4.0], [6.0, 5.0, 10.0, 9.0]]] * B, dtype=torch.float64)
    count = torch.tensor([1 + i % 2 for i in range(B)])
    return {
        "heatmap": heat,
        "region": rasterise_boxes(boxes, count, Y, X),
        "valid": torch.ones(B, Y, X, dtype=torch.bool),
        "boxes": boxes,
        "box_count": count,
        "pred_mask": heat > 0.6,
        "pred_box": torch.tensor([[1.0, 1.0, 4.0, 4.0]] * B, dtype=torch.float64),
        "proposals": torch.tensor(
            [[[1.0, 1.0, 5.0, 4.0], [0.0, 0.0, 3.0, 3.0], [5.5, 4.5, 10.0, 9.0]]] * B,
            dtype=torch.float64,
        ),
        "proposal_count": torch.tensor([3 - i % 2 for i in range(B)]),
    }


def _call(name, inputs, **params):
    kw = dict(inputs)
    if "proposals" not in METRICS.meta(name)["needs"]:
        kw.pop("proposals", None), kw.pop("proposal_count", None)
    return METRICS.get(name)(kw.pop("heatmap"), **kw, **params)


# non-default parameters that take other code paths
VARIANTS = {
    "pointing": [{"tolerance_px": 2.5}, {"variant": "mg"}, {"variant": "albef"}],
    "spearman": [{"sigma_px": 1.5}],
}


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_nan_agreement(name):
    out = _call(name, _inputs_for())
    assert out.values.shape == (3,) and out.values.dtype == torch.float64
    assert out.undefined.shape == (3,) and out.undefined.dtype == torch.int8
    assert out.values.device.type == "cpu"
    assert torch.equal(torch.isnan(out.values), out.undefined != 0)
    low, high = METRICS.meta(name)["range"]
    defined = out.values[out.undefined == 0]
    assert ((defined >= low) & (defined <= high)).all()
    for extra in out.extras.values():
        assert extra.shape == (3,)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_input_is_flagged(name, bad):
    inputs = _inputs_for()
    inputs["heatmap"][1, 2, 3] = bad
    out = _call(name, inputs)
    assert out.undefined[1] == Undefined.NAN_INPUT and math.isnan(out.values[1])
    assert out.undefined[0] != Undefined.NAN_INPUT


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name):
    a, b = _call(name, _inputs_for()), _call(name, _inputs_for())
    assert torch.equal(a.values.nan_to_num(-9.0), b.values.nan_to_num(-9.0))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_maps_score_as_their_float32_values(name, dtype):
    inputs = _inputs_for()
    inputs["heatmap"] = inputs["heatmap"].to(dtype)
    half = _call(name, inputs)
    inputs["heatmap"] = inputs["heatmap"].float()
    full = _call(name, inputs)
    assert torch.allclose(half.values, full.values, equal_nan=True, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch(name):
    inputs = {k: v[:0] for k, v in _inputs_for().items()}
    out = _call(name, inputs)
    assert out.values.shape == (0,) and out.undefined.shape == (0,)


@pytest.mark.parametrize("name", NAMES)
def test_chunking_does_not_change_results(name, monkeypatch):
    inputs = _inputs_for(B=5)
    whole = _call(name, inputs)
    monkeypatch.setattr(_inputs, "CHUNK_PIXELS", 2 * 9 * 11)  # two maps per chunk
    chunked = _call(name, inputs)
    assert torch.equal(whole.values.nan_to_num(-9.0), chunked.values.nan_to_num(-9.0))


@pytest.mark.parametrize("name", NAMES)
def test_padding_changes_nothing(name):
    inputs = _inputs_for()
    padded = {k: v.clone() for k, v in inputs.items()}
    for key in ("heatmap", "region", "valid", "pred_mask"):
        t = inputs[key]
        big = torch.zeros(3, 12, 15, dtype=t.dtype)
        if key == "heatmap":
            big = torch.rand(3, 12, 15, generator=torch.Generator().manual_seed(1)) * 10
            big[:, 10, 13] = math.nan
        big[:, :9, :11] = t
        padded[key] = big
    a, b = _call(name, inputs), _call(name, padded)
    assert torch.allclose(a.values, b.values, equal_nan=True, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_torch_kernels_match_numpy_kernels(name, monkeypatch):
    # the torch kernels are the CUDA path; run them on CPU so every machine checks them
    inputs = _inputs_for(B=4)
    inputs["heatmap"][2, 0, 0] = math.nan
    inputs["valid"][1, :, 9:] = False
    inputs["region"] &= inputs["valid"]
    for params in [{}, *VARIANTS.get(name, [])]:
        with monkeypatch.context() as m:
            numpy_out = _call(name, inputs, **params)
            m.setattr(_inputs, "use_numpy", lambda t: False)
            torch_out = _call(name, inputs, **params)
        assert torch.equal(numpy_out.undefined, torch_out.undefined), params
        assert torch.allclose(
            numpy_out.values, torch_out.values, equal_nan=True, rtol=1e-9, atol=1e-9
        ), params


@pytest.mark.gpu
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name):
    inputs = _inputs_for(B=4)
    cpu = _call(name, inputs)
    gpu = _call(name, {k: v.cuda() for k, v in inputs.items()})
    assert gpu.values.device.type == "cpu"
    assert torch.allclose(cpu.values, gpu.values, equal_nan=True, rtol=1e-9, atol=1e-9)
    assert torch.equal(cpu.undefined, gpu.undefined)
