"""Gaussian smoothing agrees with scipy.ndimage.gaussian_filter (reflect, truncate 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from groundbench.postprocess import smooth_maps
from groundbench.postprocess.smooth import gaussian_kernel


@pytest.mark.parametrize(("sigma", "shape"), [(0.7, (9, 13)), (2.0, (20, 17)), (3.0, (5, 4))])
def test_matches_scipy_reflect(sigma, shape):
    maps = torch.rand(2, *shape, generator=torch.Generator().manual_seed(1))
    ours = smooth_maps(maps, sigma).numpy()
    for b in range(2):
        ref = ndimage.gaussian_filter(maps[b].numpy().astype(np.float64), sigma, mode="reflect")
        np.testing.assert_allclose(ours[b], ref, atol=1e-6)


def test_zero_sigma_is_identity():
    maps = torch.rand(1, 4, 4)
    assert torch.equal(smooth_maps(maps, 0.0), maps)


def test_kernel_radius_is_four_sigma():
    assert gaussian_kernel(2.0).numel() == 2 * 8 + 1
    assert gaussian_kernel(1.2).numel() == 2 * 5 + 1  # int(4.8 + 0.5) = 5


def test_constant_map_stays_constant_and_mass_is_kept_inside():
    torch.testing.assert_close(
        smooth_maps(torch.full((1, 6, 7), 3.0), 1.5), torch.full((1, 6, 7), 3.0)
    )
    impulse = torch.zeros(1, 31, 31)
    impulse[0, 15, 15] = 1.0
    assert float(smooth_maps(impulse, 2.0).sum()) == pytest.approx(1.0, abs=1e-6)


def test_negative_sigma_is_rejected():
    with pytest.raises(ValueError, match="sigma_px must be >= 0, got -1"):
        smooth_maps(torch.zeros(1, 2, 2), -1)
