"""``heatmaps:PATH``: maps precomputed by any external model (format in docs/formats.md).

``PATH`` is one of:

- a ``.npz`` archive (``numpy.savez``) whose keys are sample ids;
- a ``.safetensors`` file whose tensor names are sample ids;
- a directory of ``.npy`` files named ``<sample id with "/" replaced by "__">.npy``.

Each entry is a float map ``(h, w)`` or ``(P, h, w)`` (passes), or raw cross-attention
``(L, H, h, w)`` or ``(P, L, H, h, w)``, at any resolution; all entries have the same kind.
Nothing is ever unpickled (``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from groundbench.errors import MethodError
from groundbench.methods.base import METHODS
from groundbench.types import GroundingSample, RawMaps

_KINDS = {2: "heatmap", 3: "heatmap", 4: "attention", 5: "attention"}


def _id_to_filename(sample_id: str) -> str:
    return sample_id.replace("/", "__") + ".npy"


class HeatmapFile:
    """Serve maps from a file or directory keyed by sample id.

    Args:
        path: ``.npz``, ``.safetensors`` or a directory of ``.npy`` files.
        supervision: the supervision class of the model that made the maps.
    """

    needs_images = False

    def __init__(self, path: str | Path, supervision: str = "box-free") -> None:
        self.path = Path(path)
        self.supervision = supervision
        self.name = f"heatmaps:{self.path.name}"
        if not self.path.exists():
            raise MethodError(f"heatmaps:{path}: no such file or directory")
        if self.path.is_dir():
            self._keys = {p.name[:-4].replace("__", "/") for p in self.path.glob("*.npy")}
            self._reader = None
        elif self.path.suffix == ".npz":
            try:
                self._reader = np.load(self.path, allow_pickle=False)
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise MethodError(f"heatmaps:{path}: not a readable .npz archive ({exc})") from exc
            self._keys = set(self._reader.files)
        elif self.path.suffix == ".safetensors":
            from safetensors import safe_open

            try:
                self._reader = safe_open(str(self.path), framework="pt")
            except Exception as exc:  # safetensors raises its own error types
                raise MethodError(
                    f"heatmaps:{path}: not a readable .safetensors file ({exc})"
                ) from exc
            self._keys = set(self._reader.keys())
        else:
            raise MethodError(
                f"heatmaps:{path}: expected a .npz or .safetensors file or a directory of .npy files"
            )
        if not self._keys:
            raise MethodError(f"heatmaps:{path}: holds no maps")

    def fingerprint(self) -> str:
        """sha256 of the file bytes (of every .npy file, in name order, for a directory)."""
        h = hashlib.sha256()
        files = sorted(self.path.glob("*.npy")) if self.path.is_dir() else [self.path]
        for f in files:
            h.update(f.name.encode())
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()

    def check_ids(self, ids: Sequence[str]) -> None:
        """Raise MethodError when the file lacks some of ``ids`` or holds ids not in them."""
        wanted = set(ids)
        missing, extra = sorted(wanted - self._keys), sorted(self._keys - wanted)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} sample ids have no map (first: {missing[:3]})")
            if extra:
                parts.append(
                    f"{len(extra)} maps name no sample of the protocol (first: {extra[:3]})"
                )
            raise MethodError(
                f"heatmaps:{self.path}: "
                + "; ".join(parts)
                + ". Write one map per sample id of the protocol's split (see docs/formats.md)."
            )

    def _read(self, sample_id: str) -> np.ndarray:
        if sample_id not in self._keys:
            raise MethodError(f"heatmaps:{self.path}: no map for sample {sample_id!r}")
        if self._reader is None:
            return np.load(self.path / _id_to_filename(sample_id), allow_pickle=False)
        if isinstance(self._reader, np.lib.npyio.NpzFile):
            return self._reader[sample_id]
        return self._reader.get_tensor(sample_id).float().numpy()

    def predict(
        self, samples: Sequence[GroundingSample], images, *, device: torch.device
    ) -> RawMaps:
        maps, kinds = [], set()
        for s in samples:
            try:
                arr = self._read(s.id)
            except ValueError as exc:  # e.g. an object array that would need pickle
                raise MethodError(
                    f"heatmaps:{self.path}: map {s.id!r} is unreadable ({exc})"
                ) from exc
            if arr.ndim not in _KINDS or not np.issubdtype(arr.dtype, np.number):
                raise MethodError(
                    f"heatmaps:{self.path}: map {s.id!r} has shape {arr.shape} and dtype {arr.dtype}; "
                    "expected numbers shaped (h, w), (P, h, w), (L, H, h, w) or (P, L, H, h, w)"
                )
            kinds.add(_KINDS[arr.ndim])
            maps.append(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).to(device))
        if len(kinds) > 1:
            raise MethodError(
                f"heatmaps:{self.path}: mixes heatmaps (2-3 dims) and attention (4-5 dims); use one kind"
            )
        return RawMaps(
            tuple(s.id for s in samples), tuple(maps), kind=kinds.pop() if kinds else "heatmap"
        )


@METHODS.register(
    "heatmaps", supervision="declared by the file's model", arg="PATH (.npz, .safetensors or dir)"
)
def heatmaps(arg: str | None) -> HeatmapFile:
    """``heatmaps:PATH``: precomputed maps keyed by sample id."""
    if not arg:
        raise MethodError("method heatmaps needs a path: heatmaps:PATH (see docs/formats.md)")
    return HeatmapFile(arg)
