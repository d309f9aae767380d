import sys
import textwrap

import numpy as np
import pytest
import torch

from groundbench.errors import MethodError, UnknownNameError
from groundbench.methods import resolve_method
from groundbench.types import GroundingSample

CPU = torch.device("cpu")


def sample(i=0, w=6, h=4, boxes=((1, 1, 3, 3),)):
    return GroundingSample(
        id=f"t/{i}",
        image_path="none.png",
        width=w,
        height=h,
        text="the cup",
        phrase="cup",
        span=(4, 7),
        boxes=np.array(boxes, dtype=float),
    )


def test_baselines_shapes_and_values():
    s = [sample(0), sample(1, w=5, h=3)]
    for spec in ("uniform", "centre_prior", "random", "oracle_box"):
        m = resolve_method(spec)
        raw = m.predict(s, None, device=CPU)
        assert raw.ids == ("t/0", "t/1") and raw.kind == "heatmap"
        assert [tuple(x.shape) for x in raw.maps] == [(4, 6), (3, 5)]
        assert not m.needs_images and len(m.fingerprint()) == 64
    oracle = resolve_method("oracle_box").predict([sample()], None, device=CPU).maps[0]
    assert oracle.int().tolist() == [[0] * 6, [0, 1, 1, 0, 0, 0], [0, 1, 1, 0, 0, 0], [0] * 6]
    centre = resolve_method("centre_prior").predict([sample(w=5, h=5)], None, device=CPU).maps[0]
    assert centre.argmax().item() == 12  # the centre pixel of a 5x5 image


def test_random_is_seeded_per_sample_id_not_per_batch():
    m = resolve_method("random:7")
    alone = m.predict([sample(1)], None, device=CPU).maps[0]
    batched = m.predict([sample(0), sample(1)], None, device=CPU).maps[1]
    assert torch.equal(alone, batched)
    assert not torch.equal(
        alone, resolve_method("random:8").predict([sample(1)], None, device=CPU).maps[0]
    )
    assert resolve_method("random:7").fingerprint() != resolve_method("random:8").fingerprint()


def test_bad_specs_are_clear_errors():
    with pytest.raises(
        UnknownNameError, match="unknown methods 'centre' .*did you mean 'centre_prior'"
    ):
        resolve_method("centre")
    with pytest.raises(
        MethodError,
        match=r"method centre_prior:abc: the argument must be a number, e.g. centre_prior:0.25",
    ):
        resolve_method("centre_prior:abc")
    with pytest.raises(MethodError, match="heatmaps needs a path"):
        resolve_method("heatmaps")


def test_heatmap_npz_round_trip_and_id_checks(tmp_path):
    path = tmp_path / "maps.npz"
    np.savez(path, **{"t/0": np.ones((2, 3), np.float32), "t/1": np.zeros((2, 3), np.float32)})
    m = resolve_method(f"heatmaps:{path}")
    raw = m.predict([sample(0), sample(1)], None, device=CPU)
    assert raw.kind == "heatmap" and raw.maps[0].shape == (2, 3)
    m.check_ids(["t/0", "t/1"])
    with pytest.raises(
        MethodError, match=r"1 sample ids have no map \(first: \['t/2'\]\); 1 maps name no sample"
    ):
        m.check_ids(["t/0", "t/2"])


def test_heatmap_directory_attention_and_bad_shape(tmp_path):
    np.save(tmp_path / "t__0.npy", np.ones((2, 2, 4, 4), np.float32))
    np.save(tmp_path / "t__1.npy", np.ones((4,), np.float32))
    m = resolve_method(f"heatmaps:{tmp_path}")
    assert m.predict([sample(0)], None, device=CPU).kind == "attention"
    with pytest.raises(MethodError, match=r"map 't/1' has shape \(4,\)"):
        m.predict([sample(1)], None, device=CPU)


def test_heatmap_file_refuses_pickles(tmp_path):
    path = tmp_path / "maps.npz"
    np.savez(path, **{"t/0": np.array([object()], dtype=object)})
    with pytest.raises(MethodError, match="unreadable"):
        resolve_method(f"heatmaps:{path}").predict([sample(0)], None, device=CPU)


def test_heatmap_safetensors(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "maps.safetensors"
    save_file({"t/0": torch.rand(3, 3)}, str(path))
    assert resolve_method(f"heatmaps:{path}").predict([sample(0)], None, device=CPU).maps[
        0
    ].shape == (3, 3)


def test_plugin_needs_declared_supervision(tmp_path, monkeypatch):
    (tmp_path / "myplug.py").write_text(
        textwrap.dedent("""
        import torch
        from groundbench.types import RawMaps
        def good(samples, images):
            return RawMaps(tuple(s.id for s in samples), tuple(torch.ones(2, 2) for _ in samples))
        good.supervision = "box-free"
        good.needs_images = False
        def undeclared(samples, images):
            return None
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    m = resolve_method("plugin:myplug:good")
    assert m.supervision == "box-free" and not m.needs_images
    assert m.predict([sample()], None, device=CPU).maps[0].shape == (2, 2)
    with pytest.raises(
        MethodError, match="declare the supervision class, e.g. undeclared.supervision = 'box-free'"
    ):
        resolve_method("plugin:myplug:undeclared")
    with pytest.raises(MethodError, match="cannot import 'nope_missing'"):
        resolve_method("plugin:nope_missing:fn")
    sys.modules.pop("myplug", None)
