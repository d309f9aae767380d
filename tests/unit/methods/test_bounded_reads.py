"""Heatmap files whose headers ask for more memory than they hold, or than any map may use."""

import io
import re
import zipfile

import numpy as np
import pytest

from groundbench import bounds
from groundbench.errors import MethodError
from groundbench.methods import resolve_method

LIMIT = "(docs/formats.md, Limits); write maps at the model's own resolution"
REWRITE = "the file is truncated or its header forged: write it again"


def forged_npy(shape, payload=b"\0" * 16) -> bytes:
    """A .npy whose header declares ``shape`` float32 but which holds ``payload`` only."""
    buf = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


def test_npz_member_forging_a_huge_shape_is_refused_before_allocating(tmp_path):
    path = tmp_path / "maps.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("t/0.npy", forged_npy((100000, 100000)))
    assert path.stat().st_size < 400
    with pytest.raises(MethodError) as err:
        resolve_method(f"heatmaps:{path}")
    assert str(err.value) == (
        f"heatmaps:{path}: map 't/0' (t/0.npy) declares shape (100000, 100000) = "
        f"10,000,000,000 values, over the limit of 33,554,432 values per map {LIMIT}"
    )


def test_npz_member_declaring_more_bytes_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "maps.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("t/0.npy", forged_npy((1000, 1000)))
    with pytest.raises(MethodError) as err:
        resolve_method(f"heatmaps:{path}")
    assert str(err.value) == (
        f"heatmaps:{path}: map 't/0' (t/0.npy) declares shape (1000, 1000) = 4,000,000 bytes "
        f"of data but holds 16 bytes; {REWRITE}"
    )


def test_deflated_member_over_the_limit_is_refused_before_it_is_inflated(tmp_path, monkeypatch):
    # an honest member that inflates to 4096 values, with the limit lowered to 1024: the
    # same path refuses a 2 GB bomb at the real limit
    path = tmp_path / "maps.npz"
    np.savez_compressed(path, **{"t/0": np.zeros((64, 64), np.float32)})
    monkeypatch.setattr(bounds, "MAX_MAP_ELEMENTS", 1024)
    inflated = []
    real_open = zipfile.ZipFile.open

    def counting_open(self, name, *a, **k):
        f = real_open(self, name, *a, **k)
        real_read = f.read
        f.read = lambda n=-1: inflated.append(len(b := real_read(n))) or b
        return f

    monkeypatch.setattr(zipfile.ZipFile, "open", counting_open)
    with pytest.raises(MethodError, match=re.escape("= 4,096 values, over the limit of 1,024")):
        resolve_method(f"heatmaps:{path}")
    assert sum(inflated) < 1024  # only the header was inflated


def test_npy_file_in_a_directory_is_bounded_by_its_real_size(tmp_path):
    (tmp_path / "t__0.npy").write_bytes(forged_npy((50, 50)))
    with pytest.raises(MethodError) as err:
        resolve_method(f"heatmaps:{tmp_path}")
    assert str(err.value) == (
        f"heatmaps:{tmp_path}: map 't/0' (t__0.npy) declares shape (50, 50) = 10,000 bytes of "
        f"data but holds 16 bytes; {REWRITE}"
    )


def test_safetensors_entry_over_the_limit_is_refused(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "maps.safetensors"
    save_file({"t/0": torch.zeros(40, 40)}, str(path))
    monkeypatch.setattr(bounds, "MAX_MAP_ELEMENTS", 1000)
    with pytest.raises(
        MethodError,
        match=re.escape(
            f"heatmaps:{path}: map 't/0' declares shape (40, 40) = 1,600 values, over the limit of "
            "1,000 values per map"
        ),
    ):
        resolve_method(f"heatmaps:{path}")


def test_maps_at_the_limit_still_load(tmp_path, monkeypatch):
    monkeypatch.setattr(bounds, "MAX_MAP_ELEMENTS", 4096)
    path = tmp_path / "maps.npz"
    np.savez_compressed(path, **{"t/0": np.ones((64, 64), np.float32)})
    assert resolve_method(f"heatmaps:{path}").kind == "heatmap"
