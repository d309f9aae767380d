"""Render every map the same way: one colour map, per-map min–max scaling, one overlay
alpha, one bilinear upsampling to the display size. PNGs are named by their content hash."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np


@lru_cache(maxsize=8)
def colormap_lut(name: str) -> np.ndarray:
    """The ``(256, 3)`` uint8 lookup table of a matplotlib colour map."""
    from matplotlib import colormaps

    rgba = colormaps[name](np.linspace(0.0, 1.0, 256))
    return np.round(rgba[:, :3] * 255.0).astype(np.uint8)


def display_size(height: int, width: int, display_width: int) -> tuple[int, int]:
    """``(height, width)`` of the display, ``display_width`` wide, aspect kept."""
    return max(1, round(height * display_width / width)), display_width


def overlay(image: np.ndarray, heatmap: np.ndarray, rendering: Mapping[str, Any]) -> np.ndarray:
    """Blend a heatmap over an image at the display size.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        heatmap: ``(h, w)`` float map at any resolution; NaN counts as the minimum.
        rendering: ``colormap``, ``alpha`` (map weight, 0–1), ``width`` (display px).

    Returns:
        ``(H', W', 3)`` uint8 at the display size.
    """
    from PIL import Image

    size = display_size(image.shape[0], image.shape[1], int(rendering["width"]))
    base = np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.BILINEAR))
    m = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=-np.inf)
    finite = np.isfinite(m)
    lo = float(m[finite].min()) if finite.any() else 0.0
    hi = float(m[finite].max()) if finite.any() else 0.0
    m = np.where(finite, m, lo)
    scaled = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    up = Image.fromarray(scaled.astype(np.float32), mode="F").resize(
        size[::-1], Image.Resampling.BILINEAR
    )
    idx = np.clip(np.round(np.asarray(up) * 255.0), 0, 255).astype(np.uint8)
    colour = colormap_lut(str(rendering["colormap"]))[idx].astype(np.float32)
    alpha = float(rendering["alpha"])
    out = (1.0 - alpha) * base.astype(np.float32) + alpha * colour
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def plain(image: np.ndarray, rendering: Mapping[str, Any]) -> np.ndarray:
    """The image alone at the display size (bilinear), for click studies."""
    from PIL import Image

    size = display_size(image.shape[0], image.shape[1], int(rendering["width"]))
    return np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.BILINEAR))


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode RGB pixels as PNG with fixed settings and no metadata (same pixels, same bytes)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def write_png(folder: Path, pixels: np.ndarray) -> str:
    """Write ``folder/<sha256>.png`` once and return the sha256 (the image's opaque id)."""
    data = png_bytes(pixels)
    digest = hashlib.sha256(data).hexdigest()
    target = folder / f"{digest}.png"
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return digest
