"""Normalised scanpath saliency: the region's mean heatmap value in standard deviations.

``NSS = (mean_R H - mean_V H) / std_V H`` over the valid pixels ``V``, with the population
standard deviation (``ddof = 0``, as pysaliency). A constant map scores 0 (it prefers no
pixel). Sums accumulate in float64, and the variance is taken around the map's own mean, so
a large offset of the map does not cancel digits.
"""

from __future__ import annotations

import torch

from groundbench.metrics import METRICS, _inputs
from groundbench.metrics._inputs import (
    check_inputs,
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
from groundbench.metrics._permap import columns, map_views, peak, sums
from groundbench.metrics._ranks import map_threads, shared_summaries
from groundbench.types import MetricOutput, Undefined


def _nss_numpy(
    h: torch.Tensor, valid: torch.Tensor | None, region: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """CPU path: per map ``min``, ``max``, ``nonfinite``, valid and region pixel counts, mean,
    region mean minus mean, and population variance (two passes, in float64)."""
    view = map_views(h, valid, region)

    def one(i: int) -> tuple:
        mv = view(i)
        p = peak(mv.values, mv.masks[0])
        lo, hi, nonfinite, n, n_pos = p.lo, p.hi, p.nonfinite, mv.values.size, p.n_pos
        total, region_total, sq_dev = sums(mv, spread=True)
        mean = total / max(n, 1)
        lift = region_total / max(n_pos, 1) - mean
        var = sq_dev / max(n, 1)
        return lo, hi, nonfinite, n, n_pos, mean, lift, var

    done = map_threads(one, h.shape[0])
    kinds = (torch.float64, torch.float64, torch.bool, torch.long, torch.long)
    kinds += (torch.float64,) * 3
    return tuple(torch.tensor([d[k] for d in done], dtype=t) for k, t in enumerate(kinds))


@METRICS.register(
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
        shared = shared_summaries(inputs, rows, h, v)
        if shared is not None:
            lo, hi, nonfinite, n, n_pos, total, sq_dev, region_total = columns(
                shared, "lo", "hi", "nonfinite", "n", "n_pos", "total", "sq_dev", "region_total"
            )
            mean = total / n.clamp(min=1).double()
            lift = region_total / n_pos.clamp(min=1).double() - mean
            var = sq_dev / n.clamp(min=1).double()
        elif _inputs.use_numpy(h):
            lo, hi, nonfinite, n, n_pos, mean, lift, var = _nss_numpy(h, v, inputs.region[rows])
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
    return MetricOutput(
        values=torch.cat(values) if values else torch.zeros(0, dtype=torch.float64),
        undefined=torch.cat(codes) if codes else torch.zeros(0, dtype=torch.int8),
    )
