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


def test_oracle_peaks_deepest_inside_so_a_first_maximum_rule_hits():
    from groundbench.metrics import pointing

    s = sample(w=9, h=8, boxes=((2, 1, 7, 6),))
    oracle = resolve_method("oracle_box").predict([s], None, device=CPU).maps[0]
    assert (oracle > 0).int().sum().item() == 25  # the flat top is the region, as before
    assert oracle.max().item() == pytest.approx(1.001) and oracle[oracle > 0].min() >= 1.0
    assert divmod(oracle.argmax().item(), 9) == (3, 4)  # the box's centre pixel
    boxes = torch.tensor([[[2.0, 1.0, 7.0, 6.0]]], dtype=torch.float64)
    out = pointing(oracle[None], boxes=boxes, box_count=torch.tensor([1]), variant="albef")
    assert out.values.tolist() == [1.0]
    full = resolve_method("oracle_box").predict([sample(boxes=((0, 0, 6, 4),))], None, device=CPU)
    assert full.maps[0].unique().tolist() == [1.0]  # a whole-image region stays flat
    edge = resolve_method("oracle_box").predict([sample(boxes=((0, 0, 3, 4),))], None, device=CPU)
    assert edge.maps[0][:, :3].min().item() >= 1.0  # the image border counts as an edge
    assert divmod(edge.maps[0].argmax().item(), 6) == (1, 1)


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
    assert resolve_method(f"heatmaps:{tmp_path}").predict([sample(0)], None, device=CPU).kind == (
        "attention"
    )
    np.save(tmp_path / "t__1.npy", np.ones((4,), np.float32))
    with pytest.raises(MethodError) as exc:
        resolve_method(f"heatmaps:{tmp_path}")
    assert str(exc.value) == (
        f"heatmaps:{tmp_path}: map 't/1' has shape (4,) and dtype numbers; expected real "
        "numbers (float or int, not bool or complex) shaped (h, w), (P, h, w), (L, H, h, w) "
        "or (P, L, H, h, w)"
    )


def test_heatmap_file_refuses_pickles(tmp_path):
    path = tmp_path / "maps.npz"
    np.savez(path, **{"t/0": np.array([[object()]], dtype=object)})
    with pytest.raises(MethodError) as exc:
        resolve_method(f"heatmaps:{path}")
    assert str(exc.value) == (
        f"heatmaps:{path}: map 't/0' has shape (1, 1) and dtype object; expected real numbers "
        "(float or int, not bool or complex) shaped (h, w), (P, h, w), (L, H, h, w) or "
        "(P, L, H, h, w)"
    )


def test_a_file_mixing_kinds_is_refused_whatever_the_batch(tmp_path):
    # The one-kind check ran per batch: with 4 samples per batch a mixed file passed.
    path = tmp_path / "maps.npz"
    maps = {f"t/{i}": np.ones((3, 3), np.float32) for i in range(4)}
    maps |= {f"t/{i}": np.ones((1, 1, 3, 3), np.float32) for i in range(4, 8)}
    np.savez(path, **maps)
    with pytest.raises(MethodError) as exc:
        resolve_method(f"heatmaps:{path}")
    assert str(exc.value) == (
        f"heatmaps:{path}: mixes heatmaps (2-3 dims, e.g. 't/0') and attention (4-5 dims, "
        "e.g. 't/4'); use one kind"
    )


@pytest.mark.parametrize(
    ("array", "dtype"),
    [(np.ones((2, 2), bool), "bool"), (np.ones((2, 2), np.complex64), "complex64")],
)
def test_bool_and_complex_maps_are_refused(tmp_path, array, dtype):
    # Complex maps silently lost their imaginary part.
    path = tmp_path / "maps.npz"
    np.savez(path, **{"t/0": array})
    with pytest.raises(MethodError) as exc:
        resolve_method(f"heatmaps:{path}")
    assert str(exc.value) == (
        f"heatmaps:{path}: map 't/0' has shape (2, 2) and dtype {dtype}; expected real numbers "
        "(float or int, not bool or complex) shaped (h, w), (P, h, w), (L, H, h, w) or "
        "(P, L, H, h, w)"
    )


def test_bool_maps_are_refused_in_safetensors_too(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "maps.safetensors"
    save_file({"t/0": torch.ones(2, 2, dtype=torch.bool)}, str(path))
    with pytest.raises(MethodError) as exc:
        resolve_method(f"heatmaps:{path}")
    assert str(exc.value) == (
        f"heatmaps:{path}: map 't/0' has shape (2, 2) and dtype bool; expected real numbers "
        "(float or int, not bool or complex) shaped (h, w), (P, h, w), (L, H, h, w) or "
        "(P, L, H, h, w)"
    )


def test_zero_size_maps_are_refused(tmp_path):
    path = tmp_path / "maps.npz"
    np.savez(path, **{"t/0": np.ones((0, 4), np.float32)})
    with pytest.raises(MethodError) as exc:
        resolve_method(f"heatmaps:{path}")
    assert str(exc.value) == (
        f"heatmaps:{path}: map 't/0' has shape (0, 4) with no element; every map needs at "
        "least one value per axis"
    )


def test_a_duplicated_zip_member_is_refused(tmp_path):
    import zipfile

    path = tmp_path / "maps.npz"
    np.savez(path, **{"t/0": np.ones((2, 2), np.float32)})
    with zipfile.ZipFile(path, "a") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("t/0.npy", b"")
    with pytest.raises(MethodError) as exc:
        resolve_method(f"heatmaps:{path}")
    assert str(exc.value) == (
        f"heatmaps:{path}: the archive holds member 't/0.npy' twice, so which map is meant is "
        "ambiguous; rewrite it with numpy.savez (one entry per sample id)"
    )


def test_finite_maps_beyond_float32_are_refused_not_called_nan(tmp_path):
    path = tmp_path / "maps.npz"
    np.savez(path, **{"t/0": np.array([[0.0, 1e300], [1.0, 2.0]])})
    m = resolve_method(f"heatmaps:{path}")
    with pytest.raises(MethodError) as exc:
        m.predict([sample(0)], None, device=CPU)
    assert str(exc.value) == (
        f"heatmaps:{path}: map 't/0' holds finite values up to 1e+300, beyond float32 "
        "(±3.4e+38), where maps are evaluated; rescale the maps"
    )


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
