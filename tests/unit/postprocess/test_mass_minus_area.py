"""The proposal-free box of Li et al. (2022): mass share minus alpha × area share, exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from groundbench.errors import ProtocolError
from groundbench.postprocess import Pipeline, select_regions
from groundbench.postprocess.config import canonical_config
from groundbench.postprocess.regions import mass_area_boxes
from groundbench.types import RawMaps


def _brute_force(h: np.ndarray, alpha: float) -> tuple[tuple[int, int, int, int], float]:
    """Every box of whole pixels, scored as Li et al.'s FractionAreaObjective writes it:
    ``Σ_box Ĥ / Σ Ĥ − alpha · area / (Y·X)`` on the min-max normalised map; the first
    maximum in the order (top, bottom, right, left)."""
    Y, X = h.shape
    norm = (h - h.min()) / (h.max() - h.min())
    total = norm.sum()
    best, box = -math.inf, None
    for y0 in range(Y):
        for y1 in range(y0 + 1, Y + 1):
            for x1 in range(1, X + 1):
                for x0 in range(x1):
                    f = norm[y0:y1, x0:x1].sum() / total - alpha * (y1 - y0) * (x1 - x0) / (Y * X)
                    if f > best:
                        best, box = f, (x0, y0, x1, y1)
    return box, best


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.8, 2.0])
def test_matches_the_brute_force_on_random_maps(rng, alpha):
    for _ in range(6):
        Y, X = rng.integers(1, 8, size=2)
        h = rng.random((Y, X)) ** 3  # skewed, so the best box is not the whole map
        h[0, 0] += 1e-3  # never constant
        box, best = _brute_force(h, alpha)
        mask, got = mass_area_boxes(torch.from_numpy(h)[None], alpha=alpha)
        assert tuple(got[0].tolist()) == box
        x0, y0, x1, y1 = box
        assert mask[0].sum().item() == (x1 - x0) * (y1 - y0) and mask[0, y0:y1, x0:x1].all()
        # the objective reached is the brute force's maximum
        norm = (h - h.min()) / (h.max() - h.min())
        f = norm[y0:y1, x0:x1].sum() / norm.sum() - alpha * (y1 - y0) * (x1 - x0) / h.size
        assert abs(f - best) < 1e-12


def test_ties_take_the_first_box_in_the_search_order():
    # two equal blocks (dyadic values, so every sum is exact): the upper one wins; two equal
    # blocks side by side in one row band: the left one, which also ties with the box around
    # both (0.5 - 2·4/32 = 1 - 2·12/32) and comes first
    h = np.zeros((8, 8))
    h[1:3, 4:6] = 1.0
    h[5:7, 0:2] = 1.0
    assert _brute_force(h, 2.0)[0] == (4, 1, 6, 3)
    assert mass_area_boxes(torch.from_numpy(h)[None], alpha=2.0)[1][0].tolist() == [4, 1, 6, 3]
    h = np.zeros((4, 8))
    h[1:3, 5:7] = 1.0
    h[1:3, 1:3] = 1.0
    assert _brute_force(h, 2.0)[0] == (1, 1, 3, 3)
    assert mass_area_boxes(torch.from_numpy(h)[None], alpha=2.0)[1][0].tolist() == [1, 1, 3, 3]


def test_alpha_trades_mass_for_area():
    # a peak on a plateau: a small alpha takes the plateau, a large one the peak alone
    h = np.zeros((9, 9))
    h[2:7, 2:7] = 0.5
    h[4, 4] = 1.0
    boxes = [mass_area_boxes(torch.from_numpy(h)[None], alpha=a)[1][0].tolist() for a in (0.8, 8.0)]
    assert boxes == [[2, 2, 7, 7], [4, 4, 5, 5]]


def test_padding_is_not_searched_and_bad_maps_get_no_box(rng):
    h = torch.from_numpy(rng.random((3, 6, 7)))
    padded = torch.zeros(3, 9, 10, dtype=torch.float64)
    padded[:, :6, :7] = h
    valid = torch.zeros(3, 9, 10, dtype=torch.bool)
    valid[:, :6, :7] = True
    padded[:, 6:, :] = 5.0  # a high value in the padding must not attract the box
    assert torch.equal(mass_area_boxes(padded, valid)[1], mass_area_boxes(h)[1])
    bad = torch.zeros(2, 4, 4)
    bad[1, 0, 0] = math.nan
    mask, box = mass_area_boxes(bad)
    assert torch.isnan(box).all() and not mask.any()


def test_a_protocol_sets_the_rule_and_alpha():
    cfg = canonical_config({"threshold": None, "regions": "mass_minus_area"})
    assert cfg["regions"] == {"rule": "mass_minus_area", "alpha": 0.8}
    cfg = canonical_config({"threshold": None, "regions": {"rule": "mass_minus_area", "alpha": 1}})
    assert cfg["regions"] == {"rule": "mass_minus_area", "alpha": 1.0}
    # the other rules keep their plain names (and so their hashes)
    assert canonical_config({"regions": {"rule": "union_box"}})["regions"] == "union_box"
    with pytest.raises(ProtocolError) as err:
        canonical_config({"regions": "mass_minus_area"})
    assert str(err.value) == (
        "pipeline.regions: 'mass_minus_area' finds its box on the map itself and reads no "
        "thresholded mask; set pipeline.threshold to null"
    )
    with pytest.raises(ProtocolError) as err:
        canonical_config({"regions": {"rule": "union_box", "alpha": 0.5}})
    assert str(err.value) == (
        "pipeline.regions.alpha: only mass_minus_area takes alpha; remove it for 'union_box'"
    )


def test_the_pipeline_predicts_the_box_for_box_acc():
    grid = torch.zeros(4, 4)
    grid[1:3, 1:3] = 1.0
    raw = RawMaps(ids=("a",), maps=(grid,), kind="heatmap")
    pipe = Pipeline.from_config(
        {"normalise": "none", "upsample": {"mode": "nearest"}, "threshold": None,
         "regions": {"rule": "mass_minus_area", "alpha": 0.8}}
    )  # fmt: skip
    out = pipe.run(raw, [(8, 8)])
    assert out.pred_box.tolist() == [[2.0, 2.0, 6.0, 6.0]]
    assert out.pred_mask.sum().item() == 16
    same = select_regions(None, "mass_minus_area", heatmap=out.heatmap, alpha=0.8)
    assert torch.equal(same[1], out.pred_box)
