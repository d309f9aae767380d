"""ROC-AUC of the heatmap separating region pixels from the other valid pixels.

``AUC = U / (|R| · |V \\ R|)`` where ``U`` is the Mann–Whitney statistic of the region
pixels' values against the values of the valid pixels outside the region, ties counting ½.
It equals scikit-learn's ``roc_auc_score(region, heatmap)`` over the valid pixels. Note that
pysaliency's default AUC uses *all* pixels as negatives (region pixels included), which is a
different number.
"""

from __future__ import annotations

import math

import torch

from groundbench.metrics import _inputs, register_metric
from groundbench.metrics._inputs import (
    check_inputs,
    chunked_output,
    count,
    finish,
    iter_chunks,
    masked_minmax,
    n_valid,
    reasons,
)
from groundbench.metrics._permap import PEAK, summarise
from groundbench.metrics._ranks import chunk_rank_stats, shared_summaries
from groundbench.types import MetricOutput, Undefined


@register_metric("auc", needs=("heatmap", "region"), higher_is_better=True, range=(0.0, 1.0))
def auc(
    heatmap: torch.Tensor,
    *,
    region: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    box_count: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    pred_box: torch.Tensor | None = None,
) -> MetricOutput:
    """Exact ROC-AUC per map (Mann–Whitney, ties ½).

    Args:
        heatmap: ``(B, Y, X)`` float32/float16/bfloat16 maps.
        region: ``(B, Y, X)`` bool positives.
        valid: ``(B, Y, X)`` bool, False on padding; None = all valid. Negatives are the valid
            pixels outside the region.
        boxes, box_count, pred_mask, pred_box: ignored.

    Returns:
        :class:`MetricOutput` on CPU: values ``(B,)`` float64 in ``[0, 1]`` (a constant map
        scores 0.5); undefined ``nan_input``, ``empty_region`` (no valid region pixel),
        ``full_region`` (no valid pixel outside the region).

    Example:
        >>> h = torch.tensor([[[0.9, 0.1], [0.5, 0.5]]])
        >>> region = torch.tensor([[[True, False], [True, False]]])
        >>> auc(h, region=region).values.tolist()
        [0.875]
    """
    inputs = check_inputs("auc", heatmap, needs=("heatmap", "region"), region=region, valid=valid)
    values, codes = [], []
    for rows, h, v in iter_chunks(inputs):
        s = shared_summaries(inputs, rows, h, v)
        if s is None and _inputs.use_numpy(h):
            s = summarise(h, v, inputs.region[rows], PEAK)
        if s is not None:
            nonfinite, n_pos, n = s.nonfinite, s.n_pos, s.n
        else:
            _, _, nonfinite = masked_minmax(h, v)
            n_pos, n = count(inputs.region[rows], v), n_valid(h, v)
        code = reasons(
            (nonfinite, Undefined.NAN_INPUT),
            (n_pos == 0, Undefined.EMPTY_REGION),
            (n_pos == n, Undefined.FULL_REGION),
        )
        stats = chunk_rank_stats(inputs, rows, h, v, (code == 0).tolist())
        auc_values = [math.nan if s is None else s.u / (s.n_pos * s.n_neg) for s in stats]
        values.append(finish(torch.tensor(auc_values, dtype=torch.float64), code))
        codes.append(code)
    return chunked_output(values, codes)
