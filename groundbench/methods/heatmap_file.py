"""``heatmaps:PATH``: maps precomputed by any external model (format in docs/formats.md).

``PATH`` is one of:

- a ``.npz`` archive (``numpy.savez``) whose keys are sample ids;
- a ``.safetensors`` file whose tensor names are sample ids;
- a directory of ``.npy`` files named ``<sample id with "/" replaced by "__">.npy``.

Each entry is a float map ``(h, w)`` or ``(P, h, w)`` (passes), or raw cross-attention
``(L, H, h, w)`` or ``(P, L, H, h, w)``, at any resolution; all entries have the same kind.
Nothing is ever unpickled (``allow_pickle=False``), and every entry's declared shape is
checked against the bytes it really holds and :data:`groundbench.bounds.MAX_MAP_ELEMENTS`
before any map is loaded (:mod:`groundbench.methods._bounded`). What made the maps is
declared by ``heatmaps:PATH@CLASS`` or a sidecar model card (:mod:`.heatmap_card`); maps
declared by neither are ``undeclared``. An optional extents file says which image rectangle
each map covers (:mod:`groundbench.methods.extents`).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from groundbench.errors import MethodError
from groundbench.methods._bounded import check_safetensors_shape, npy_header, npz_headers
from groundbench.methods.base import METHODS, check_float32_range
from groundbench.methods.extents import extents_path, read_extents
from groundbench.methods.heatmap_card import declared
from groundbench.types import UNDECLARED, GroundingSample, RawMaps

_KINDS = {2: "heatmap", 3: "heatmap", 4: "attention", 5: "attention"}


def _id_to_filename(sample_id: str) -> str:
    return sample_id.replace("/", "__") + ".npy"


_SAFETENSORS_REFUSED = {"BOOL": "bool"}


class HeatmapFile:
    """Serve maps from a file or directory keyed by sample id.

    Every entry's shape and dtype are read from its header when the file is opened (no
    map is loaded), so a bad entry or a file mixing heatmaps and attention is refused
    before any scoring, whatever the batch size.

    Args:
        path: ``.npz``, ``.safetensors`` or a directory of ``.npy`` files.
        supervision: the supervision class of the model that made the maps, or
            ``undeclared``.
        model_card: the validated sidecar model card, if there is one.

    Raises:
        MethodError: the path is missing or unreadable, holds no map, a member twice, an
            entry that is not a non-empty real-number map of a supported shape, or both kinds.
    """

    needs_images = False

    def __init__(
        self,
        path: str | Path,
        supervision: str = UNDECLARED,
        model_card: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.supervision = supervision
        self.model_card = model_card
        self.name = f"heatmaps:{self.path.name}"
        if not self.path.exists():
            raise MethodError(f"heatmaps:{path}: no such file or directory")
        if self.path.is_dir():
            headers = {
                p.name[:-4].replace("__", "/"): npy_header(
                    p.open("rb"),
                    f"heatmaps:{path}",
                    p.name,
                    p.stat().st_size,
                    p.name[:-4].replace("__", "/"),
                )
                for p in sorted(self.path.glob("*.npy"))
            }
            self._reader = None
        elif self.path.suffix == ".npz":
            headers = npz_headers(self.path, f"heatmaps:{path}")
            try:
                self._reader = np.load(self.path, allow_pickle=False)
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise MethodError(f"heatmaps:{path}: not a readable .npz archive ({exc})") from exc
        elif self.path.suffix == ".safetensors":
            from safetensors import safe_open

            try:
                self._reader = safe_open(str(self.path), framework="pt")
            except Exception as exc:  # safetensors raises its own error types
                raise MethodError(
                    f"heatmaps:{path}: not a readable .safetensors file ({exc})"
                ) from exc
            headers = {}
            for key in self._reader.keys():
                sl = self._reader.get_slice(key)
                dtype = sl.get_dtype()
                check_safetensors_shape(f"heatmaps:{path}", key, tuple(sl.get_shape()))
                headers[key] = (tuple(sl.get_shape()), _SAFETENSORS_REFUSED.get(dtype, "real"))
        else:
            raise MethodError(
                f"heatmaps:{path}: expected a .npz or .safetensors file or a directory of .npy files"
            )
        if not headers:
            raise MethodError(f"heatmaps:{path}: holds no maps")
        self._keys = set(headers)
        self.kind = _check_headers(f"heatmaps:{path}", headers)
        self._extents = read_extents(self.path, self._keys, f"heatmaps:{path}")

    def fingerprint(self) -> str:
        """sha256 of the file bytes (of every .npy file, in name order, for a directory)."""
        h = hashlib.sha256()
        files = sorted(self.path.glob("*.npy")) if self.path.is_dir() else [self.path]
        files += [extents_path(self.path)] if self._extents else []
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

    def _read(self, sample_id: str) -> np.ndarray | torch.Tensor:
        if sample_id not in self._keys:
            raise MethodError(f"heatmaps:{self.path}: no map for sample {sample_id!r}")
        if self._reader is None:
            return np.load(self.path / _id_to_filename(sample_id), allow_pickle=False)
        if isinstance(self._reader, np.lib.npyio.NpzFile):
            return self._reader[sample_id]
        return self._reader.get_tensor(sample_id)

    def predict(
        self, samples: Sequence[GroundingSample], images, *, device: torch.device
    ) -> RawMaps:
        maps = []
        for s in samples:
            try:
                arr = self._read(s.id)
            except ValueError as exc:  # e.g. an object array that would need pickle
                raise MethodError(
                    f"heatmaps:{self.path}: map {s.id!r} is unreadable ({exc})"
                ) from exc
            t = torch.from_numpy(np.ascontiguousarray(arr)) if isinstance(arr, np.ndarray) else arr
            check_float32_range(t, f"heatmaps:{self.path}: map {s.id!r}")
            maps.append(t.to(torch.float32).to(device))
        extents = tuple(self._extents.get(s.id) for s in samples) if self._extents else None
        return RawMaps(tuple(s.id for s in samples), tuple(maps), kind=self.kind, extents=extents)


def _check_headers(where: str, headers: dict[str, tuple[tuple[int, ...], str]]) -> str:
    """Check every entry's shape and dtype; return the file's one kind."""
    kinds: dict[str, str] = {}
    for sid, (shape, dtype) in sorted(headers.items()):
        if len(shape) not in _KINDS or dtype != "real":
            shown = dtype if dtype != "real" else "numbers"
            raise MethodError(
                f"{where}: map {sid!r} has shape {shape} and dtype {shown}; expected real "
                "numbers (float or int, not bool or complex) shaped (h, w), (P, h, w), "
                "(L, H, h, w) or (P, L, H, h, w)"
            )
        if 0 in shape:
            raise MethodError(
                f"{where}: map {sid!r} has shape {shape} with no element; every map needs at "
                "least one value per axis"
            )
        kinds.setdefault(_KINDS[len(shape)], sid)
    if len(kinds) > 1:
        raise MethodError(
            f"{where}: mixes heatmaps (2-3 dims, e.g. {kinds['heatmap']!r}) and attention "
            f"(4-5 dims, e.g. {kinds['attention']!r}); use one kind"
        )
    return next(iter(kinds))


@METHODS.register(
    "heatmaps",
    supervision="declared: PATH@CLASS or a sidecar model card, else undeclared",
    arg="PATH (.npz, .safetensors or dir)[@CLASS]",
)
def heatmaps(arg: str | None) -> HeatmapFile:
    """``heatmaps:PATH[@CLASS]``: precomputed maps keyed by sample id (:mod:`.heatmap_card`)."""
    if not arg:
        raise MethodError("method heatmaps needs a path: heatmaps:PATH (see docs/formats.md)")
    path, supervision, card = declared(arg)
    return HeatmapFile(path, supervision, card)
