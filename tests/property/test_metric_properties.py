"""Hypothesis properties of the metrics: invariances, extreme scores, batching, padding."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groundbench.metrics import auc, nss, pointing, soft_iou, spearman

SETTINGS = settings(max_examples=50, deadline=None)


@st.composite
def maps_and_regions(draw, max_side=8, max_batch=3, tie_levels=None):
    """Integer-valued float32 maps (exact under the transforms below) with proper regions."""
    B = draw(st.integers(1, max_batch))
    Y, X = draw(st.integers(2, max_side)), draw(st.integers(2, max_side))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    levels = tie_levels or Y * X
    h = rng.integers(0, levels, size=(B, Y, X)).astype(np.float32)
    region = rng.random((B, Y, X)) < draw(st.floats(0.1, 0.9))
    flat = region.reshape(B, -1)
    flat[:, 0] = True  # never empty
    flat[:, -1] = False  # never full
    return torch.from_numpy(h), torch.from_numpy(region)


def _increasing(h: torch.Tensor) -> torch.Tensor:
    # strictly increasing on the integers used, and exact in float32 (values < 2**24)
    return h**3 + 5 * h - 7


@SETTINGS
@given(maps_and_regions(tie_levels=4))
def test_rank_metrics_invariant_under_increasing_transforms(data):
    h, region = data
    g = _increasing(h)
    for fn in (auc, pointing, spearman):
        a, b = fn(h, region=region), fn(g, region=region)
        assert torch.allclose(a.values, b.values, equal_nan=True, rtol=0, atol=1e-12), fn.__name__


@SETTINGS
@given(
    maps_and_regions(),
    st.sampled_from([2.0**k for k in range(-6, 7)]),
    st.integers(-100, 100),
)
def test_nss_and_soft_iou_invariant_under_positive_affine_maps(data, scale, shift):
    # powers of two and integer shifts keep the integer maps exact in float32, so only the
    # metric's own arithmetic is tested (a float32 map rounded near a large shift is not
    # an affine image of the original)
    h, region = data
    g = h.double() * scale + shift
    for fn in (nss, soft_iou):
        a = fn(h, region=region).values
        b = fn(g.float(), region=region).values
        assert torch.allclose(a, b, equal_nan=True, rtol=1e-4, atol=1e-4), fn.__name__


@SETTINGS
@given(maps_and_regions())
def test_indicator_scores_auc_one_negation_zero_and_pointing_one(data):
    _, region = data
    ind = region.float()
    assert (auc(ind, region=region).values == 1.0).all()
    assert (auc(-ind, region=region).values == 0.0).all()
    assert (pointing(ind, region=region).values == 1.0).all()


@SETTINGS
@given(maps_and_regions(tie_levels=3))
def test_soft_iou_in_unit_interval(data):
    h, region = data
    out = soft_iou(h, region=region)
    v = out.values[out.undefined == 0]
    assert ((v >= 0) & (v <= 1)).all()


@SETTINGS
@given(maps_and_regions(max_batch=4, tie_levels=5), st.randoms(use_true_random=False))
def test_batch_equals_per_sample_and_is_permutation_equivariant(data, random):
    h, region = data
    order = list(range(h.shape[0]))
    random.shuffle(order)
    for fn in (auc, nss, pointing, soft_iou, spearman):
        whole = fn(h, region=region).values
        single = torch.cat(
            [fn(h[i : i + 1], region=region[i : i + 1]).values for i in range(h.shape[0])]
        )
        assert torch.equal(whole.nan_to_num(-9.0), single.nan_to_num(-9.0)), fn.__name__
        permuted = fn(h[order], region=region[order]).values
        assert torch.equal(permuted.nan_to_num(-9.0), whole[order].nan_to_num(-9.0)), fn.__name__


@SETTINGS
@given(maps_and_regions(tie_levels=6), st.integers(1, 4), st.integers(1, 4))
def test_invalid_padding_changes_nothing(data, pad_y, pad_x):
    h, region = data
    B, Y, X = h.shape
    big_h = torch.full((B, Y + pad_y, X + pad_x), 1e6)
    big_h[:, :Y, :X] = h
    big_r = torch.zeros(B, Y + pad_y, X + pad_x, dtype=torch.bool)
    big_r[:, :Y, :X] = region
    valid = torch.zeros_like(big_r)
    valid[:, :Y, :X] = True
    for fn in (auc, nss, pointing, soft_iou, spearman):
        a = fn(h, region=region).values
        b = fn(big_h, region=big_r, valid=valid).values
        assert torch.allclose(a, b, equal_nan=True, rtol=1e-12, atol=1e-12), fn.__name__
