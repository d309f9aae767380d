"""Property-based tests of the post-processing steps and pipeline (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from groundbench.postprocess import (
    Pipeline,
    canonical_config,
    mask_to_box,
    normalise_maps,
    select_regions,
    threshold_maps,
    upsample_maps,
)
from groundbench.types import RawMaps

FAST = settings(max_examples=25, deadline=None)


def _maps(seed: int, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


configs = st.fixed_dictionaries(
    {
        "normalise": st.sampled_from(["minmax", "softmax", "none"]),
        "upsample": st.fixed_dictionaries(
            {
                "mode": st.sampled_from(["nearest", "bilinear", "bicubic"]),
                "align": st.sampled_from(["patch", "corners"]),
            }
        ),
        "smooth": st.fixed_dictionaries({"sigma_px": st.sampled_from([0, 0.8, 2])}),
        "threshold": st.one_of(
            st.none(),
            st.sampled_from(
                [
                    {"method": "otsu"},
                    {"method": "mean"},
                    {"method": "top_k_percent", "value": 15},
                    {"method": "fraction_of_max", "value": 0.6},
                ]
            ),
        ),
    }
)


@FAST
@given(
    cfg=configs,
    regions=st.sampled_from(["largest_component", "peak_cluster", "union_box", None]),
    grids=st.lists(st.sampled_from([(3, 3), (2, 4), (2, 3, 3)]), min_size=1, max_size=5),
    seed=st.integers(0, 2**16),
)
def test_batch_equals_per_sample_and_is_permutation_equivariant(cfg, regions, grids, seed):
    # without a threshold, the rule that reads the map itself (padding must not move its box)
    if cfg["threshold"] is None:
        regions = None if regions is None else "mass_minus_area"
    cfg = {**cfg, "regions": regions}
    pipe = Pipeline.from_config(cfg)
    maps = tuple(_maps(seed + i, *g) for i, g in enumerate(grids))
    sizes = [(7 + 3 * (i % 2), 9 + 2 * (i % 3)) for i in range(len(grids))]
    raw = RawMaps(ids=tuple(f"s{i}" for i in range(len(maps))), maps=maps)
    out = pipe.run(raw, sizes)
    perm = list(reversed(range(len(maps))))
    shuffled = pipe.run(
        RawMaps(ids=tuple(raw.ids[i] for i in perm), maps=tuple(maps[i] for i in perm)),
        [sizes[i] for i in perm],
    )
    for j, i in enumerate(perm):
        h, w = sizes[i]
        alone = pipe.run(RawMaps(ids=(raw.ids[i],), maps=(maps[i],)), [(h, w)])
        for got in (out, shuffled):
            k = i if got is out else j
            assert torch.equal(got.heatmap[k, :h, :w], alone.heatmap[0])
            if alone.pred_mask is not None:
                assert torch.equal(got.pred_mask[k, :h, :w], alone.pred_mask[0])
            if alone.pred_box is not None:
                torch.testing.assert_close(got.pred_box[k], alone.pred_box[0], equal_nan=True)


@FAST
@given(
    seed=st.integers(0, 2**16),
    scale=st.floats(0.01, 100.0),
    shift=st.floats(-100.0, 100.0),
)
def test_minmax_is_invariant_to_positive_affine_maps(seed, scale, shift):
    m = _maps(seed, 2, 5, 6).double()
    a = normalise_maps(m, "minmax")
    b = normalise_maps(m * scale + shift, "minmax")
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@FAST
@given(h=st.integers(1, 6), w=st.integers(1, 6), fy=st.integers(1, 5), fx=st.integers(1, 5))
def test_nearest_patch_upsampling_repeats_cells(h, w, fy, fx):
    grid = _maps(h * 7 + w, 1, h, w)
    out = upsample_maps(grid, (h * fy, w * fx), mode="nearest", align="patch")
    assert torch.equal(out, grid.repeat_interleave(fy, 1).repeat_interleave(fx, 2))


@FAST
@given(seed=st.integers(0, 2**16), low=st.floats(0.0, 1.0), high=st.floats(0.0, 1.0))
def test_fraction_of_max_masks_are_nested(seed, low, high):
    low, high = sorted((low, high))
    m = _maps(seed, 2, 8, 8)
    loose = threshold_maps(m, method="fraction_of_max", value=low)
    tight = threshold_maps(m, method="fraction_of_max", value=high)
    assert not (tight & ~loose).any()


@FAST
@given(seed=st.integers(0, 2**16), percent=st.floats(0.5, 100.0))
def test_top_k_keeps_at_least_k_and_only_the_highest(seed, percent):
    m = _maps(seed, 1, 9, 11)
    keep = threshold_maps(m, method="top_k_percent", value=percent)
    assert int(keep.sum()) >= math.ceil(99 * percent / 100)
    if (~keep).any():
        assert m[keep].min() > m[~keep].max()


@FAST
@given(
    seed=st.integers(0, 2**16),
    density=st.floats(0.05, 0.9),
    rule=st.sampled_from(["largest_component", "peak_cluster", "union_box"]),
)
def test_regions_are_subsets_covered_by_their_box(seed, density, rule):
    heat = _maps(seed, 3, 10, 12)
    mask = heat > (1 - density)
    pred_mask, pred_box = select_regions(mask, rule, heatmap=heat)
    assert not (pred_mask & ~mask).any()
    for b in range(3):
        rows, cols = np.nonzero(pred_mask[b].numpy())
        if rule != "union_box" and len(rows):
            assert ndimage.label(pred_mask[b].numpy(), structure=np.ones((3, 3)))[1] == 1
        if not len(rows):
            assert pred_box[b].isnan().all()
            continue
        x0, y0, x1, y1 = pred_box[b].tolist()
        assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        # the pixel-centre rule puts every selected pixel inside the box
        assert (
            (cols + 0.5 >= x0) & (cols + 0.5 <= x1) & (rows + 0.5 >= y0) & (rows + 0.5 <= y1)
        ).all()


@FAST
@given(cfg=configs)
def test_canonical_config_is_idempotent(cfg):
    cfg = {**cfg, "regions": "union_box" if cfg["threshold"] is not None else None}
    once = canonical_config(cfg)
    assert canonical_config(once) == once
    assert Pipeline.from_config(once).config == once


def test_mask_to_box_of_full_mask_is_the_image():
    assert mask_to_box(torch.ones(1, 4, 7, dtype=torch.bool)).tolist() == [[0.0, 0.0, 7.0, 4.0]]
