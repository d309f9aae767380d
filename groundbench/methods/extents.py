"""The optional extents file of a heatmap file: which image rectangle each map covers.

Beside ``maps.npz`` or ``maps.safetensors`` it is ``maps.extents.json``; inside a directory of
``.npy`` files it is ``extents.json``. It holds a JSON object ``{sample id: [x0, y0, x1, y1]}``
in image pixels (continuous coordinates, like boxes); a sample it does not name has a map of
the whole image (docs/formats.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from groundbench.errors import DataFormatError, MethodError
from groundbench.types import check_extents


def extents_path(path: Path) -> Path:
    """Where the extents of the heatmap file (or directory) ``path`` are read from."""
    return path / "extents.json" if path.is_dir() else path.with_suffix(".extents.json")


def read_extents(path: Path, keys: set[str], where: str) -> dict[str, tuple[float, ...]]:
    """Read and check the extents file of ``path`` ({} when there is none).

    Raises:
        MethodError: not a JSON object of ``[x0, y0, x1, y1]`` lists, a bad rectangle, or an
            id with no map in the file.
    """
    file = extents_path(path)
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MethodError(f"{where}: {file.name} is not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise MethodError(
            f"{where}: {file.name} must be a JSON object {{sample id: [x0, y0, x1, y1]}}"
        )
    unknown = sorted(set(data) - keys)
    if unknown:
        raise MethodError(
            f"{where}: {file.name} names {len(unknown)} ids with no map (first: {unknown[:3]}); "
            "give extents only for the file's maps"
        )
    ids = tuple(sorted(data))
    try:
        checked = check_extents(ids, [data[i] for i in ids])
    except DataFormatError as exc:
        raise MethodError(f"{where}: {file.name}: {exc}") from exc
    return dict(zip(ids, checked, strict=True))
