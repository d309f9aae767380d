"""Stream the elements of a huge top-level JSON array without loading the whole file.

Visual Genome's files are single JSON arrays of several hundred MB (one element per
image). ``json.load`` on them needs many GB; :func:`iter_json_array` decodes one element at
a time with :meth:`json.JSONDecoder.raw_decode` over a sliding text buffer, so memory stays
at a few chunks plus the largest element.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from groundbench.errors import DataFormatError

#: Characters read per step.
CHUNK_CHARS = 1 << 20
#: An element that does not decode within this many buffered characters is malformed.
MAX_ELEMENT_CHARS = 256 << 20

_WHITESPACE = " \t\n\r"
# Longest tail a cut-off token can leave before the buffer's end ("\uXXX", "fals", "-1.5e").
_TAIL_CHARS = 32


def _may_be_incomplete(exc: json.JSONDecodeError, buffered: int) -> bool:
    """Whether a decode error could vanish with more input (it sits at the buffer's end).

    A cut-off element fails within a few characters of the end (a partial literal, number or
    ``\\uXXXX`` escape) or inside a string that runs to the end; an error earlier in the
    buffer is malformed JSON, reported at once instead of buffering the rest of the file.
    """
    return exc.pos >= buffered - _TAIL_CHARS or exc.msg.startswith("Unterminated string")


def iter_json_array(
    path: str | Path,
    *,
    chunk_chars: int = CHUNK_CHARS,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Any]:
    """Yield the elements of the JSON array stored in ``path``, one at a time.

    Args:
        path: a UTF-8 file whose top-level value is an array of objects or arrays.
        chunk_chars: characters read per step (memory is a few of these plus one element).
        on_progress: called with the number of bytes consumed since the previous call
            (feeds a progress bar).

    Yields:
        Each element, decoded as :func:`json.loads` would.

    Raises:
        DataFormatError: the file is missing, is not an array, is truncated, or has a
            malformed element (the element's index and character offset are named).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "a.json")
        >>> _ = open(p, "w").write('[{"id": 1}, {"id": 2, "x": [1, 2]}]')
        >>> [e["id"] for e in iter_json_array(p, chunk_chars=4)]
        [1, 2]
    """
    path = Path(path)
    decoder = json.JSONDecoder()
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataFormatError(f"{path} does not exist; check the dataset root") from exc
    with f:
        buf, pos, offset, eof = "", 0, 0, False  # offset = characters dropped before buf

        def fill() -> bool:
            """Append a chunk to ``buf``; return False at end of file."""
            nonlocal buf, pos, offset, eof
            if eof:
                return False
            try:
                chunk = f.read(chunk_chars)
            except UnicodeDecodeError as exc:
                raise DataFormatError(f"{path}: not UTF-8 text ({exc}); re-download it") from exc
            if on_progress is not None and chunk:
                on_progress(len(chunk.encode("utf-8")))
            offset += pos
            buf, pos = buf[pos:] + chunk, 0
            eof = not chunk
            return bool(chunk)

        def skip_ws() -> str:
            """Skip whitespace; return the next character ('' at end of file)."""
            nonlocal pos
            while True:
                while pos < len(buf) and buf[pos] in _WHITESPACE:
                    pos += 1
                if pos < len(buf):
                    return buf[pos]
                if not fill():
                    return ""

        def fail(what: str) -> DataFormatError:
            return DataFormatError(
                f"{path}: {what} at character {offset + pos}; the file is truncated or "
                "corrupt: re-download it"
            )

        if skip_ws() != "[":
            raise fail("expected a top-level JSON array '['")
        pos += 1
        index = 0
        if skip_ws() == "]":
            return
        while True:
            if skip_ws() not in ("{", "["):
                raise fail(f"element {index} is not an object or array")
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as exc:
                    start = pos
                    if (
                        not _may_be_incomplete(exc, len(buf))
                        or len(buf) - pos > MAX_ELEMENT_CHARS
                        or not fill()
                    ):
                        pos = exc.pos - (start - pos)  # fill() may have shifted the buffer
                        raise fail(f"malformed element {index} ({exc.msg})") from exc
            pos = end
            yield value
            index += 1
            sep = skip_ws()
            if sep == "]":
                return
            if sep != ",":
                raise fail(f"expected ',' or ']' after element {index - 1}")
            pos += 1
