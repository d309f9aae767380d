"""Normalised scanpath saliency: the region's mean heatmap value in standard deviations.

``NSS = (mean_R H - mean_V H) / std_V H`` over the valid pixels ``V``, with the population
standard deviation (``ddof = 0``, as pysaliency). A constant map scores 0 (it prefers no
pixel). Sums accumulate in float64, and the variance is taken around the map's own mean, so
a large offset of the map does not cancel digits.
"""

from __future__ import annotations

import torch

from groundbench.metrics import _inputs, register_metric
from groundbench.metrics._inputs import (
    check_inputs,
    chunked_output,
    count,
    finish,
    iter_chunks,
    masked_minmax,
    masked_sq_dev,
    masked_sum,
    n_valid,
    reasons,
    restrict,
)
from groundbench.metrics._permap import SPREAD, summarise
from groundbench.metrics._ranks import shared_summaries
from groundbench.types import MetricOutput, Undefined


@register_metric(
    "nss", needs=("heatmap", "region"), higher_is_better=True, range=(float("-inf"), float("inf"))
)
def nss(
    heatmap: torch.Tensor,
    *,
    region: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    box_count: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    pred_box: torch.Tensor | None = None,
) -> MetricOutput:
    """NSS per map.

    Args:
        heatmap: ``(B, Y, X)`` float32/float16/bfloat16 maps.
        region: ``(B, Y, X)`` bool ground-truth region.
        valid: ``(B, Y, X)`` bool, False on padding; None = all valid.
        boxes, box_count, pred_mask, pred_box: ignored.

    Returns:
        :class:`MetricOutput` on CPU: values ``(B,)`` float64 (0 for a constant map);
        undefined ``nan_input``, ``empty_region`` and ``full_region`` (the region mean is
        the map mean: nothing is measured).

    Example:
        >>> h = torch.tensor([[[4.0, 0.0], [0.0, 0.0]]])
        >>> region = torch.tensor([[[True, False], [False, False]]])
        >>> round(nss(h, region=region).values.item(), 6)
        1.732051
    """
    inputs = check_inputs("nss", heatmap, needs=("heatmap", "region"), region=region, valid=valid)
    values, codes = [], []
    for rows, h, v in iter_chunks(inputs):
        s = shared_summaries(inputs, rows, h, v)
        if s is None and _inputs.use_numpy(h):
            s = summarise(h, v, inputs.region[rows], SPREAD)
        if s is not None:
            lo, hi, nonfinite, n, n_pos = s.lo, s.hi, s.nonfinite, s.n, s.n_pos
            mean = s.total / n.clamp(min=1).double()
            lift = s.region_total / n_pos.clamp(min=1).double() - mean
            var = s.sq_dev / n.clamp(min=1).double()
        else:
            reg = restrict(inputs.region[rows], v)
            lo, hi, nonfinite = masked_minmax(h, v)
            n, n_pos = n_valid(h, v), count(reg, None)
            mean = masked_sum(h, v) / n.clamp(min=1).double()
            lift = masked_sum(h, reg) / n_pos.clamp(min=1).double() - mean
            var = masked_sq_dev(h, v, mean) / n.clamp(min=1).double()  # two passes, in float64
        code = reasons(
            (nonfinite, Undefined.NAN_INPUT),
            (n_pos == 0, Undefined.EMPTY_REGION),
            (n_pos == n, Undefined.FULL_REGION),
        )
        score = torch.where(lo == hi, 0.0, lift / var.sqrt())
        values.append(finish(score, code))
        codes.append(code)
    return chunked_output(values, codes)
