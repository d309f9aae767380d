"""Upsample grid maps to image (or evaluation) resolution, aware of patch boundaries.

``align="patch"`` treats grid cell ``(r, c)`` of an ``h × w`` map as covering exactly its
patch footprint ``[c·W/w, (c+1)·W/w) × [r·H/h, (r+1)·H/h)`` of a ``H × W`` image. Pixel
centres are mapped into the grid by ``u = (j + 0.5)·w/W`` (``align_corners=False``):
``nearest`` picks the cell whose footprint holds the pixel centre (blocky patches, exact when
``W`` is a multiple of ``w``), ``bilinear``/``bicubic`` interpolate between cell centres.
``align="corners"`` instead pins the centres of the corner cells to the centres of the corner
pixels (``align_corners=True``; ``nearest`` rounds ``j·(w-1)/(W-1)``).

An ``extent`` ``[x0, y0, x1, y1]`` (output pixels, continuous coordinates) says which
rectangle of the output the map covers (a centre crop, a letterboxed square): the rules
above apply with that rectangle in place of the whole output, and every pixel whose centre
lies outside the closed rectangle gets the lowest value of its map.
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
    extent: tuple[float, float, float, float] | None = None,
    clip: bool = False,
) -> torch.Tensor:
    """Resize a batch of same-shape maps to ``size``.

    Args:
        maps: ``(B, h, w)`` float maps.
        size: ``(height, width)`` of the output in pixels.
        mode: ``"nearest"``, ``"bilinear"`` or ``"bicubic"`` (cubic convolution, a = -0.75,
            as ``torch.nn.functional.interpolate``; it may overshoot the input range).
        align: ``"patch"`` or ``"corners"`` (see the module docstring).
        extent: ``[x0, y0, x1, y1]`` in output pixels that the maps cover (None = all of
            it); pixels whose centre lies outside get each map's lowest value.
        clip: clamp each output map to its input's ``[min, max]``, as scikit-image's
            ``resize`` does by default (``clip=True``): no bicubic overshoot or ringing.

    Returns:
        ``(B, height, width)`` float32 maps. NaN spreads to the pixels that read it.

    Example:
        >>> upsample_maps(torch.tensor([[[0.0, 1.0]]]), (1, 4), mode="nearest")[0].tolist()
        [[0.0, 0.0, 1.0, 1.0]]
    """
    maps = maps.to(torch.float32)
    if mode not in UPSAMPLE_MODES or align not in ALIGN_MODES:
        raise ValueError(
            f"upsample_maps: mode must be one of {UPSAMPLE_MODES} and align one of "
            f"{ALIGN_MODES}, got {mode!r}, {align!r}"
        )
    out = _resize(maps, size, mode, align, extent)
    if clip:
        nan = maps.isnan()  # bounds over the numbers; NaN pixels stay NaN
        low = maps.masked_fill(nan, float("inf")).amin((1, 2), keepdim=True)
        high = maps.masked_fill(nan, float("-inf")).amax((1, 2), keepdim=True)
        out = torch.minimum(torch.maximum(out, low), high)
    return out


def _resize(maps: torch.Tensor, size, mode: str, align: str, extent) -> torch.Tensor:
    height, width = int(size[0]), int(size[1])
    if extent is not None:
        return _upsample_into(maps, (height, width), mode, align, extent)
    if tuple(maps.shape[1:]) == (height, width):
        return maps
    if mode == "nearest":
        rows = _nearest_index(height, maps.shape[1], align, maps.device)
        cols = _nearest_index(width, maps.shape[2], align, maps.device)
        # widen the small grid first, then copy whole rows: the big write is row memcpys
        return maps.index_select(2, cols).index_select(1, rows)
    out = F.interpolate(
        maps[:, None], size=(height, width), mode=mode, align_corners=align == "corners"
    )
    return out[:, 0]


_CUBIC_A = -0.75  # torch's bicubic


def _taps(
    out_size: int, in_size: int, lo: float, hi: float, mode: str, align: str, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """1-D resampling of ``in_size`` cells onto output pixels whose span ``[lo, hi]`` they cover.

    Returns ``(index (out, k) long, weight (out, k) float32, inside (out,) bool)``: output
    pixel ``j`` reads ``Σ weight[j, t] · cell[index[j, t]]``, and ``inside`` marks the pixels
    whose centre lies in ``[lo, hi]``. The source coordinate and the taps follow torch's
    ``interpolate`` (border cells repeat), so ``[lo, hi] = [0, out_size]`` reproduces it.
    """
    centre = torch.arange(out_size, device=device, dtype=torch.float64) + 0.5
    inside = (centre >= lo) & (centre <= hi)
    span = hi - lo
    if align == "patch":
        src = (centre - lo) * (in_size / span) - 0.5
    else:
        src = (centre - lo - 0.5) * ((in_size - 1) / (span - 1) if span > 1 else 0.0)
    if mode == "nearest":
        # patch: the cell holding the centre; corners: the source position rounded half up
        index = (src + 0.5).floor().clamp(0, in_size - 1).long()[:, None]
        return index, torch.ones_like(index, dtype=torch.float32), inside
    if mode == "bilinear":
        src = src.clamp(min=0.0) if align == "patch" else src
        i0 = src.floor()
        t = (src - i0)[:, None]
        offsets = torch.arange(2, device=device, dtype=torch.float64)
        weight = torch.cat([1 - t, t], dim=1)
    else:
        i0 = src.floor()
        t = (src - i0)[:, None]
        offsets = torch.arange(-1, 3, device=device, dtype=torch.float64)
        weight = _cubic(torch.cat([t + 1, t, 1 - t, 2 - t], dim=1))
    index = (i0[:, None] + offsets[None, :]).clamp(0, in_size - 1).long()
    return index, weight.to(torch.float32), inside


def _cubic(d: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel at distances ``d`` (0 ≤ d < 2), a = -0.75."""
    a = _CUBIC_A
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return torch.where(d <= 1, near, far)


def _upsample_into(
    maps: torch.Tensor, size: tuple[int, int], mode: str, align: str, extent
) -> torch.Tensor:
    """Resample ``(B, h, w)`` maps onto the ``extent`` rectangle of a ``size`` output."""
    x0, y0, x1, y1 = (float(v) for v in extent)
    (height, width), (h, w) = size, maps.shape[1:]
    rows, row_w, row_in = _taps(height, h, y0, y1, mode, align, maps.device)
    cols, col_w, col_in = _taps(width, w, x0, x1, mode, align, maps.device)
    # along x: (B, h, W), then along y: (B, H, W); zero weights still read their cell, so a
    # NaN spreads exactly as far as torch's interpolate spreads it
    wide = (maps[:, :, cols] * col_w).sum(-1)  # B h W
    out = (wide[:, rows, :] * row_w[None, :, :, None]).sum(2)  # B H W
    lowest = maps.amin(dim=(1, 2))[:, None, None]  # B 1 1
    inside = row_in[:, None] & col_in[None, :]  # H W
    return torch.where(inside, out, lowest)
