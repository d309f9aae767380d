"""CC, KL and SIM: hand cases, undefined cases, and pysaliency's own code as the oracle."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from groundbench.metrics import _inputs, cc, kl, sim
from groundbench.metrics.saliency import KL_EPSILON
from groundbench.types import Undefined

# --- pysaliency 0.2.22, pysaliency/metrics.py, copied verbatim (the oracle) -----------------


def convert_saliency_map_to_density(saliency_map, minimum_value=0.0):
    if saliency_map.min() < 0:
        saliency_map = saliency_map - saliency_map.min()
    saliency_map = saliency_map + minimum_value

    saliency_map_sum = saliency_map.sum()
    if saliency_map_sum:
        saliency_map = saliency_map / saliency_map_sum
    else:
        saliency_map[:] = 1.0
        saliency_map /= saliency_map.sum()

    return saliency_map


def CC(saliency_map_1, saliency_map_2):
    def normalize(saliency_map):
        saliency_map = np.asarray(saliency_map, dtype=float)
        saliency_map -= saliency_map.mean()
        std = saliency_map.std()

        if std:
            saliency_map /= std

        return saliency_map, std == 0

    smap1, constant1 = normalize(saliency_map_1.copy())
    smap2, constant2 = normalize(saliency_map_2.copy())

    if constant1 and not constant2:
        return 0.0
    else:
        return np.corrcoef(smap1.flatten(), smap2.flatten())[0, 1]


def probabilistic_image_based_kl_divergence(
    logp1, logp2, log_regularization=0, quotient_regularization=0
):
    if log_regularization or quotient_regularization:
        return (
            np.exp(logp2)
            * np.log(log_regularization + np.exp(logp2) / (np.exp(logp1) + quotient_regularization))
        ).sum()
    else:
        return (np.exp(logp2) * (logp2 - logp1)).sum()


def image_based_kl_divergence(
    saliency_map_1,
    saliency_map_2,
    minimum_value=1e-20,
    log_regularization=0,
    quotient_regularization=0,
):
    log_density_1 = np.log(
        convert_saliency_map_to_density(saliency_map_1, minimum_value=minimum_value)
    )
    log_density_2 = np.log(
        convert_saliency_map_to_density(saliency_map_2, minimum_value=minimum_value)
    )

    return probabilistic_image_based_kl_divergence(
        log_density_1,
        log_density_2,
        log_regularization=log_regularization,
        quotient_regularization=quotient_regularization,
    )


def MIT_KLDiv(saliency_map_1, saliency_map_2):
    return image_based_kl_divergence(
        saliency_map_1,
        saliency_map_2,
        minimum_value=0,
        log_regularization=2.2204e-16,
        quotient_regularization=2.2204e-16,
    )


def SIM(saliency_map_1, saliency_map_2):
    density_1 = convert_saliency_map_to_density(saliency_map_1, minimum_value=0)
    density_2 = convert_saliency_map_to_density(saliency_map_2, minimum_value=0)

    return np.min([density_1, density_2], axis=0).sum()


# --------------------------------------------------------------------------------------------

ORACLES = {"cc": (cc, CC), "kl": (kl, MIT_KLDiv), "sim": (sim, SIM)}


def _installed_pysaliency_metrics():
    """pysaliency/metrics.py of the installed package, loaded alone (its package imports
    Matlab helpers that need pkg_resources)."""
    for base in sys.path:
        path = Path(base) / "pysaliency" / "metrics.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location("pysaliency_metrics_alone", path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except ImportError as exc:
                pytest.skip(f"pysaliency/metrics.py does not load alone: {exc}")
            return module
    pytest.skip("pysaliency is not installed (pip install pysaliency)")


def _maps(rng, kind, B=6, Y=23, X=31):
    if kind == "random":
        h = rng.normal(size=(B, Y, X)).astype(np.float32)  # negative values: the shift
        h[:3] = np.abs(h[:3])  # non-negative maps: no shift
    else:  # tied: four levels, and one map at 0 everywhere but one pixel
        h = rng.integers(0, 4, size=(B, Y, X)).astype(np.float32)
        h[-1] = 0.0
        h[-1, 0, 0] = 2.0
    region = np.zeros((B, Y, X), dtype=bool)
    for i in range(B):
        y0, x0 = rng.integers(0, Y - 6), rng.integers(0, X - 6)
        region[i, y0 : y0 + rng.integers(2, 7), x0 : x0 + rng.integers(2, 7)] = True
    return h, region


def test_the_copied_oracle_is_pysaliency(rng):
    ps = _installed_pysaliency_metrics()
    h, region = _maps(rng, "random")
    for i in range(3):
        a, b = h[i].astype(np.float64), region[i].astype(np.float64)
        assert CC(a, b) == ps.CC(a, b)
        assert MIT_KLDiv(a, b) == ps.MIT_KLDiv(a, b)
        assert SIM(a, b) == ps.SIM(a, b)


@pytest.mark.parametrize("name", sorted(ORACLES))
@pytest.mark.parametrize("kind", ["random", "tied"])
@pytest.mark.parametrize("sigma_px", [0.0, 1.5])
@pytest.mark.parametrize("path", ["numpy", "torch"])
def test_matches_pysaliency_to_1e_12(rng, monkeypatch, name, kind, sigma_px, path):
    if path == "torch":
        monkeypatch.setattr(_inputs, "use_numpy", lambda t: False)
    ours, oracle = ORACLES[name]
    h, region = _maps(rng, kind)
    out = ours(torch.from_numpy(h), region=torch.from_numpy(region), sigma_px=sigma_px)
    assert out.undefined.tolist() == [0] * len(h)
    for i in range(len(h)):
        target = region[i].astype(np.float64)
        if sigma_px:
            target = gaussian_filter(target, sigma_px, mode="constant")
        ref = oracle(h[i].astype(np.float64), target)
        assert abs(out.values[i].item() - ref) <= 1e-12, (i, out.values[i].item(), ref)


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_padding_is_left_out(rng, name):
    ours, oracle = ORACLES[name]
    h, region = _maps(rng, "random")
    valid = np.ones_like(region)
    valid[:, :, 25:] = False
    region &= valid
    out = ours(torch.from_numpy(h), region=torch.from_numpy(region), valid=torch.from_numpy(valid))
    for i in range(len(h)):
        ref = oracle(h[i][valid[i]].astype(np.float64), region[i][valid[i]].astype(np.float64))
        assert abs(out.values[i].item() - ref) <= 1e-12


def test_hand_cases():
    h = torch.tensor([[[3.0, 1.0], [0.0, 0.0]]])
    top = torch.tensor([[[True, True], [False, False]]])
    assert sim(h, region=top).values.item() == 0.5 + 0.25
    # p = (1/2, 1/2, 0, 0), q = (3/4, 1/4, 0, 0)
    want = 0.5 * math.log(KL_EPSILON + 0.5 / (0.75 + KL_EPSILON)) + 0.5 * math.log(
        KL_EPSILON + 0.5 / (0.25 + KL_EPSILON)
    )
    assert kl(h, region=top).values.item() == pytest.approx(want, abs=1e-15)
    assert cc(h, region=top).values.item() == pytest.approx(
        np.corrcoef([3, 1, 0, 0], [1, 1, 0, 0])[0, 1], abs=1e-15
    )


def test_constant_and_zero_maps_follow_pysaliency():
    region = torch.zeros(2, 3, 3, dtype=torch.bool)
    region[:, 0, :2] = True
    h = torch.zeros(2, 3, 3)
    h[1] = -2.0  # constant negative: shifted to 0, then uniform
    assert cc(h, region=region).values.tolist() == [0.0, 0.0]
    uniform = sim(h, region=region).values.tolist()
    assert uniform == [pytest.approx(2 / 9, abs=1e-15)] * 2
    want = math.log(KL_EPSILON + 0.5 / (1 / 9 + KL_EPSILON))
    assert kl(h, region=region).values.tolist() == [pytest.approx(want, abs=1e-13)] * 2


@pytest.mark.parametrize("fn", [cc, kl, sim])
def test_undefined_cases_are_counted(fn):
    region = torch.zeros(3, 4, 4, dtype=torch.bool)
    region[1] = True
    region[2, 0, 0] = True
    h = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
    h[2, 1, 1] = math.nan
    out = fn(h, region=region)
    assert out.undefined.tolist() == [
        Undefined.EMPTY_REGION,
        Undefined.FULL_REGION,
        Undefined.NAN_INPUT,
    ]
    assert out.values.isnan().all()


def test_a_suite_sharing_summaries_gives_the_same_numbers(rng):
    from groundbench.metrics.suite import MetricSuite
    from groundbench.types import HeatmapBatch

    h, region = _maps(rng, "random")
    batch = HeatmapBatch(
        ids=tuple(str(i) for i in range(len(h))),
        heatmap=torch.from_numpy(h),
        valid=torch.ones(region.shape, dtype=torch.bool),
        region=torch.from_numpy(region),
        boxes=torch.zeros(len(h), 0, 4),
        box_count=torch.zeros(len(h), dtype=torch.long),
    )
    suite = MetricSuite([{"name": "nss"}, {"name": "cc"}, {"name": "kl"}, {"name": "sim"}])
    scores = suite.score(batch)
    for j, fn in enumerate((cc, kl, sim), start=1):
        alone = fn(torch.from_numpy(h), region=torch.from_numpy(region)).values.numpy()
        assert np.array_equal(scores.values[:, j], alone)
