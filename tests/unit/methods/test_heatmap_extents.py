"""A heatmap file's optional extents file: which image rectangle each map covers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from groundbench.errors import MethodError
from groundbench.methods import resolve_method
from groundbench.types import GroundingSample

CPU = torch.device("cpu")


def _sample(i):
    return GroundingSample(id=f"t/{i}", image_path="none.png", width=60, height=30, text="a dot",
                           phrase="dot", span=(2, 5), boxes=np.array([[1.0, 1.0, 3.0, 3.0]]))  # fmt: skip


@pytest.mark.parametrize("layout", ["npz", "dir"])
def test_extents_travel_with_the_maps_and_into_the_fingerprint(tmp_path, layout):
    maps = {"t/0": np.ones((4, 4), np.float32), "t/1": np.ones((2, 4), np.float32)}
    if layout == "npz":
        path = tmp_path / "maps.npz"
        np.savez(path, **maps)
        sidecar = tmp_path / "maps.extents.json"
    else:
        path = tmp_path / "maps"
        path.mkdir()
        for sid, m in maps.items():
            np.save(path / (sid.replace("/", "__") + ".npy"), m)
        sidecar = path / "extents.json"
    without = resolve_method(f"heatmaps:{path}")
    assert without.predict([_sample(0)], None, device=CPU).extents is None
    sidecar.write_text(json.dumps({"t/0": [15, 0, 45, 30]}), encoding="utf-8")
    method = resolve_method(f"heatmaps:{path}")
    raw = method.predict([_sample(0), _sample(1)], None, device=CPU)
    assert raw.extents == ((15.0, 0.0, 45.0, 30.0), None)
    assert method.fingerprint() != without.fingerprint()


def test_a_bad_extents_file_is_refused(tmp_path):
    path = tmp_path / "maps.npz"
    np.savez(path, **{"t/0": np.ones((4, 4), np.float32)})
    sidecar = tmp_path / "maps.extents.json"
    sidecar.write_text(json.dumps({"t/9": [0, 0, 1, 1]}), encoding="utf-8")
    with pytest.raises(MethodError) as exc:
        resolve_method(f"heatmaps:{path}")
    assert str(exc.value) == (
        f"heatmaps:{path}: maps.extents.json names 1 ids with no map (first: ['t/9']); give "
        "extents only for the file's maps"
    )
    sidecar.write_text(json.dumps({"t/0": [5, 0, 5, 1]}), encoding="utf-8")
    with pytest.raises(MethodError) as exc:
        resolve_method(f"heatmaps:{path}")
    assert str(exc.value) == (
        f"heatmaps:{path}: maps.extents.json: sample 't/0': extent must be [x0, y0, x1, y1] "
        "image pixels with x1 > x0 and y1 > y0, got [5.0, 0.0, 5.0, 1.0]"
    )
