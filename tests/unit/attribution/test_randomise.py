"""Cascading randomisation (Quantus MPRT semantics) over a model-agnostic explain callable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from groundbench.attribution.randomise import cascading_randomisation, spearman_abs_max
from groundbench.errors import MethodError


def _net() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 64))


X = torch.randn(5, 16, generator=torch.Generator().manual_seed(1))


def test_spearman_takes_abs_then_max_normalises_like_quantus():
    a = torch.tensor([[-3.0, 1.0], [2.0, 0.5]])
    b = torch.tensor([[1.0, 4.0], [2.0, -8.0]])
    expected = spearmanr(np.abs(a.numpy()).ravel(), np.abs(b.numpy()).ravel()).statistic
    assert spearman_abs_max(a, b) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(spearman_abs_max(torch.ones(2, 2), b))


def test_weight_dependent_maps_decorrelate_and_weights_come_back():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    original, steps = cascading_randomisation(
        lambda: [m.view(8, 8) for m in net(X)], {"all": [net[2], net[0]]}, seed=42
    )
    assert [(s.tower, s.depth, s.layer) for s in steps] == [("all", 1, "Linear"), ("all", 2, "Linear")]
    assert steps[-1].spearman.shape == (5,)
    assert np.nanmean(steps[-1].spearman) < 0.5
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert torch.equal(original[0], net(X)[0].view(8, 8).detach())


def test_maps_that_ignore_the_weights_survive():
    net = _net()
    image = torch.rand(5, 12, 12, generator=torch.Generator().manual_seed(2))

    def edges():
        net(X)  # the model runs, but the map is a fixed function of the image
        return [(im[1:, :] - im[:-1, :]).abs()[:, 1:] + (im[:, 1:] - im[:, :-1]).abs()[1:, :] for im in image]

    _, steps = cascading_randomisation(edges, {"all": [net[2], net[0]]})
    assert all(np.allclose(s.spearman, 1.0) for s in steps)


def test_each_reset_is_seeded_with_seed_plus_one():
    net = _net()
    seen = []

    def grab():
        seen.append(net[0].weight.detach().clone())
        return [seen[-1]]

    cascading_randomisation(grab, {"t": [net[0]]}, seed=7)
    torch.manual_seed(8)
    fresh = torch.nn.Linear(16, 32)
    fresh.reset_parameters()
    torch.manual_seed(8)
    fresh.reset_parameters()
    assert torch.equal(seen[1], fresh.weight)


def test_towers_are_randomised_separately_and_norm_resets_are_flagged():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    probe = torch.nn.Module()
    probe.scale = torch.nn.Parameter(torch.ones(4))
    probe.lin = net[0]
    x = torch.randn(3, 4)
    _, steps = cascading_randomisation(
        lambda: [net(x) * probe.scale], {"a": [net[1]], "b": [probe]}, max_layers=None
    )
    assert [s.tower for s in steps] == ["a", "b"]
    assert steps[0].deterministic == ("LayerNorm",)
    assert steps[1].kept == ("scale",) and steps[1].reset == ("Linear",)


def test_no_layers_is_an_error():
    with pytest.raises(MethodError, match="the method named no layers to randomise"):
        cascading_randomisation(lambda: [torch.ones(2)], {"vision": []})
