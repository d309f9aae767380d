"""The pipeline end to end: order of steps, batching by shape, padding and outputs."""

from __future__ import annotations

import math

import pytest
import torch

from groundbench.errors import DataFormatError
from groundbench.postprocess import Pipeline, ProcessedMaps
from groundbench.types import RawMaps

GEN = torch.Generator().manual_seed(0)


def _heatmaps(shapes):
    maps = tuple(torch.rand(*s, generator=GEN) for s in shapes)
    return RawMaps(ids=tuple(f"s{i}" for i in range(len(maps))), maps=maps)


def test_hand_computed_run():
    pipe = Pipeline.from_config(
        {
            "upsample": {"mode": "nearest"},
            "threshold": {"method": "fraction_of_max", "value": 0.5},
            "regions": "union_box",
        }
    )
    raw = RawMaps(ids=("a",), maps=(torch.tensor([[2.0, 4.0], [6.0, 10.0]]),))
    out = pipe.run(raw, [(4, 6)])
    assert isinstance(out, ProcessedMaps)
    assert out.heatmap[0, :, 0].tolist() == [0.0, 0.0, 0.5, 0.5]  # min-max: 0, .25, .5, 1
    assert out.pred_box.tolist() == [[0.0, 2.0, 6.0, 4.0]]  # bottom row of patches
    assert out.pred_box.dtype == torch.float64


def test_mixed_sizes_are_padded_and_match_single_sample_runs():
    pipe = Pipeline.from_config({"smooth": {"sigma_px": 1.5}, "upsample": {"mode": "bicubic"}})
    raw = _heatmaps([(4, 4), (3, 5), (4, 4), (2, 3, 3)])  # the last one has 2 passes
    sizes = [(20, 24), (16, 30), (12, 12), (20, 24)]
    out = pipe.run(raw, sizes)
    assert out.heatmap.shape == (4, 20, 30) and out.heatmap.dtype == torch.float32
    assert out.pred_mask.shape == (4, 20, 30) and out.pred_box.shape == (4, 4)
    for i, (h, w) in enumerate(sizes):
        assert out.valid[i].sum() == h * w and out.valid[i, :h, :w].all()
        assert (out.heatmap[i][~out.valid[i]] == 0).all()
        assert not out.pred_mask[i][~out.valid[i]].any()
        alone = pipe.run(RawMaps(ids=(raw.ids[i],), maps=(raw.maps[i],)), [(h, w)])
        assert torch.equal(alone.heatmap[0], out.heatmap[i, :h, :w])
        assert torch.equal(alone.pred_box[0], out.pred_box[i])


def test_attention_passes_layers_and_gate():
    P, L, H = 2, 3, 4
    maps = tuple(torch.rand(P, L, H, 4, 4, generator=GEN) for _ in range(2))
    gate = torch.zeros(L, H)
    gate[2, 1] = 1.0
    raw = RawMaps(ids=("a", "b"), maps=maps, kind="attention", head_weights=gate)
    pipe = Pipeline.from_config(
        {"aggregate": {"heads": "gate"}, "upsample": {"mode": "nearest"}, "normalise": "none"}
    )
    out = pipe.run(raw, [(8, 8), (8, 8)])
    expected = maps[1].mean(dim=0)[2, 1].repeat_interleave(2, 0).repeat_interleave(2, 1)
    torch.testing.assert_close(out.heatmap[1], expected)


def test_threshold_and_regions_can_be_off():
    raw = _heatmaps([(3, 3)])
    off = Pipeline.from_config({"threshold": None, "regions": None}).run(raw, [(6, 6)])
    assert off.pred_mask is None and off.pred_box is None
    mask_only = Pipeline.from_config({"threshold": {"method": "mean"}, "regions": None})
    out = mask_only.run(raw, [(6, 6)])
    assert out.pred_box is None and torch.equal(out.pred_mask, out.heatmap > out.heatmap.mean())


def test_nan_map_stays_nan_and_predicts_nothing():
    bad = torch.rand(4, 4, generator=GEN)
    bad[1, 2] = math.nan
    raw = RawMaps(ids=("bad", "ok"), maps=(bad, torch.rand(4, 4, generator=GEN)))
    out = Pipeline.from_config(None).run(raw, [(8, 8), (8, 8)])
    assert out.heatmap[0].isnan().any() and not out.heatmap[1].isnan().any()
    assert out.pred_box[0].isnan().all() and not out.pred_box[1].isnan().any()


def test_device_argument_and_empty_batch():
    raw = _heatmaps([(3, 3)])
    assert Pipeline.from_config(None).run(raw, [(5, 5)], device="cpu").heatmap.device.type == "cpu"
    empty = Pipeline.from_config(None).run(RawMaps(ids=(), maps=()), [])
    assert empty.heatmap.shape == (0, 0, 0) and empty.pred_box.shape == (0, 4)


def test_sizes_must_match_the_batch():
    with pytest.raises(DataFormatError) as err:
        Pipeline.from_config(None).run(_heatmaps([(3, 3)]), [(5, 5), (5, 5)])
    assert str(err.value) == (
        "Pipeline.run got 2 sizes for 1 maps; pass one (height, width) per sample"
    )
    with pytest.raises(DataFormatError, match=r"sample 's0': output size must be positive"):
        Pipeline.from_config(None).run(_heatmaps([(3, 3)]), [(0, 5)])


@pytest.mark.gpu
def test_cuda_run_matches_cpu():
    maps = tuple(torch.rand(2, 2, 3, 6, 6, generator=GEN) for _ in range(3))
    raw = RawMaps(ids=("a", "b", "c"), maps=maps, kind="attention")
    pipe = Pipeline.from_config({"smooth": {"sigma_px": 2.0}, "threshold": {"method": "otsu"}})
    sizes = [(40, 50), (30, 50), (40, 20)]
    cpu = pipe.run(raw, sizes)
    gpu = pipe.run(raw, sizes, device="cuda")
    assert gpu.heatmap.device.type == "cuda"
    torch.testing.assert_close(gpu.heatmap.cpu(), cpu.heatmap, atol=1e-5, rtol=0)
    # float rounding of the blur may move pixels that sit exactly on the level
    agree = (gpu.pred_mask.cpu() == cpu.pred_mask).float().mean()
    assert agree > 0.999
