"""Size limits, and the checks that read a size from a file before anything is allocated.

Every reader that takes a size from the file it reads (heatmap files, RLE masks, image
records) compares that size with what the file really holds and with these limits first,
so a file of a few hundred bytes cannot ask for gigabytes (docs/formats.md, "Limits").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Most values one map may hold (any shape: ``(h, w)`` up to ``(P, L, H, h, w)``):
#: 2^25 = 33,554,432, i.e. 128 MiB as float32 (a 5792 × 5792 heatmap).
MAX_MAP_ELEMENTS = 1 << 25
#: Most pixels an image record may declare (``width * height``): 2^27 = 134,217,728
#: (an 11585 × 11585 image), below Pillow's decompression-bomb refusal.
MAX_IMAGE_PIXELS = 1 << 27


def declared_array_problem(
    shape: Sequence[int], itemsize: int, available_bytes: int, limit: int | None = None
) -> str | None:
    """Say what is wrong with an array a header declares, or return None when it may be read.

    Args:
        shape: the declared shape.
        itemsize: bytes per value of the declared dtype.
        available_bytes: bytes the file (or archive member) really holds after its header.
        limit: most values allowed (default :data:`MAX_MAP_ELEMENTS`).

    Example:
        >>> declared_array_problem((100000, 100000), 4, 212).split(";")[0]
        'declares shape (100000, 100000) = 10,000,000,000 values, over the limit of 33,554,432 values per map (docs/formats.md, Limits)'
        >>> declared_array_problem((4, 4), 4, 10).split(";")[0]
        'declares shape (4, 4) = 64 bytes of data but holds 10 bytes'
        >>> declared_array_problem((4, 4), 4, 64) is None
        True
    """
    limit = MAX_MAP_ELEMENTS if limit is None else limit
    n = math.prod(int(v) for v in shape)
    if n > limit:
        return (
            f"declares shape {tuple(shape)} = {n:,} values, over the limit of {limit:,} "
            "values per map (docs/formats.md, Limits); write maps at the model's own resolution"
        )
    if n * itemsize > available_bytes:
        return (
            f"declares shape {tuple(shape)} = {n * itemsize:,} bytes of data but holds "
            f"{available_bytes:,} bytes; the file is truncated or its header forged: write it again"
        )
    return None


def rle_run_total(counts: str) -> int:
    """Sum of the run lengths a compressed COCO RLE ``counts`` string encodes.

    The string is pycocotools' format (6-bit groups offset by 48, continuation bit 0x20,
    runs after the second delta-coded against the run two back). A decoder writes that many
    pixels, so it must equal ``height * width`` before one is allocated.

    Raises:
        ValueError: a character outside the format, or a run that is negative.

    Example:
        >>> from pycocotools import mask
        >>> import numpy as np
        >>> m = np.zeros((5, 7), np.uint8, order="F"); m[1:3, 2:6] = 1
        >>> rle_run_total(mask.encode(m)["counts"].decode())
        35
    """
    runs: list[int] = []
    i = 0
    while i < len(counts):
        x, shift, more = 0, 0, True
        while more:
            if i >= len(counts):
                raise ValueError("the string ends inside a run")
            c = ord(counts[i]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {counts[i]!r} is not in the RLE alphabet")
            x |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            i += 1
            shift += 1
            if not more and c & 0x10:
                x |= -1 << (5 * shift)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            raise ValueError("a run length is negative")
        runs.append(x)
    return sum(runs)


def image_header_size(path: str) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header (no pixel is decoded).

    Raises:
        FileNotFoundError: the file is missing.
        OSError: Pillow cannot identify the file.
    """
    from PIL import Image

    with Image.open(path) as im:
        return im.size
