"""Region overlap: ``miou`` (thresholded mask vs region) and ``soft_iou`` (fuzzy Jaccard).

* ``miou``: ``|M ∩ R| / |M ∪ R|`` over the valid pixels, ``M`` the pipeline's thresholded
  mask (``pred_mask``). Averaged over samples by the aggregation, hence the name.
* ``soft_iou``: ``Σ min(Ĥ, G) / Σ max(Ĥ, G)`` over the valid pixels, ``Ĥ`` the min-max
  normalised heatmap (``(H - min) / (max - min)`` over the valid pixels) and ``G`` the region
  indicator. Since ``G`` is 0 or 1 this is ``Σ_R Ĥ / (|R| + Σ_{V \\ R} Ĥ)``.
"""

from __future__ import annotations

import numpy as np
import torch

from groundbench.metrics import _inputs, register_metric
from groundbench.metrics._inputs import (
    check_inputs,
    chunked_output,
    count,
    finish,
    iter_chunks,
    masked_minmax,
    masked_sum,
    n_valid,
    reasons,
    restrict,
)
from groundbench.metrics._permap import PEAK, SUMS, map_threads, summarise, valid_masks
from groundbench.metrics._ranks import shared_summaries
from groundbench.types import MetricOutput, Undefined


def _miou_numpy(
    h: torch.Tensor, valid: torch.Tensor | None, region: torch.Tensor, pred_mask: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """CPU path: per map ``nonfinite``, ``|M ∩ R|``, ``|R|`` and ``|M ∪ R|`` over the valid pixels."""
    masks = valid_masks(valid, region, pred_mask)

    def one(i: int) -> tuple[int, int, int]:
        reg, pm = masks(i)
        inter, n_pos = int(np.count_nonzero(reg & pm)), int(np.count_nonzero(reg))
        return inter, n_pos, n_pos + int(np.count_nonzero(pm)) - inter

    done = map_threads(one, h.shape[0], pixels=h[0].numel())
    counts = torch.tensor(done, dtype=torch.long).reshape(-1, 3)
    return summarise(h, valid, None, PEAK).nonfinite, *counts.unbind(1)


@register_metric(
    "miou", needs=("heatmap", "region", "pred_mask"), higher_is_better=True, range=(0.0, 1.0)
)
def miou(
    heatmap: torch.Tensor,
    *,
    region: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    box_count: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    pred_box: torch.Tensor | None = None,
) -> MetricOutput:
    """IoU per map between the thresholded mask and the region.

    Args:
        heatmap: ``(B, Y, X)`` float maps the mask came from (checked for NaN/Inf only).
        region: ``(B, Y, X)`` bool ground-truth region.
        valid: ``(B, Y, X)`` bool, False on padding; None = all valid.
        pred_mask: ``(B, Y, X)`` bool thresholded heatmap; an empty mask scores 0.
        boxes, box_count, pred_box: ignored.

    Returns:
        :class:`MetricOutput` on CPU: values ``(B,)`` float64 in ``[0, 1]``; undefined
        ``nan_input`` and ``empty_region``.

    Example:
        >>> region = torch.tensor([[[True, True], [False, False]]])
        >>> mask = torch.tensor([[[True, False], [True, False]]])
        >>> miou(torch.zeros(1, 2, 2), region=region, pred_mask=mask).values.tolist()
        [0.3333333333333333]
    """
    inputs = check_inputs(
        "miou",
        heatmap,
        needs=("heatmap", "region", "pred_mask"),
        region=region,
        valid=valid,
        pred_mask=pred_mask,
    )
    values, codes = [], []
    for rows, h, v in iter_chunks(inputs):
        reg, pm = inputs.region[rows], inputs.pred_mask[rows]
        if _inputs.use_numpy(h):
            nonfinite, inter, n_pos, union = _miou_numpy(h, v, reg, pm)
        else:
            _, _, nonfinite = masked_minmax(h, v)
            inter = count(reg, pm, v)
            n_pos = count(reg, v)
            union = n_pos + count(pm, v) - inter
        code = reasons((nonfinite, Undefined.NAN_INPUT), (n_pos == 0, Undefined.EMPTY_REGION))
        values.append(finish(inter.double() / union.clamp(min=1).double(), code))
        codes.append(code)
    return chunked_output(values, codes)


@register_metric("soft_iou", needs=("heatmap", "region"), higher_is_better=True, range=(0.0, 1.0))
def soft_iou(
    heatmap: torch.Tensor,
    *,
    region: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    box_count: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    pred_box: torch.Tensor | None = None,
) -> MetricOutput:
    """Fuzzy Jaccard index per map between the min-max normalised heatmap and the region.

    Args:
        heatmap: ``(B, Y, X)`` float32/float16/bfloat16 maps.
        region: ``(B, Y, X)`` bool ground-truth region.
        valid: ``(B, Y, X)`` bool, False on padding; None = all valid.
        boxes, box_count, pred_mask, pred_box: ignored.

    Returns:
        :class:`MetricOutput` on CPU: values ``(B,)`` float64 in ``[0, 1]``; undefined
        ``nan_input``, ``empty_region``, ``full_region`` and ``constant_map`` (min-max
        normalisation of a constant map is undefined).

    Example:
        >>> h = torch.tensor([[[1.0, 0.5], [0.0, 0.0]]])
        >>> region = torch.tensor([[[True, False], [False, False]]])
        >>> soft_iou(h, region=region).values.tolist()
        [0.6666666666666666]
    """
    inputs = check_inputs(
        "soft_iou", heatmap, needs=("heatmap", "region"), region=region, valid=valid
    )
    values, codes = [], []
    for rows, h, v in iter_chunks(inputs):
        s = shared_summaries(inputs, rows, h, v)
        if s is None and _inputs.use_numpy(h):
            s = summarise(h, v, inputs.region[rows], SUMS)
        if s is not None:
            lo, hi, nonfinite, n, n_pos = s.lo, s.hi, s.nonfinite, s.n, s.n_pos
            s_all, s_pos = s.total, s.region_total
        else:
            reg = restrict(inputs.region[rows], v)
            lo, hi, nonfinite = masked_minmax(h, v)
            n, n_pos = n_valid(h, v), count(reg, None)
            s_all, s_pos = masked_sum(h, v), masked_sum(h, reg)
        code = reasons(
            (nonfinite, Undefined.NAN_INPUT),
            (n_pos == 0, Undefined.EMPTY_REGION),
            (n_pos == n, Undefined.FULL_REGION),
            (lo == hi, Undefined.CONSTANT_MAP),
        )
        # Σ_V (H - min) and Σ_R (H - min), in float64
        s_all = s_all - n.double() * lo.double()
        s_pos = s_pos - n_pos.double() * lo.double()
        span = hi.double() - lo.double()
        score = s_pos / (n_pos.double() * span + s_all - s_pos)
        values.append(finish(score, code))
        codes.append(code)
    return chunked_output(values, codes)
