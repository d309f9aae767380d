"""Spearman: hand cases, undefined cases and agreement with scipy.stats.spearmanr."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr

from groundbench.errors import ProtocolError
from groundbench.metrics import spearman
from groundbench.types import Undefined


def test_undefined_cases():
    h = torch.rand(4, 3, 3)
    h[1] = 2.0
    h[3, 1, 1] = math.nan
    region = torch.zeros(4, 3, 3, dtype=torch.bool)
    region[:, 0, 0] = True
    region[2] = True
    out = spearman(h, region=region)
    assert out.undefined.tolist() == [
        0,
        Undefined.CONSTANT_MAP,
        Undefined.FULL_REGION,
        Undefined.NAN_INPUT,
    ]


@pytest.mark.parametrize("levels", [None, 4])
def test_indicator_target_agrees_with_scipy(rng, levels):
    h = rng.random((5, 17, 21)).astype(np.float32)
    if levels:
        h = np.floor(h * levels).astype(np.float32)
    region = rng.random((5, 17, 21)) < 0.3
    valid = np.ones_like(region)
    valid[:, 12:, :] = False
    region &= valid
    out = spearman(
        torch.from_numpy(h), region=torch.from_numpy(region), valid=torch.from_numpy(valid)
    )
    for i in range(5):
        ref = spearmanr(h[i][valid[i]], region[i][valid[i]]).statistic
        assert out.values[i].item() == pytest.approx(ref, abs=1e-9)


def test_blurred_target_agrees_with_scipy(rng):
    h = rng.random((2, 16, 20)).astype(np.float32)
    region = np.zeros((2, 16, 20), dtype=bool)
    region[:, 4:9, 6:12] = True
    out = spearman(torch.from_numpy(h), region=torch.from_numpy(region), sigma_px=2.0)
    for i in range(2):
        target = gaussian_filter(region[i].astype(np.float64), 2.0, mode="constant")
        ref = spearmanr(h[i].ravel(), target.ravel()).statistic
        assert out.values[i].item() == pytest.approx(ref, abs=1e-9)


def test_blurring_changes_the_score_of_a_peak_next_to_the_region():
    region = torch.zeros(1, 12, 12, dtype=torch.bool)
    region[0, 4:8, 4:8] = True
    yy, xx = torch.meshgrid(torch.arange(12.0), torch.arange(12.0), indexing="ij")
    h = -((yy - 5.5) ** 2 + (xx - 5.5) ** 2)[None]  # peaked on the region centre
    plain = spearman(h, region=region).values.item()
    blurred = spearman(h, region=region, sigma_px=2.0).values.item()
    assert blurred > plain


def test_negative_sigma_is_an_error():
    with pytest.raises(
        ProtocolError,
        match=r"^spearman.sigma_px: -1.0 is out of range; use a distance in pixels in \[0, 4096\]$",
    ):
        spearman(torch.rand(1, 2, 2), region=torch.ones(1, 2, 2, dtype=torch.bool), sigma_px=-1)


def test_cropped_blur_is_bit_identical_to_scipy():
    from groundbench.metrics.spearman import blur_region

    rng = np.random.default_rng(3)
    for _ in range(200):
        Y, X = int(rng.integers(1, 90)), int(rng.integers(1, 90))
        region = np.zeros((Y, X), dtype=bool)
        for _ in range(int(rng.integers(0, 4))):
            y0, x0 = rng.integers(0, Y), rng.integers(0, X)
            region[y0 : y0 + rng.integers(1, 25), x0 : x0 + rng.integers(1, 25)] = True
        sigma = float(rng.choice([0.3, 1.0, 2.5, 3.7, 10.0]))
        expected = gaussian_filter(region.astype(np.float64), sigma, mode="constant")
        assert blur_region(region, sigma).tobytes() == expected.tobytes()


@pytest.mark.parametrize("levels", [0, 3])
def test_blurred_target_agrees_with_scipy_on_tied_maps(levels):
    # the integer path: doubled mid-ranks of the map at the target's non-zero pixels
    rng = np.random.default_rng(4)
    for _ in range(40):
        Y, X = int(rng.integers(4, 50)), int(rng.integers(4, 50))
        h = rng.standard_normal((1, Y, X)).astype(np.float32)
        if levels:
            h = np.round(h * levels).astype(np.float32) / levels
        h[0, 0, :2] = [0.0, -0.0]
        region = np.zeros((1, Y, X), dtype=bool)
        y0, x0 = rng.integers(0, Y - 2), rng.integers(0, X - 2)
        region[0, y0 : y0 + rng.integers(1, 12), x0 : x0 + rng.integers(1, 12)] = True
        target = gaussian_filter(region[0].astype(np.float64), 2.0, mode="constant")
        expected = spearmanr(h[0].ravel().astype(np.float64), target.ravel()).statistic
        got = spearman(torch.from_numpy(h), region=torch.from_numpy(region), sigma_px=2.0)
        assert got.values.item() == pytest.approx(expected, abs=1e-12)
