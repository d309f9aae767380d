"""Turn thresholded masks into a predicted region and its box.

Rules:

* ``largest_component``: the 8-connected component with the most pixels (ties: the one
  whose first pixel comes first in raster order).
* ``peak_cluster``: the 8-connected component holding the highest-valued kept pixel of the
  heatmap (ties: the first such pixel in raster order).
* ``union_box``: every kept pixel; the box encloses them all.
* ``mass_minus_area`` (parameter ``alpha``, default 0.8): no threshold and no component;
  the box of whole pixels that maximises the share of the map's mass inside it minus
  ``alpha`` times the share of the image it covers (Li, Shakhnarovich & Yeh 2022, "Adapting
  CLIP for phrase localization without further training", ``FractionAreaObjective``), on
  the map min-max normalised over its valid pixels::

      f(b) = Σ_{p ∈ b} Ĥ_p / Σ_p Ĥ_p  −  alpha · |b| / N        (N valid pixels)

  The maximum is exact (:func:`mass_area_boxes`): with ``a_p = Ĥ_p − alpha · ΣĤ / N``,
  ``f(b) = Σ_{p ∈ b} a_p / ΣĤ``, and the best box is the maximum-sum sub-rectangle of ``a``:
  for every pair of rows, column sums from the column prefix sums (an integral image along
  the rows) and Kadane's scan along the columns, ``O(Y² X)``. Ties: the first maximum in
  the order (top row, bottom row, right column), the leftmost left column for that.
  A map padded in its batch is searched over its valid extent.

Connected components are labelled with ``scipy.ndimage.label`` (8-connectivity: diagonal
neighbours touch) on CPU, one map at a time, cropped to the map's kept pixels; the other
work stays on the maps' device.

The predicted box covers the selected pixels entirely, in continuous pixel coordinates:
``[min_col, min_row, max_col + 1, max_row + 1]``; a NaN row means nothing was kept.
"""

from __future__ import annotations

import math
from typing import Literal

import numba
import numpy as np
import torch
from scipy import ndimage

from groundbench.postprocess import PIPELINE_STEPS

REGION_RULES: tuple[str, ...] = (
    "largest_component",
    "peak_cluster",
    "union_box",
    "mass_minus_area",
)
#: Rules that read the heatmap itself, not a thresholded mask (``pipeline.threshold: null``).
MAP_RULES: tuple[str, ...] = ("mass_minus_area",)
MASS_ALPHA = 0.8  # Li et al.'s default (SLICViT alpha)
_EIGHT = np.ones((3, 3), dtype=bool)


def mask_to_box(mask: torch.Tensor) -> torch.Tensor:
    """Return the box enclosing each mask's pixels, ``[x0, y0, x1, y1]`` in pixels.

    Args:
        mask: ``(B, Y, X)`` bool.

    Returns:
        ``(B, 4)`` float64 ``[min_col, min_row, max_col + 1, max_row + 1]``; NaN row when
        the mask is empty.

    Example:
        >>> m = torch.zeros(1, 4, 5, dtype=torch.bool); m[0, 1:3, 2] = True
        >>> mask_to_box(m).tolist()
        [[2.0, 1.0, 3.0, 3.0]]
    """
    B, Y, X = mask.shape
    as_bytes = mask.view(torch.uint8)  # amax over bytes is far faster than any() over bools
    rows = as_bytes.amax(dim=2) > 0  # B Y
    cols = as_bytes.amax(dim=1) > 0  # B X
    ry = torch.arange(Y, device=mask.device, dtype=torch.float64)
    rx = torch.arange(X, device=mask.device, dtype=torch.float64)
    y0 = torch.where(rows, ry, torch.inf).amin(dim=1)
    y1 = torch.where(rows, ry, -torch.inf).amax(dim=1) + 1
    x0 = torch.where(cols, rx, torch.inf).amin(dim=1)
    x1 = torch.where(cols, rx, -torch.inf).amax(dim=1) + 1
    box = torch.stack([x0, y0, x1, y1], dim=1)
    return torch.where(torch.isinf(y0)[:, None], torch.nan, box)  # y0 = inf: empty mask


def _component(mask: np.ndarray, rule: str, heat: np.ndarray | None) -> np.ndarray:
    labels, n = ndimage.label(mask, structure=_EIGHT)
    if n <= 1:
        return mask
    if rule == "largest_component":
        keep = int(np.bincount(labels.ravel())[1:].argmax()) + 1
    else:
        scores = np.where(mask, heat, -np.inf)
        keep = int(labels.ravel()[int(np.argmax(scores))])
    return labels == keep


@numba.njit(nogil=True, cache=True)
def best_sum_box(a):  # pragma: no cover - compiled
    """``(x0, y0, x1, y1, sum)``: the sub-rectangle of ``a`` (float64 ``(Y, X)``) with the
    largest sum, as a half-open pixel range; the tie rule of :func:`mass_area_boxes`."""
    Y, X = a.shape
    P = np.zeros((Y + 1, X))  # P[y, x] = Σ_{y' < y} a[y', x]
    for y in range(Y):
        for x in range(X):
            P[y + 1, x] = P[y, x] + a[y, x]
    best, box = -math.inf, (0, 0, 0, 0)
    for y0 in range(Y):
        for y1 in range(y0 + 1, Y + 1):
            cur, start = 0.0, 0
            for x in range(X):
                v = P[y1, x] - P[y0, x]
                if x == 0 or cur < 0.0:  # at cur == 0 keep the earlier (leftmost) start
                    cur, start = v, x
                else:
                    cur += v
                if cur > best:
                    best, box = cur, (start, y0, x + 1, y1)
    return box[0], box[1], box[2], box[3], best


def mass_area_boxes(
    heatmap: torch.Tensor, valid: torch.Tensor | None = None, alpha: float = MASS_ALPHA
) -> tuple[torch.Tensor, torch.Tensor]:
    """Li et al.'s proposal-free box per map: maximise mass share minus ``alpha`` × area share.

    Args:
        heatmap: ``(B, Y, X)`` float maps.
        valid: ``(B, Y, X)`` bool, False on padding (outside the valid extent nothing is
            searched; inside it an invalid pixel has no mass but counts as area); None = all.
        alpha: the area weight, ``>= 0``.

    Returns:
        ``(pred_mask, pred_box)``: the box's valid pixels ``(B, Y, X)`` bool and ``(B, 4)``
        float64 ``xyxy`` boxes of whole pixels; a NaN row (and no pixel) for a map that is
        constant or holds NaN/Inf over its valid pixels.

    Example:
        >>> h = torch.zeros(1, 4, 5); h[0, 1:3, 2:4] = 1.0
        >>> mass_area_boxes(h, alpha=0.8)[1].tolist()
        [[2.0, 1.0, 4.0, 3.0]]
    """
    B, Y, X = heatmap.shape
    h = heatmap.detach().cpu().double().numpy()
    v = np.ones((B, Y, X), bool) if valid is None else valid.cpu().numpy()
    boxes = np.full((B, 4), np.nan)
    mask = np.zeros((B, Y, X), bool)
    for b in range(B):
        rows, cols = np.flatnonzero(v[b].any(axis=1)), np.flatnonzero(v[b].any(axis=0))
        if not rows.size:
            continue
        ys, xs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
        crop, keep = h[b, ys, xs], v[b, ys, xs]
        x = crop[keep]
        if not np.isfinite(x).all() or x.max() == x.min():
            continue
        norm = np.where(keep, (crop - x.min()) / (x.max() - x.min()), 0.0)
        gain = norm - alpha * norm.sum() / x.size
        x0, y0, x1, y1, _ = best_sum_box(np.ascontiguousarray(gain))
        x0, x1, y0, y1 = x0 + xs.start, x1 + xs.start, y0 + ys.start, y1 + ys.start
        boxes[b] = (x0, y0, x1, y1)
        mask[b, y0:y1, x0:x1] = v[b, y0:y1, x0:x1]
    device = heatmap.device
    return torch.from_numpy(mask).to(device), torch.from_numpy(boxes).to(device)


@PIPELINE_STEPS.register(
    "regions",
    config_key="regions",
    input="(B, Y, X) bool",
    output="(B, Y, X) bool, (B, 4) float64",
)
def select_regions(
    mask: torch.Tensor | None,
    rule: Literal["largest_component", "peak_cluster", "union_box", "mass_minus_area"],
    *,
    heatmap: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    alpha: float = MASS_ALPHA,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Select each map's predicted region from its thresholded mask (or, for
    ``mass_minus_area``, from the map itself).

    Args:
        mask: ``(B, Y, X)`` bool thresholded pixels (False on padding); None for
            ``mass_minus_area``, which reads no mask.
        rule: ``"largest_component"``, ``"peak_cluster"``, ``"union_box"`` or
            ``"mass_minus_area"``.
        heatmap: ``(B, Y, X)`` float maps; required by ``peak_cluster`` and
            ``mass_minus_area``.
        valid: ``(B, Y, X)`` bool padding mask, read by ``mass_minus_area`` (None = all valid).
        alpha: ``mass_minus_area``'s area weight.

    Returns:
        ``(pred_mask, pred_box)``: ``(B, Y, X)`` bool selected pixels and ``(B, 4)`` float64
        boxes enclosing them (NaN row when the mask is empty).

    Example:
        >>> m = torch.tensor([[[True, False, False], [False, False, True]]])
        >>> select_regions(m, "union_box")[1].tolist()
        [[0.0, 0.0, 3.0, 2.0]]
    """
    if rule not in REGION_RULES:
        raise ValueError(f"select_regions: rule must be one of {REGION_RULES}, got {rule!r}")
    if rule in ("peak_cluster", "mass_minus_area") and heatmap is None:
        raise ValueError(f"select_regions: rule {rule!r} needs the heatmap")
    if rule == "mass_minus_area":
        return mass_area_boxes(heatmap, valid, alpha)
    if rule == "union_box":
        return mask, mask_to_box(mask)
    boxes = mask_to_box(mask).cpu()
    mask_np = mask.cpu().numpy()
    heat_np = None if heatmap is None else heatmap.detach().float().cpu().numpy()
    out = np.zeros_like(mask_np)
    for b, box in enumerate(boxes.tolist()):
        if np.isnan(box[0]):
            continue
        x0, y0, x1, y1 = (int(c) for c in box)
        crop = (b, slice(y0, y1), slice(x0, x1))
        heat = None if heat_np is None else heat_np[crop]
        out[crop] = _component(mask_np[crop], rule, heat)
    pred_mask = torch.from_numpy(out).to(mask.device)
    return pred_mask, mask_to_box(pred_mask)
