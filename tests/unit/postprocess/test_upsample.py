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


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize("align", ["patch", "corners"])
@pytest.mark.parametrize("size", [(20, 33), (5, 7), (64, 48)])
def test_an_extent_of_the_whole_output_changes_nothing(mode, align, size):
    grid = _grid(B=3, h=5, w=7)
    whole = (0.0, 0.0, float(size[1]), float(size[0]))
    ours = upsample_maps(grid, size, mode=mode, align=align, extent=whole)
    ref = upsample_maps(grid, size, mode=mode, align=align)
    assert torch.allclose(ours, ref, atol=2e-6, rtol=0)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_a_centre_crop_lands_on_its_rectangle_and_the_rest_gets_the_lowest_value(mode):
    # a CLIP-style centre crop: a 40 × 20 image, the model saw columns 10..30
    grid = _grid(B=2, h=4, w=4)
    out = upsample_maps(grid, (20, 40), mode=mode, extent=(10.0, 0.0, 30.0, 20.0))
    inside = upsample_maps(grid, (20, 20), mode=mode)
    assert torch.allclose(out[:, :, 10:30], inside, atol=2e-6, rtol=0)
    lowest = grid.amin(dim=(1, 2))[:, None, None]
    assert torch.equal(out[:, :, :10], lowest.expand(2, 20, 10))
    assert torch.equal(out[:, :, 30:], lowest.expand(2, 20, 10))


def test_a_letterbox_reaches_beyond_the_output():
    # a 20 × 10 image padded to a 20 × 20 square: the map's rows 0..5 and 15..20 are padding
    grid = torch.arange(16.0).reshape(1, 4, 4)
    out = upsample_maps(grid, (10, 20), mode="nearest", extent=(0.0, -5.0, 20.0, 15.0))
    square = upsample_maps(grid, (20, 20), mode="nearest")
    assert torch.equal(out, square[:, 5:15])


def test_pixels_whose_centre_is_outside_the_extent_are_outside():
    grid = torch.tensor([[[8.0, 9.0, 7.0]]])
    out = upsample_maps(grid, (1, 8), mode="nearest", extent=(2.0, 0.0, 6.5, 1.0))
    # centres 0.5 .. 7.5; inside [2, 6.5]: columns 2..6 (the rim is inside), each reading
    # cell floor((centre - 2) · 3 / 4.5), the last one clamped; columns 0, 1, 7 get the min 7
    assert out[0, 0].tolist() == [7.0, 7.0, 8.0, 9.0, 9.0, 7.0, 7.0, 7.0]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_clip_clamps_to_each_input_maps_range_and_changes_nothing_inside_it(mode):
    maps = _grid(B=3, h=4, w=5)
    maps[1] = 0.0
    maps[1, 1:3, 1:3] = 1.0  # a sharp block: bicubic rings below 0 and above 1 around it
    free = upsample_maps(maps, (17, 23), mode=mode)
    clipped = upsample_maps(maps, (17, 23), mode=mode, clip=True)
    low, high = maps.amin((1, 2), keepdim=True), maps.amax((1, 2), keepdim=True)
    torch.testing.assert_close(clipped, torch.minimum(torch.maximum(free, low), high))
    inside = (free >= low) & (free <= high)
    assert torch.equal(clipped[inside], free[inside])
    if mode == "bicubic":
        assert float(free[1].min()) < 0 and float(clipped[1].min()) == 0.0


def test_clip_keeps_nan_where_it_spreads_and_bounds_the_rest():
    maps = torch.zeros(1, 4, 4)
    maps[0, 1:3, 1:3] = 1.0
    maps[0, 0, 0] = float("nan")
    free = upsample_maps(maps, (8, 8), mode="bicubic")
    clipped = upsample_maps(maps, (8, 8), mode="bicubic", clip=True)
    assert torch.equal(clipped.isnan(), free.isnan()) and not bool(free.isnan().all())
    numbers = clipped[~clipped.isnan()]
    assert float(numbers.min()) >= 0.0 and float(numbers.max()) <= 1.0


def test_clip_lifts_no_background_under_min_max():
    """A box painted on the grid keeps a zero background after bicubic and min-max only
    when clipped: ringing below zero would lift it (docs/metrics.md, soft_iou)."""
    maps = torch.zeros(1, 16, 16)
    maps[0, 6:9, 6:9] = 1.0
    for clip, zero in ((False, False), (True, True)):
        up = upsample_maps(maps, (64, 64), mode="bicubic", clip=clip)[0]
        h = (up - up.min()) / (up.max() - up.min())
        assert bool((h[:8, :8] == 0).all()) is zero
