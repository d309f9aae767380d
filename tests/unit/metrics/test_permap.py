"""The per-map CPU kernels agree with the batched torch kernels and with the sort-based ranks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from groundbench.metrics import METRICS, _inputs
from groundbench.metrics._permap import PEAK, SPREAD, summarise
from groundbench.metrics._ranks import rank_stats
from groundbench.types import rasterise_boxes

CASES = [
    ("pointing", {}),
    ("pointing", {"tolerance_px": 2.5}),
    ("pointing", {"variant": "mg"}),
    ("pointing", {"variant": "albef"}),
    ("miou", {}),
    ("soft_iou", {}),
    ("nss", {}),
    ("auc", {}),
    ("spearman", {}),
    ("spearman", {"sigma_px": 1.5}),
]


def _hard_batch(Y=9, X=11):
    """Maps with ties, flat maps, -0.0 beside +0.0, NaN and -Inf, one with padding."""
    g = torch.Generator().manual_seed(3)
    heat = (torch.rand(8, Y, X, generator=g) * 4).floor()  # many ties
    heat[1] = 2.0  # flat
    heat[2, :, :5] = -0.0
    heat[2, :, 5:] = 0.0
    heat[3, 4, 4] = -math.inf
    heat[4, 0, 0] = math.nan
    heat[5] = torch.rand(Y, X, generator=g)  # distinct values
    boxes = torch.tensor([[[1.0, 1.0, 5.0, 4.0], [6.0, 5.0, 10.0, 9.0]]] * 8, dtype=torch.float64)
    count = torch.tensor([1 + i % 2 for i in range(8)])
    valid = torch.ones(8, Y, X, dtype=torch.bool)
    valid[6, :, 8:] = False
    return {
        "heatmap": heat,
        "region": rasterise_boxes(boxes, count, Y, X) & valid,
        "valid": valid,
        "boxes": boxes,
        "box_count": count,
        "pred_mask": heat > 1.5,
    }


@pytest.mark.parametrize(("name", "params"), CASES)
@pytest.mark.parametrize("with_valid", [True, False])
def test_numpy_kernels_match_torch_kernels_on_ties_and_flat_maps(
    name, params, with_valid, monkeypatch
):
    inputs = _hard_batch()
    if not with_valid:
        inputs = {k: v[[0, 1, 2, 3, 4, 5, 7]] for k, v in inputs.items() if k != "valid"}
    fn = METRICS.get(name)
    kw = {k: v for k, v in inputs.items() if k != "heatmap"}
    numpy_out = fn(inputs["heatmap"], **kw, **params)
    monkeypatch.setattr(_inputs, "use_numpy", lambda t: False)
    torch_out = fn(inputs["heatmap"], **kw, **params)
    assert torch.equal(numpy_out.undefined, torch_out.undefined)
    assert torch.allclose(numpy_out.values, torch_out.values, equal_nan=True, rtol=0, atol=1e-12)
    for key, value in numpy_out.extras.items():
        assert torch.equal(value, torch_out.extras[key]), key


def _summary(x: np.ndarray, region: np.ndarray | None = None, what: int = PEAK):
    """:func:`summarise` of one flat map; returns ``(Summaries, tied)``."""
    h = torch.from_numpy(x).reshape(1, 1, -1)
    reg = None if region is None else torch.from_numpy(region).reshape(1, 1, -1)
    s = summarise(h, None, reg, what)
    return s, s.tied_of(0)


def test_peak_finds_every_tie_across_blocks():
    x = np.zeros(3 * 4096 + 7, dtype=np.float32)
    x[[5, 4096 + 1, 3 * 4096 + 6]] = 2.0
    region = np.zeros(x.size, dtype=bool)
    region[[5, 9]] = True
    s, tied = _summary(x, region)
    assert (s.lo.item(), s.hi.item(), s.nonfinite.item()) == (0.0, 2.0, False)
    assert (s.n_pos.item(), s.tied_in_region.item()) == (2, 1)
    assert tied.tolist() == [5, 4097, 3 * 4096 + 6]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_summary_matches_numpy_on_ties_zeros_and_nonfinite(dtype):
    rng = np.random.default_rng(4)
    for trial in range(300):
        n = int(rng.integers(1, 9000))
        x = [
            rng.random(n),
            rng.integers(-3, 1, n).astype(float),  # ties at a max of 0
            np.where(rng.random(n) < 0.5, -0.0, 0.0),  # a zero max, both signs
            rng.integers(-2, 3, n) * 1e30,
        ][trial % 4].astype(dtype)
        if trial % 5 == 0:
            x[rng.integers(0, n)] = rng.choice([np.nan, np.inf, -np.inf])
        region = rng.random(n) < 0.3
        s, tied = _summary(x, region, SPREAD)
        assert s.nonfinite.item() == (not np.isfinite(x).all())
        assert s.n_pos.item() == region.sum() and s.n.item() == n
        if not s.nonfinite.item():
            assert (s.lo.item(), s.hi.item()) == (x.min(), x.max())
            assert tied.tolist() == np.flatnonzero(x == x.max()).tolist()
            assert s.tied_in_region.item() == region[tied].sum()
            x64 = x.astype(np.float64)
            total, inside = math.fsum(x64), math.fsum(x64[region])
            sq = math.fsum((x64 - total / n) ** 2)
            scale = max(np.abs(x64).sum(), 1e-300)
            assert abs(s.total.item() - total) <= 1e-13 * scale
            assert abs(s.region_total.item() - inside) <= 1e-13 * scale
            assert abs(s.sq_dev.item() - sq) <= 1e-12 * max(sq, 1e-300) + 1e-13 * scale


def test_summary_of_padded_maps_names_original_pixels():
    h = torch.zeros(2, 3, 4)
    h[0, 2, 3] = h[0, 0, 1] = 5.0  # the padded pixel (0, 1) is no maximum
    h[1, 1, 2] = 1.0
    valid = torch.ones(2, 3, 4, dtype=torch.bool)
    valid[0, 0, :2] = False
    s = summarise(h, valid, None, PEAK)
    assert [s.tied_of(i).tolist() for i in range(2)] == [[11], [6]] and s.n.tolist() == [10, 12]


def test_radix_ranks_equal_sorted_ranks():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(2, 2000))
        x = rng.integers(-5, 6, n).astype(np.float32)
        if rng.random() < 0.5:
            x += rng.random(n).astype(np.float32) * (rng.random() < 0.5)
        x[rng.random(n) < 0.2] = -0.0
        positive = rng.random(n) < rng.random()
        if positive.all() or not positive.any():
            continue
        radix = rank_stats(x, positive, ties=True)
        sorted_ = rank_stats(x.astype(np.float64), positive, ties=True)
        assert radix == sorted_


def test_radix_ranks_tell_apart_floats_one_ulp_apart():
    # the radix sort carries the region flag in the keys' lowest bit: neighbouring floats,
    # whose keys differ only there, must still rank apart, and equal ones tie
    rng = np.random.default_rng(2)
    base = np.float32(0.75)
    ulps = np.array([base, np.nextafter(base, np.float32(1)), np.nextafter(base, np.float32(0))])
    for _ in range(200):
        n = int(rng.integers(2, 400))
        x = rng.choice(np.append(ulps, -ulps).astype(np.float32), n)
        positive = rng.random(n) < rng.random()
        if positive.all() or not positive.any():
            continue
        assert rank_stats(x, positive, ties=True) == rank_stats(
            x.astype(np.float64), positive, ties=True
        )


def test_midranks_equal_scipy_rankdata():
    from scipy.stats import rankdata

    from groundbench.metrics._ranks import midranks

    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 3000))
        x = rng.integers(-3, 4, n).astype(np.float32)
        x[rng.random(n) < 0.2] = -0.0
        if rng.random() < 0.5:
            x += rng.random(n).astype(np.float32)
        assert np.array_equal(midranks(x), rankdata(x))
        assert np.array_equal(midranks(x.astype(np.float64)), rankdata(x.astype(np.float64)))


@pytest.mark.parametrize("padded", [False, True])
def test_shared_summaries_give_the_scores_of_separate_calls(padded):
    from groundbench.metrics import auc, nss, pointing, shared_ranks, soft_iou, spearman

    rng = np.random.default_rng(5)
    h = torch.from_numpy(rng.random((6, 24, 32), dtype=np.float32))
    h[1] = torch.round(h[1] * 4) / 4  # ties, the peak's too
    h[2, 3, 3] = float("nan")
    h[3] = 0.5  # constant
    region = torch.zeros(6, 24, 32, dtype=torch.bool)
    region[:, 5:12, 8:20] = True
    region[4] = False  # empty
    valid = torch.ones_like(region)
    if padded:
        valid[5, :, 25:] = False
    calls = [
        lambda **kw: pointing(h, region=region, **kw),
        lambda **kw: pointing(h, region=region, tolerance_px=3, **kw),
        lambda **kw: soft_iou(h, region=region, **kw),
        lambda **kw: nss(h, region=region, **kw),
        lambda **kw: auc(h, region=region, **kw),
        lambda **kw: spearman(h, region=region, **kw),
    ]
    apart = [call(valid=valid) for call in calls]
    with shared_ranks():
        shared = [call(valid=valid) for call in calls]
    for a, b in zip(apart, shared, strict=True):
        assert torch.equal(a.undefined, b.undefined)
        assert torch.equal(a.values.nan_to_num(-9.0), b.values.nan_to_num(-9.0))
        assert a.extras.keys() == b.extras.keys()
        for key in a.extras:
            assert torch.equal(a.extras[key], b.extras[key])


@pytest.mark.parametrize(("name", "params"), CASES)
def test_non_contiguous_maps_score_as_their_contiguous_copies(name, params):
    inputs = _hard_batch(Y=11, X=11)
    fn = METRICS.get(name)
    kw = {k: v for k, v in inputs.items() if k not in ("heatmap", "boxes", "box_count")}
    kw = {k: v.transpose(1, 2) for k, v in kw.items()}
    kw.update(boxes=inputs["boxes"], box_count=inputs["box_count"])
    strided = inputs["heatmap"].transpose(1, 2)
    assert not strided.is_contiguous()
    a = fn(strided, **kw, **params)
    b = fn(strided.contiguous(), **{k: v.contiguous() for k, v in kw.items()}, **params)
    assert torch.equal(a.undefined, b.undefined)
    assert torch.equal(a.values.nan_to_num(-7), b.values.nan_to_num(-7))


def test_map_threads_keeps_order_across_thread_counts():
    from groundbench.metrics._permap import map_threads

    before = torch.get_num_threads()
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            assert map_threads(lambda i: i * i, 7) == [i * i for i in range(7)]
            assert map_threads(lambda i: i, 0) == []
    finally:
        torch.set_num_threads(before)


def test_map_threads_nested_in_its_own_pool_runs_inline():
    from groundbench.metrics._permap import map_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        inner = map_threads(lambda i: map_threads(lambda j: i * 10 + j, 3), 4)
        assert inner == [[i * 10 + j for j in range(3)] for i in range(4)]
    finally:
        torch.set_num_threads(before)
