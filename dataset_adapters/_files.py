"""Small readers shared by the adapters: JSON files and required record fields."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from groundbench.errors import DataFormatError


def read_json(path: Path) -> Any:
    """Parse a whole JSON file.

    Raises:
        DataFormatError: the file is missing or is not valid JSON (line and column named).
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as exc:
        raise DataFormatError(f"{path} does not exist; check the dataset root") from exc
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"{path}: malformed JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
            "the file is truncated or corrupt: re-download it"
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not UTF-8 text ({exc}); re-download it") from exc


def field(record: Any, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    """Return ``record[key]``, checked to be a ``kind``.

    Args:
        record: a decoded JSON object or pickled dict.
        key: the field name.
        where: file and record named in the error, e.g. ``"refs(unc).p record 3"``.
        kind: the accepted Python type(s); ``bool`` never passes for a number.

    Raises:
        DataFormatError: the record is not a mapping, lacks ``key``, or has the wrong type.
    """
    if not isinstance(record, Mapping):
        raise DataFormatError(f"{where}: expected an object, got {type(record).__name__}")
    if key not in record:
        raise DataFormatError(
            f"{where}: missing field {key!r} (fields present: {', '.join(map(str, record))})"
        )
    value = record[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise DataFormatError(f"{where}: field {key!r} must not be a boolean, got {value!r}")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise DataFormatError(
            f"{where}: field {key!r} must be {names}, got {type(value).__name__} {value!r:.80}"
        )
    return value


def bbox_field(record: Any, key: str, where: str) -> list[float]:
    """Return a 4-number box field of ``record`` as floats."""
    value = field(record, key, where, (list, tuple))
    if len(value) != 4 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise DataFormatError(f"{where}: field {key!r} must be 4 numbers, got {value!r:.80}")
    return [float(v) for v in value]


def under_root(root: Path, value: str | Path) -> Path:
    """Resolve an option path: absolute as given, relative to the dataset ``root`` otherwise.

    Relative paths keep protocols portable: ``test_image_ids: data_splits.pickle`` means the
    file next to the data, wherever the data lives.
    """
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path
