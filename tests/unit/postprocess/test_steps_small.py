"""Hand-computed cases for the pass-average, aggregate and normalise steps."""

from __future__ import annotations

import math

import pytest
import torch

from groundbench.errors import MethodError
from groundbench.postprocess import aggregate_attention, average_passes, normalise_maps

NAN = float("nan")


def test_average_mean_and_max():
    maps = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])  # B=1 P=2 h=1 w=2
    assert average_passes(maps, passes="mean").tolist() == [[[2.0, 1.0]]]
    assert average_passes(maps, passes="max").tolist() == [[[3.0, 2.0]]]


def test_average_keeps_nan():
    maps = torch.tensor([[[NAN, 1.0], [0.0, 1.0]]])
    for passes in ("mean", "max"):
        out = average_passes(maps, passes=passes)
        assert math.isnan(out[0, 0]) and out[0, 1] == 1.0


def _attention() -> torch.Tensor:
    # B=1, L=2, H=3, 1x1 grid: value = 10*layer + head
    vals = torch.tensor([[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]])
    return vals.view(1, 2, 3, 1, 1)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, 6.0),  # mean of all
        ({"heads": "max"}, 7.0),  # mean over layers of (2, 12)
        ({"heads": "max", "reduce": "max"}, 12.0),
        ({"heads": "mean", "reduce": "max"}, 11.0),
        ({"layers": [-1]}, 11.0),
        ({"layers": [0], "heads": [0, 2]}, 1.0),
        ({"heads": [1], "reduce": "max"}, 11.0),
    ],
)
def test_aggregate_selection_and_reduction(kwargs, expected):
    out = aggregate_attention(_attention(), **kwargs)
    assert out.shape == (1, 1, 1)
    assert float(out) == expected


def test_gate_is_weighted_mean_over_layers_and_heads():
    w = torch.tensor([[0.0, 0.0, 1.0], [0.0, 3.0, 0.0]])
    out = aggregate_attention(_attention(), heads="gate", head_weights=w)
    assert float(out) == pytest.approx((2.0 * 1 + 11.0 * 3) / 4)
    only_first = aggregate_attention(_attention(), layers=[0], heads="gate", head_weights=w)
    assert float(only_first) == 2.0


def test_gate_errors():
    with pytest.raises(MethodError) as err:
        aggregate_attention(_attention(), heads="gate")
    assert str(err.value) == (
        "pipeline.aggregate.heads is 'gate' but the method returned no head_weights; use heads: "
        "mean (or max, or a list of heads), or a method with a learned gate"
    )
    with pytest.raises(MethodError, match=r"shape \(3, 2\), not \(L, H\) = \(2, 3\)"):
        aggregate_attention(_attention(), heads="gate", head_weights=torch.ones(3, 2))
    with pytest.raises(MethodError, match="non-negative weights with a positive sum"):
        aggregate_attention(_attention(), heads="gate", head_weights=-torch.ones(2, 3))


def test_aggregate_index_out_of_range():
    with pytest.raises(MethodError) as err:
        aggregate_attention(_attention(), heads=[3])
    assert str(err.value) == (
        "pipeline.aggregate.heads: index 3 is out of range for maps with 3 heads; use indices "
        "in [-3, 2] or 'all'/'mean'"
    )


def test_minmax_normalises_each_map_to_unit_range():
    maps = torch.tensor([[[2.0, 4.0], [6.0, 10.0]], [[-1.0, 0.0], [1.0, 3.0]]])
    out = normalise_maps(maps, "minmax")
    assert out.tolist() == [[[0.0, 0.25], [0.5, 1.0]], [[0.0, 0.25], [0.5, 1.0]]]


def test_minmax_constant_map_is_zeros():
    out = normalise_maps(torch.full((1, 3, 3), 7.0), "minmax")
    assert out.tolist() == torch.zeros(1, 3, 3).tolist()


def test_softmax_sums_to_one_per_map():
    maps = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0))
    out = normalise_maps(maps, "softmax")
    torch.testing.assert_close(out.sum(dim=(1, 2)), torch.ones(3))
    torch.testing.assert_close(out[1], torch.softmax(maps[1].flatten(), 0).view(4, 5))


@pytest.mark.parametrize("mode", ["minmax", "softmax", "none"])
def test_non_finite_pixels_come_out_nan_and_do_not_poison_the_rest(mode):
    maps = torch.tensor([[[0.0, 2.0], [NAN, float("inf")]]])
    out = normalise_maps(maps, mode)
    assert out[0, 1].isnan().all()
    if mode == "minmax":
        assert out[0, 0].tolist() == [0.0, 1.0]
        assert math.isnan(out[0, 1, 0]) and math.isnan(out[0, 1, 1])
    if mode == "softmax":
        torch.testing.assert_close(out[0, 0].sum(), torch.tensor(1.0))


def test_all_nan_map_stays_nan():
    out = normalise_maps(torch.full((1, 2, 2), NAN), "minmax")
    assert out.isnan().all()


def test_bfloat16_input_gives_float32():
    out = normalise_maps(torch.rand(2, 3, 3).to(torch.bfloat16), "minmax")
    assert out.dtype == torch.float32
