"""NSS: hand cases, constant map, undefined cases, numpy and pysaliency agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from groundbench.metrics import nss
from groundbench.types import Undefined


def _numpy_nss(h, region):
    return (h[region].mean() - h.mean()) / h.std()


def test_hand_case():
    h = torch.tensor([[[4.0, 0.0], [0.0, 0.0]]])
    region = torch.tensor([[[True, False], [False, False]]])
    # mean 1, population std sqrt(3): (4 - 1) / sqrt(3)
    assert nss(h, region=region).values.item() == pytest.approx(math.sqrt(3), rel=1e-12)


def test_constant_map_scores_zero_and_undefined_cases():
    region = torch.zeros(3, 3, 3, dtype=torch.bool)
    region[0, 0, 0] = True
    region[2] = True
    h = torch.ones(3, 3, 3)
    out = nss(h, region=region)
    assert out.values[0].item() == 0.0
    assert out.undefined.tolist() == [0, Undefined.EMPTY_REGION, Undefined.FULL_REGION]


def test_large_offset_keeps_precision(rng):
    h = rng.random((1, 30, 40)).astype(np.float64)
    region = rng.random((1, 30, 40)) < 0.1
    ref = _numpy_nss(h[0], region[0])
    shifted = torch.from_numpy(h + 1000.0).float()
    got = nss(shifted, region=torch.from_numpy(region)).values.item()
    assert got == pytest.approx(ref, abs=1e-3)  # float32 resolution at 1000 is 6e-5


def test_agrees_with_numpy_and_honours_valid(rng):
    h = rng.random((5, 20, 30)).astype(np.float32)
    region = rng.random((5, 20, 30)) < 0.15
    valid = np.ones_like(region)
    valid[:, 15:, :] = False
    region &= valid
    out = nss(torch.from_numpy(h), region=torch.from_numpy(region), valid=torch.from_numpy(valid))
    for i in range(5):
        hv = h[i][valid[i]].astype(np.float64)
        ref = _numpy_nss(hv, region[i][valid[i]])
        assert out.values[i].item() == pytest.approx(ref, abs=1e-6)


def test_agrees_with_pysaliency(rng):
    pysaliency = pytest.importorskip("pysaliency")
    h = rng.random((3, 20, 30)).astype(np.float32)
    region = rng.random((3, 20, 30)) < 0.2
    out = nss(torch.from_numpy(h), region=torch.from_numpy(region))
    for i in range(3):
        ys, xs = np.nonzero(region[i])
        ref = np.mean(pysaliency.metrics.NSS(h[i].astype(np.float64), xs, ys))
        assert out.values[i].item() == pytest.approx(ref, abs=1e-6)
