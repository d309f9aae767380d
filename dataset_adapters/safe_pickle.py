"""Read dataset pickles without ever running code from them.

The REFER annotation files (``refs(unc).p`` and friends) are pickles of plain lists, dicts,
strings and numbers. ``pickle.load`` would run any callable a crafted file names, so
groundbench reads them with a restricted unpickler that resolves no global at all except
``set``/``frozenset`` (which hold data only). A file that names anything else is refused
before the object it names is looked up, so nothing it asks for runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from groundbench.errors import DataFormatError

# (module, name) pairs a data-only pickle may name; protocol 0-2 pickles say ``__builtin__``.
_ALLOWED_GLOBALS = frozenset(
    (module, name) for module in ("builtins", "__builtin__") for name in ("set", "frozenset")
)


class _DataOnlyUnpickler(pickle.Unpickler):
    """An unpickler that admits containers, strings and numbers, and nothing callable."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, fix_imports=True, encoding="utf-8", errors="strict")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise DataFormatError(
            f"{self._source}: refused to unpickle: the file asks for the global "
            f"{module}.{name}, but dataset pickles may hold only lists, dicts, tuples, sets, "
            "strings and numbers; re-download the file from its official source"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise DataFormatError(
            f"{self._source}: refused to unpickle: the file uses persistent ids ({pid!r}), "
            "which a data-only pickle never does; re-download the file from its official source"
        )


def load_data_pickle(path: str | Path) -> Any:
    """Load a pickle that must contain only plain data (containers, strings, numbers).

    Args:
        path: the pickle file, e.g. ``refcoco/refs(unc).p``. Python 2 byte strings are
            decoded as UTF-8.

    Returns:
        The unpickled object, built from ``dict``, ``list``, ``tuple``, ``set``, ``str``,
        ``bytes``, ``int``, ``float``, ``bool`` and ``None`` only.

    Raises:
        DataFormatError: the file is missing, truncated, not a pickle, not UTF-8, or names
            any global (a class or function): such a file is refused before anything in it
            runs.

    Example:
        >>> import pickle, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "refs.p")
        >>> with open(path, "wb") as f:
        ...     pickle.dump([{"ref_id": 1, "sentences": [{"sent": "left dog"}]}], f, protocol=2)
        >>> load_data_pickle(path)[0]["sentences"][0]["sent"]
        'left dog'
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataFormatError(f"{path} does not exist; check the dataset root") from exc
    try:
        return _DataOnlyUnpickler(io.BytesIO(data), str(path)).load()
    except DataFormatError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        UnicodeDecodeError,
    ) as exc:
        raise DataFormatError(
            f"{path}: not a readable data pickle ({type(exc).__name__}: {exc}); the file is "
            "truncated or corrupt: re-download it"
        ) from exc
