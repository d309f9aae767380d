"""Read ``.npy`` headers (on disk or in a ``.npz``) with the declared size bounded.

A header's shape is compared with the bytes the file or archive member really holds and
with :data:`groundbench.bounds.MAX_MAP_ELEMENTS` before any map is loaded, so a forged
header of a few bytes cannot make the reader allocate gigabytes. Reading a member later
(numpy reads exactly the declared size, in chunks) is then bounded too, compressed or not.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from groundbench import bounds
from groundbench.errors import MethodError


def npy_header(f, where: str, member: str, size: int, sid: str) -> tuple[tuple[int, ...], str]:
    """(shape, "real" | the refused dtype's name) of a ``.npy`` stream of ``size`` bytes.

    Args:
        f: the open stream at offset 0 (closed here).
        where: ``heatmaps:PATH``, for errors.
        member: the file or archive member name, for errors.
        size: bytes the stream really holds (file size, or the member's uncompressed size).
        sid: the sample id the map is for, for errors.

    Raises:
        MethodError: an unreadable header, or a declared array over the limit or larger than
            the bytes after the header (names the map's sample id and the limit).
    """
    with f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise MethodError(f"{where}: {member} is not a readable .npy array ({exc})") from exc
    if dtype.kind in "fiu":
        problem = bounds.declared_array_problem(shape, dtype.itemsize, size - offset)
        if problem:
            raise MethodError(f"{where}: map {sid!r} ({member}) {problem}")
        return tuple(shape), "real"
    return tuple(shape), str(dtype)


def npz_headers(path: Path, where: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """Headers of every ``.npy`` member of an archive, keyed by sample id, sizes bounded.

    Raises:
        MethodError: not a zip archive, a member twice, or a member :func:`npy_header` refuses.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise MethodError(f"{where}: not a readable .npz archive ({exc})") from exc
    with archive:
        infos = archive.infolist()
        seen: set[str] = set()
        for info in infos:
            if info.filename in seen:
                raise MethodError(
                    f"{where}: the archive holds member {info.filename!r} twice, so which map is "
                    "meant is ambiguous; rewrite it with numpy.savez (one entry per sample id)"
                )
            seen.add(info.filename)
        return {
            info.filename[:-4]: npy_header(
                archive.open(info), where, info.filename, info.file_size, info.filename[:-4]
            )
            for info in infos
            if info.filename.endswith(".npy")
        }


def check_safetensors_shape(where: str, key: str, shape: tuple[int, ...]) -> None:
    """Refuse a safetensors entry over the per-map limit (the library checks the bytes)."""
    problem = bounds.declared_array_problem(shape, 0, 0)
    if problem:
        raise MethodError(f"{where}: map {key!r} {problem}")
