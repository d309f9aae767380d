"""Normalise each map on its own: min-max to ``[0, 1]``, softmax over pixels, or nothing."""

from __future__ import annotations

from typing import Literal

import torch

from groundbench.postprocess import PIPELINE_STEPS

NORMALISE_MODES: tuple[str, ...] = ("minmax", "softmax", "none")


@PIPELINE_STEPS.register(
    "normalise", config_key="normalise", input="(B, h, w) float", output="(B, h, w) float32"
)
def normalise_maps(
    maps: torch.Tensor, mode: Literal["minmax", "softmax", "none"] = "minmax"
) -> torch.Tensor:
    """Normalise every map of a batch independently.

    * ``minmax``: ``(m - min) / (max - min)``, in ``[0, 1]``; a constant map becomes all
      zeros (there is no peak to prefer, and zeros keep it constant).
    * ``softmax``: ``exp(m) / Σ exp(m)`` over the pixels of the map (sums to 1).
    * ``none``: the map unchanged (as float32).

    Non-finite pixels (NaN, ±Inf) are left out of the statistics and come out as NaN in
    every mode (``none`` included), so a
    map that had them still has them and metrics report it as ``nan_input``; a map with no
    finite pixel comes out all NaN. Nothing is silently zeroed.

    Args:
        maps: ``(B, h, w)`` float maps (any float dtype; float64 is computed in float64).
        mode: ``"minmax"``, ``"softmax"`` or ``"none"``.

    Returns:
        ``(B, h, w)`` float32 maps.

    Example:
        >>> normalise_maps(torch.tensor([[[1.0, 3.0], [2.0, float("nan")]]]))[0].tolist()
        [[0.0, 1.0], [0.5, nan]]
    """
    # float64 input keeps its precision through the arithmetic; the result is float32
    work = torch.float64 if maps.dtype == torch.float64 else torch.float32
    flat = maps.to(work).flatten(1)
    ffin = torch.isfinite(flat)
    if mode == "none":
        out = flat
    elif mode == "minmax":
        lo = torch.where(ffin, flat, torch.inf).amin(dim=1)
        hi = torch.where(ffin, flat, -torch.inf).amax(dim=1)
        span = hi - lo
        # constant map: divide by 1 so (m - min) = 0 everywhere
        span = torch.where(span > 0, span, torch.ones_like(span))
        out = (flat - lo[:, None]) / span[:, None]
    elif mode == "softmax":
        out = torch.softmax(torch.where(ffin, flat, -torch.inf), dim=1)
    else:
        raise ValueError(f"normalise_maps: mode must be one of {NORMALISE_MODES}, got {mode!r}")
    return torch.where(ffin, out, torch.nan).to(torch.float32).view_as(maps)
