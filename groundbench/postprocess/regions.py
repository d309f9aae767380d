"""Turn thresholded masks into a predicted region and its box.

Rules:

* ``largest_component``: the 8-connected component with the most pixels (ties: the one
  whose first pixel comes first in raster order).
* ``peak_cluster``: the 8-connected component holding the highest-valued kept pixel of the
  heatmap (ties: the first such pixel in raster order).
* ``union_box``: every kept pixel; the box encloses them all.

Connected components are labelled with ``scipy.ndimage.label`` (8-connectivity: diagonal
neighbours touch) on CPU, one map at a time, cropped to the map's kept pixels; the other
work stays on the maps' device.

The predicted box covers the selected pixels entirely, in continuous pixel coordinates:
``[min_col, min_row, max_col + 1, max_row + 1]``; a NaN row means nothing was kept.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from scipy import ndimage

from groundbench.postprocess import PIPELINE_STEPS

REGION_RULES: tuple[str, ...] = ("largest_component", "peak_cluster", "union_box")
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


@PIPELINE_STEPS.register(
    "regions",
    config_key="regions",
    input="(B, Y, X) bool",
    output="(B, Y, X) bool, (B, 4) float64",
)
def select_regions(
    mask: torch.Tensor,
    rule: Literal["largest_component", "peak_cluster", "union_box"],
    *,
    heatmap: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Select each map's predicted region from its thresholded mask.

    Args:
        mask: ``(B, Y, X)`` bool thresholded pixels (False on padding).
        rule: ``"largest_component"``, ``"peak_cluster"`` or ``"union_box"``.
        heatmap: ``(B, Y, X)`` float maps; required by ``peak_cluster``.

    Returns:
        ``(pred_mask, pred_box)``: ``(B, Y, X)`` bool selected pixels and ``(B, 4)`` float64
        boxes enclosing them (NaN row when the mask is empty).

    Example:
        >>> m = torch.tensor([[[True, False, False], [False, False, True]]])
        >>> select_regions(m, "union_box")[1].tolist()
        [[0.0, 0.0, 3.0, 2.0]]
    """
    if rule == "union_box":
        return mask, mask_to_box(mask)
    if rule not in REGION_RULES:
        raise ValueError(f"select_regions: rule must be one of {REGION_RULES}, got {rule!r}")
    if rule == "peak_cluster" and heatmap is None:
        raise ValueError("select_regions: rule 'peak_cluster' needs the heatmap")
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
