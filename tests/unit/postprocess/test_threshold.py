"""Thresholding rules, hand-computed, and Otsu against scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.filters import threshold_otsu

from groundbench.postprocess import otsu_thresholds, threshold_maps
from groundbench.postprocess.threshold import top_k_levels_batched

M = torch.tensor([[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 1.0]]])


def _kept(mask):
    return mask[0].flatten().nonzero()[:, 0].tolist()


@pytest.mark.parametrize(
    ("method", "value", "kept"),
    [
        ("fixed", 0.6, [5, 6, 7, 8]),  # >= 0.6 (float32(0.6) is just above 0.6, so it is kept)
        ("fraction_of_max", 0.75, [7, 8]),  # >= 0.75 * 1.0
        ("mean", None, [5, 6, 7, 8]),  # > mean 4.6 / 9 = 0.511
        ("top_k_percent", 20.0, [7, 8]),  # ceil(0.2 * 9) = 2 highest
        ("top_k_percent", 100.0, list(range(9))),
    ],
)
def test_rules_by_hand(method, value, kept):
    assert _kept(threshold_maps(M, method=method, value=value)) == kept


def test_top_k_keeps_ties_with_the_last_kept_pixel():
    maps = torch.tensor([[[3.0, 2.0, 2.0, 1.0]]])
    assert _kept(threshold_maps(maps, method="top_k_percent", value=50.0)) == [0, 1, 2]


def test_only_valid_pixels_count():
    maps = torch.tensor([[[0.0, 1.0, 9.0], [2.0, 3.0, 9.0]]])
    valid = torch.tensor([[[True, True, False], [True, True, False]]])
    # mean and max over the valid 2x2 block only: mean 1.5, max 3
    assert _kept(threshold_maps(maps, method="mean", valid=valid)) == [3, 4]
    assert _kept(threshold_maps(maps, method="fraction_of_max", value=0.5, valid=valid)) == [3, 4]
    assert _kept(threshold_maps(maps, method="top_k_percent", value=25.0, valid=valid)) == [4]
    assert _kept(threshold_maps(maps, method="fixed", value=5.0, valid=valid)) == []


@pytest.mark.parametrize("seed", range(6))
def test_otsu_matches_skimage(seed):
    rng = np.random.default_rng(seed)
    maps = np.concatenate([rng.normal(0, 1, (3, 500)), rng.normal(4, 0.5, (3, 300))], axis=1)
    maps = maps.reshape(3, 20, 40) ** (seed % 3 + 1)
    ours = otsu_thresholds(torch.from_numpy(maps)).numpy()
    ref = [threshold_otsu(m) for m in maps]
    np.testing.assert_array_equal(ours, ref)
    mask = threshold_maps(torch.from_numpy(maps), method="otsu")
    np.testing.assert_array_equal(mask.numpy(), maps > np.array(ref)[:, None, None])


@pytest.mark.parametrize("seed", range(4))
def test_otsu_matches_skimage_on_float32_maps(seed):
    maps = torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(seed)) ** (seed + 1)
    ours = otsu_thresholds(maps)
    assert ours.dtype == torch.float32
    ref = np.array([threshold_otsu(m) for m in maps.numpy()])
    np.testing.assert_array_equal(ours.numpy(), ref)
    np.testing.assert_array_equal(
        threshold_maps(maps, method="otsu").numpy(), maps.numpy() > ref[:, None, None]
    )


def test_comparisons_in_float32_equal_comparisons_in_float64():
    maps = torch.rand(4, 30, 30, generator=torch.Generator().manual_seed(5))
    x = maps.double()
    mean = x.flatten(1).mean(1)[:, None, None]
    assert torch.equal(threshold_maps(maps, method="mean"), x > mean)
    peak = x.flatten(1).amax(1)[:, None, None]
    assert torch.equal(threshold_maps(maps, method="fraction_of_max", value=0.3), x >= 0.3 * peak)
    assert torch.equal(threshold_maps(maps, method="fixed", value=0.1), x >= 0.1)


def test_otsu_ignores_padding():
    rng = np.random.default_rng(3)
    real = rng.random((10, 12))
    padded = np.zeros((16, 16))
    padded[:10, :12] = real
    valid = np.zeros((16, 16), bool)
    valid[:10, :12] = True
    ours = otsu_thresholds(torch.from_numpy(padded)[None], torch.from_numpy(valid)[None])
    assert float(ours[0]) == threshold_otsu(real)


def test_otsu_constant_map_keeps_nothing():
    maps = torch.full((1, 4, 4), 0.5)
    assert float(otsu_thresholds(maps)[0]) == 0.5
    assert not threshold_maps(maps, method="otsu").any()


@pytest.mark.parametrize("method", ["fixed", "fraction_of_max", "mean", "otsu", "top_k_percent"])
def test_non_finite_map_gets_empty_mask_without_touching_others(method):
    maps = torch.cat([M, M])
    maps[0, 1, 1] = math.nan if method != "mean" else math.inf
    value = {"fixed": 0.5, "fraction_of_max": 0.5, "top_k_percent": 30.0}.get(method)
    mask = threshold_maps(maps, method=method, value=value)
    assert not mask[0].any()
    assert torch.equal(mask[1], threshold_maps(M, method=method, value=value)[0])


def test_non_finite_on_padding_is_ignored():
    maps = torch.cat([M, torch.full((1, 3, 1), math.nan)], dim=2)
    valid = torch.ones_like(maps, dtype=torch.bool)
    valid[..., 3] = False
    mask = threshold_maps(maps, method="fraction_of_max", value=0.75, valid=valid)
    assert mask[0, :, :3].flatten().nonzero()[:, 0].tolist() == [7, 8]


def test_batched_top_k_kernel_matches_numpy_partition():
    x = torch.rand(5, 200, generator=torch.Generator().manual_seed(2))
    x[1, :50] = 0.5  # ties
    n_valid = torch.tensor([200, 200, 150, 200, 0])
    filled = x.clone()
    filled[2, 150:] = -torch.inf
    n_keep = torch.tensor([1, 60, 15, 200, 1])
    levels = top_k_levels_batched(filled, n_valid, n_keep)
    for b in range(4):
        row = x[b, : int(n_valid[b])].numpy()
        k = int(n_keep[b])
        assert float(levels[b]) == np.partition(row, row.size - k)[row.size - k]
    assert levels[4] == torch.inf


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["fixed", "fraction_of_max", "mean", "otsu", "top_k_percent"])
def test_cuda_kernels_match_cpu(method):
    maps = torch.rand(4, 60, 70, generator=torch.Generator().manual_seed(4))
    valid = torch.ones_like(maps, dtype=torch.bool)
    valid[1, 40:] = False
    value = {"fixed": 0.5, "fraction_of_max": 0.5, "top_k_percent": 12.5}.get(method)
    cpu = threshold_maps(maps, method=method, value=value, valid=valid)
    gpu = threshold_maps(maps.cuda(), method=method, value=value, valid=valid.cuda())
    assert torch.equal(gpu.cpu(), cpu)
