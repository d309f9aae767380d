"""Upsample grid maps to image (or evaluation) resolution, aware of patch boundaries.

``align="patch"`` treats grid cell ``(r, c)`` of an ``h × w`` map as covering exactly its
patch footprint ``[c·W/w, (c+1)·W/w) × [r·H/h, (r+1)·H/h)`` of a ``H × W`` image. Pixel
centres are mapped into the grid by ``u = (j + 0.5)·w/W`` (``align_corners=False``):
``nearest`` picks the cell whose footprint holds the pixel centre (blocky patches, exact when
``W`` is a multiple of ``w``), ``bilinear``/``bicubic`` interpolate between cell centres.
``align="corners"`` instead pins the centres of the corner cells to the centres of the corner
pixels (``align_corners=True``; ``nearest`` rounds ``j·(w-1)/(W-1)``).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from groundbench.postprocess import PIPELINE_STEPS

UPSAMPLE_MODES: tuple[str, ...] = ("nearest", "bilinear", "bicubic")
ALIGN_MODES: tuple[str, ...] = ("patch", "corners")


def _nearest_index(out_size: int, in_size: int, align: str, device: torch.device) -> torch.Tensor:
    j = torch.arange(out_size, device=device, dtype=torch.int64)
    if align == "patch":
        # floor((j + 0.5) * in / out) in exact integer arithmetic
        return ((2 * j + 1) * in_size) // (2 * out_size)
    if out_size == 1:
        return torch.zeros_like(j)
    # round-half-up of j * (in - 1) / (out - 1), exactly
    return (2 * j * (in_size - 1) + (out_size - 1)) // (2 * (out_size - 1))


@PIPELINE_STEPS.register(
    "upsample", config_key="upsample", input="(B, h, w) float", output="(B, height, width) float32"
)
def upsample_maps(
    maps: torch.Tensor,
    size: tuple[int, int],
    *,
    mode: Literal["nearest", "bilinear", "bicubic"] = "bilinear",
    align: Literal["patch", "corners"] = "patch",
) -> torch.Tensor:
    """Resize a batch of same-shape maps to ``size``.

    Args:
        maps: ``(B, h, w)`` float maps.
        size: ``(height, width)`` of the output in pixels.
        mode: ``"nearest"``, ``"bilinear"`` or ``"bicubic"`` (cubic convolution, a = -0.75,
            as ``torch.nn.functional.interpolate``; it may overshoot the input range).
        align: ``"patch"`` or ``"corners"`` (see the module docstring).

    Returns:
        ``(B, height, width)`` float32 maps. NaN spreads to the pixels that read it.

    Example:
        >>> upsample_maps(torch.tensor([[[0.0, 1.0]]]), (1, 4), mode="nearest")[0].tolist()
        [[0.0, 0.0, 1.0, 1.0]]
    """
    maps = maps.to(torch.float32)
    height, width = int(size[0]), int(size[1])
    if tuple(maps.shape[1:]) == (height, width):
        return maps
    if mode == "nearest":
        rows = _nearest_index(height, maps.shape[1], align, maps.device)
        cols = _nearest_index(width, maps.shape[2], align, maps.device)
        # widen the small grid first, then copy whole rows: the big write is row memcpys
        return maps.index_select(2, cols).index_select(1, rows)
    if mode not in UPSAMPLE_MODES or align not in ALIGN_MODES:
        raise ValueError(
            f"upsample_maps: mode must be one of {UPSAMPLE_MODES} and align one of "
            f"{ALIGN_MODES}, got {mode!r}, {align!r}"
        )
    out = F.interpolate(
        maps[:, None], size=(height, width), mode=mode, align_corners=align == "corners"
    )
    return out[:, 0]
