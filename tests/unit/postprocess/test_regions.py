"""Region rules and the predicted-box convention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from groundbench.postprocess import mask_to_box, select_regions


def _mask(rows):
    return torch.tensor([[[c == "#" for c in r] for r in rows]])


# two blobs: a 3-pixel diagonal (8-connected, one component) and a 2-pixel bar
MASK = _mask(
    [
        "#.....",
        ".#....",
        "..#...",
        ".....#",
        ".....#",
    ]
)


def test_box_covers_pixels_entirely():
    assert mask_to_box(MASK).tolist() == [[0.0, 0.0, 6.0, 5.0]]
    single = _mask(["...", ".#.", "..."])
    assert mask_to_box(single).tolist() == [[1.0, 1.0, 2.0, 2.0]]


def test_empty_mask_gives_nan_box():
    box = mask_to_box(torch.zeros(2, 3, 3, dtype=torch.bool))
    assert all(math.isnan(v) for v in box.flatten().tolist())


def test_largest_component_uses_8_connectivity():
    pred_mask, pred_box = select_regions(MASK, "largest_component")
    assert pred_box.tolist() == [[0.0, 0.0, 3.0, 3.0]]
    assert int(pred_mask.sum()) == 3


def test_largest_component_tie_goes_to_first_in_raster_order():
    mask = _mask(["##..##", "......"])
    assert select_regions(mask, "largest_component")[1].tolist() == [[0.0, 0.0, 2.0, 1.0]]


def test_peak_cluster_follows_the_heatmap_peak():
    heat = torch.zeros(1, 5, 6)
    heat[0, 4, 5] = 1.0
    pred_mask, pred_box = select_regions(MASK, "peak_cluster", heatmap=heat)
    assert pred_box.tolist() == [[5.0, 3.0, 6.0, 5.0]]
    assert int(pred_mask.sum()) == 2


def test_peak_cluster_ignores_peaks_outside_the_mask():
    heat = torch.zeros(1, 5, 6)
    heat[0, 0, 5] = 9.0  # not thresholded
    heat[0, 2, 2] = 1.0
    assert select_regions(MASK, "peak_cluster", heatmap=heat)[1].tolist() == [[0.0, 0.0, 3.0, 3.0]]


def test_union_box_keeps_every_pixel():
    pred_mask, pred_box = select_regions(MASK, "union_box")
    assert torch.equal(pred_mask, MASK)
    assert pred_box.tolist() == [[0.0, 0.0, 6.0, 5.0]]


def test_empty_masks_give_empty_regions_and_nan_boxes():
    for rule in ("largest_component", "peak_cluster", "union_box"):
        empty = torch.zeros(1, 4, 4, dtype=torch.bool)
        pred_mask, pred_box = select_regions(empty, rule, heatmap=torch.zeros(1, 4, 4))
        assert not pred_mask.any() and pred_box.isnan().all()


def test_largest_component_matches_scipy_on_random_masks():
    rng = np.random.default_rng(0)
    masks = rng.random((8, 30, 40)) > 0.6
    pred_mask, _ = select_regions(torch.from_numpy(masks), "largest_component")
    for b in range(8):
        labels, _ = ndimage.label(masks[b], structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())[1:]
        assert pred_mask[b].sum() == sizes.max()
        assert (labels[pred_mask[b].numpy()] == sizes.argmax() + 1).all()


def test_peak_cluster_needs_heatmap():
    with pytest.raises(ValueError, match="'peak_cluster' needs the heatmap"):
        select_regions(MASK, "peak_cluster")
