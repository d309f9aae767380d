"""Pixels: shape stencils, textures, cluttered background, noise, and per-object visible masks.

Objects are painted in list order onto an ``int16`` *label map* (``-1`` = background, ``k`` =
object ``k``), so a later object occludes an earlier one and every object's visible mask is
exactly ``label == k``: the boxes and masks written to disk come from the same array that
colours the pixels.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from groundbench.synthetic.settings import COLOURS

if TYPE_CHECKING:
    from groundbench.synthetic.scene import SceneObject

TEXTURES: tuple[str, ...] = ("solid", "stripes", "checker", "dots")


@lru_cache(maxsize=512)
def stencil(shape: str, side: int) -> np.ndarray:
    """Return the read-only ``(side, side)`` bool mask of ``shape`` at a side of ``side`` px.

    Each pixel is in the shape when its centre, mapped to ``[-1, 1]²`` (y downwards), satisfies
    the shape's implicit inequality. Every shape touches all four sides of its square, so
    the tight box of an unoccluded object is its ``side × side`` square.

    Example:
        >>> bool(stencil("square", 3).all())
        True
    """
    c = (np.arange(side) + 0.5) / side * 2 - 1  # pixel centres in [-1, 1]
    v, u = np.meshgrid(c, c, indexing="ij")  # v: rows (down), u: columns (right)
    r = np.hypot(u, v)
    if shape == "circle":
        m = r <= 1
    elif shape == "square":
        m = np.ones((side, side), dtype=bool)
    elif shape == "triangle":
        m = np.abs(u) <= (v + 1) / 2 + 1 / side
    elif shape == "diamond":
        m = np.abs(u) + np.abs(v) <= 1 + 1 / side
    elif shape == "cross":
        m = (np.abs(u) <= 0.36) | (np.abs(v) <= 0.36)
    elif shape == "ring":
        m = (r <= 1) & (r >= 0.5)
    elif shape == "star":
        theta = np.arctan2(u, -v)  # 0 at the top point
        k = np.abs(np.cos(2.5 * theta)) ** 3  # five points
        m = r <= 0.42 + 0.62 * k
    elif shape == "heart":
        x, y = u * 1.15, 0.1 - 1.15 * v
        m = (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0
    else:
        raise ValueError(f"unknown shape {shape!r}")
    # trim to the tight box then re-pad, so every shape spans its full square
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    m = m[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if m.shape != (side, side):
        yy = np.minimum((np.arange(side) * m.shape[0]) // side, m.shape[0] - 1)
        xx = np.minimum((np.arange(side) * m.shape[1]) // side, m.shape[1] - 1)
        m = m[yy][:, xx]
    m = np.ascontiguousarray(m)
    m.setflags(write=False)
    return m


@lru_cache(maxsize=16)
def _textures(height: int, width: int) -> np.ndarray:
    """``(len(TEXTURES), height, width)`` float32 brightness factors in ``[0.7, 1]``."""
    i, j = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    solid = np.ones((height, width))
    stripes = np.where(((i + j) // 2) % 2 == 0, 1.0, 0.72)
    checker = np.where(((i // 2) + (j // 2)) % 2 == 0, 1.0, 0.75)
    dots = np.where((i % 3 == 1) & (j % 3 == 1), 0.7, 1.0)
    out = np.stack([solid, stripes, checker, dots]).astype(np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """``2**20`` float32 standard-normal values from a fixed seed (the same in every process)."""
    bank = np.random.default_rng(20240601).standard_normal(2**20, dtype=np.float32)
    bank.setflags(write=False)
    return bank


def paint(
    label: np.ndarray,
    objects: Sequence[SceneObject],
    rng: np.random.Generator,
    *,
    noise_std: float,
    clutter: int,
) -> np.ndarray:
    """Render the RGB image of a scene from its label map.

    Args:
        label: ``(height, width)`` int16 label map, ``-1`` background, ``k`` object ``k``.
        objects: the scene's objects (colour, texture, and stencil square ``top``, ``left``,
            ``side`` in pixels), in label order.
        rng: the scene's generator; background, clutter and noise are drawn from it.
        noise_std: Gaussian pixel noise standard deviation, 0–255 units.
        clutter: number of faint, low-saturation background blobs.

    Returns:
        ``(height, width, 3)`` uint8 RGB.
    """
    height, width = label.shape
    yy = (np.arange(height, dtype=np.float32) + 0.5)[:, None]
    xx = (np.arange(width, dtype=np.float32) + 0.5)[None, :]
    # dim grey background with a gentle gradient and faint blobs: low saturation keeps the
    # object colours the only saturated ones
    base = rng.uniform(60, 110)
    gx, gy = rng.uniform(-25, 25, size=2)
    bg = base + gx * (xx / width - 0.5) + gy * (yy / height - 0.5)  # H W
    if clutter:
        cy, cx, radius, amp = rng.uniform(
            (0, 0, 0.05 * min(height, width), -22),
            (height, width, 0.2 * min(height, width), 22),
            size=(clutter, 4),
        ).T.astype(np.float32)[..., None, None]
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius * radius  # K H W
        bg = bg + (amp * inside).sum(0)
    tint = rng.uniform(-6, 6, size=3).astype(np.float32)
    img = bg[..., None] + tint  # H W 3
    textures = _textures(height, width)
    for k, obj in enumerate(objects):
        # only the object's stencil square can hold label k
        window = (slice(obj.top, obj.top + obj.side), slice(obj.left, obj.left + obj.side))
        mine = label[window] == k
        factor = textures[TEXTURES.index(obj.texture)][window][mine]  # m
        img[window][mine] = np.asarray(COLOURS[obj.colour], dtype=np.float32) * factor[:, None]
    if noise_std > 0:
        # a window of a fixed bank of N(0, 1) draws at a seeded offset: 5x cheaper than fresh
        # draws, and pixel noise needs no independence between scenes
        bank = _noise_bank()
        start = int(rng.integers(bank.size - img.size))
        img += bank[start : start + img.size].reshape(img.shape) * np.float32(noise_std)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def png_bytes(img: np.ndarray, level: int = 1) -> bytes:
    """Encode ``(height, width, 3)`` uint8 RGB as a PNG file (8-bit, no filter, no metadata).

    The bytes depend only on the pixels and ``level`` (zlib compression level), so a dataset
    is byte-identical across runs; Pillow, browsers and every PNG reader decode it.
    """
    height, width, _ = img.shape
    raw = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # filter byte 0 per row
    raw[:, 1:] = img.reshape(height, 3 * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), level))
        + chunk(b"IEND", b"")
    )
