"""Upsampling: patch-footprint nearest, and agreement with torch's interpolate conventions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from groundbench.postprocess import upsample_maps


def _grid(B=2, h=3, w=4, seed=0):
    return torch.rand(B, h, w, generator=torch.Generator().manual_seed(seed))


def test_nearest_patch_reproduces_blocky_patches_exactly():
    grid = _grid()
    out = upsample_maps(grid, (3 * 16, 4 * 16), mode="nearest", align="patch")
    blocks = grid.repeat_interleave(16, dim=1).repeat_interleave(16, dim=2)
    assert torch.equal(out, blocks)


def test_nearest_patch_picks_the_cell_holding_the_pixel_centre():
    # 2 cells over 5 pixels: cell 0 covers [0, 2.5), cell 1 covers [2.5, 5)
    out = upsample_maps(torch.tensor([[[0.0, 1.0]]]), (1, 5), mode="nearest", align="patch")
    assert out[0, 0].tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]  # centre 2.5 lies in cell 1


def test_nearest_patch_matches_torch_nearest_exact():
    grid = _grid(h=7, w=5)
    ours = upsample_maps(grid, (30, 23), mode="nearest", align="patch")
    ref = F.interpolate(grid[:, None], size=(30, 23), mode="nearest-exact")[:, 0]
    assert torch.equal(ours, ref)


def test_nearest_corners_pins_corner_cells_to_corner_pixels():
    out = upsample_maps(torch.tensor([[[0.0, 1.0, 2.0]]]), (1, 5), mode="nearest", align="corners")
    # source position j * 2 / 4 = 0, 0.5, 1, 1.5, 2, rounded half up
    assert out[0, 0].tolist() == [0.0, 1.0, 1.0, 2.0, 2.0]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize(("align", "corners"), [("patch", False), ("corners", True)])
def test_smooth_modes_follow_interpolate(mode, align, corners):
    grid = _grid()
    ours = upsample_maps(grid, (20, 33), mode=mode, align=align)
    ref = F.interpolate(grid[:, None], size=(20, 33), mode=mode, align_corners=corners)[:, 0]
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_bilinear_patch_puts_cell_values_at_patch_centres():
    grid = torch.tensor([[[0.0, 1.0]]])
    out = upsample_maps(grid, (1, 8), mode="bilinear", align="patch")
    # patch centres are pixels 1.5 and 5.5: pixels up to col 1 and from col 6 copy the cells
    assert out[0, 0, :2].tolist() == [0.0, 0.0] and out[0, 0, 6:].tolist() == [1.0, 1.0]
    assert out[0, 0, 3].item() == pytest.approx(0.375)


def test_same_size_is_identity_and_nan_spreads_only_locally():
    grid = _grid()
    assert torch.equal(upsample_maps(grid, (3, 4)), grid)
    grid[0, 0, 0] = float("nan")
    out = upsample_maps(grid, (30, 40), mode="bilinear")
    assert out[0].isnan().any() and not out[0, 20:, 20:].isnan().any()
