"""Box metrics: IoU of the pipeline's predicted box with the best-matching ground-truth box.

Boxes are ``xyxy`` in continuous pixels; areas are continuous (``(x1 - x0) · (y1 - y0)``).
Both boxes are first clipped to the image, the extent of the valid pixels
(``[0, width] × [0, height]``), so a ground-truth box reaching outside the image is judged on
its visible part. ``box_iou`` is the best IoU over the sample's real boxes; ``box_acc`` is 1
when that IoU reaches the threshold (``IoU >= iou``), else 0. A missing prediction (NaN
row: nothing survived the threshold) scores 0; a zero-area union scores 0.
"""

from __future__ import annotations

import torch

from groundbench.metrics import Param, Params, register_metric
from groundbench.metrics._inputs import (
    Inputs,
    check_inputs,
    finish,
    iter_chunks,
    masked_minmax,
    reasons,
)
from groundbench.types import MetricOutput, Undefined

#: What both box metrics read.
_NEEDS = ("heatmap", "boxes", "pred_box")


def _image_extent(inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-map ``(width, height)`` in pixels: the extent of the valid pixels, float64 ``(B,)``."""
    B, Y, X = inputs.heatmap.shape
    dev = inputs.heatmap.device
    if inputs.valid is None:
        return torch.full((B,), float(X), device=dev, dtype=torch.float64), torch.full(
            (B,), float(Y), device=dev, dtype=torch.float64
        )
    cols = inputs.valid.any(dim=1) * torch.arange(1, X + 1, device=dev)  # B X
    rows = inputs.valid.any(dim=2) * torch.arange(1, Y + 1, device=dev)  # B Y
    return cols.amax(dim=1).double(), rows.amax(dim=1).double()


def _best_iou(
    metric: str,
    heatmap: torch.Tensor,
    valid: torch.Tensor | None,
    boxes: torch.Tensor | None,
    box_count: torch.Tensor | None,
    pred_box: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a box metric's inputs; return the best IoU per map (float64 ``(B,)``) and codes."""
    inputs = check_inputs(
        metric,
        heatmap,
        needs=_NEEDS,
        valid=valid,
        boxes=boxes,
        box_count=box_count,
        pred_box=pred_box,
    )
    width, height = _image_extent(inputs)
    lim = torch.stack([width, height, width, height], dim=1)  # B 4
    gt = inputs.boxes.to(inputs.heatmap.device, torch.float64)
    gt = torch.minimum(gt.clamp(min=0), lim[:, None, :])  # B K 4
    pred = inputs.pred_box.to(inputs.heatmap.device, torch.float64)
    has_pred = ~pred.isnan().any(dim=1)
    pred = torch.minimum(torch.nan_to_num(pred).clamp(min=0), lim)[:, None, :]  # B 1 4

    def area(b: torch.Tensor) -> torch.Tensor:
        return (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)

    lt = torch.maximum(gt[..., :2], pred[..., :2])
    rb = torch.minimum(gt[..., 2:], pred[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)  # B K
    union = area(gt) + area(pred) - inter
    iou = torch.where(union > 0, inter / union.clamp(min=torch.finfo(torch.float64).tiny), 0.0)
    real = (
        torch.arange(gt.shape[1], device=gt.device)[None, :]
        < inputs.box_count.to(gt.device)[:, None]
    )
    best = torch.where(real, iou, 0.0).amax(dim=1) if gt.shape[1] else torch.zeros_like(width)
    best = torch.where(has_pred, best, 0.0)
    nonfinite = torch.zeros(len(best), dtype=torch.bool)
    for rows, h, v in iter_chunks(inputs):
        nonfinite[rows] = masked_minmax(h, v)[2]
    code = reasons(
        (nonfinite, Undefined.NAN_INPUT), (inputs.box_count.cpu() == 0, Undefined.NO_BOX)
    )
    return best, code


@register_metric("box_iou", needs=_NEEDS, higher_is_better=True, range=(0.0, 1.0))
def box_iou(
    heatmap: torch.Tensor,
    *,
    region: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    box_count: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    pred_box: torch.Tensor | None = None,
) -> MetricOutput:
    """IoU per map between the predicted box and the best-matching ground-truth box.

    Args:
        heatmap: ``(B, Y, X)`` float maps the box came from (checked for NaN/Inf only).
        valid: ``(B, Y, X)`` bool; its extent is the image boxes are clipped to. None = all.
        boxes: ``(B, K, 4)`` float ``xyxy`` ground-truth boxes, padded.
        box_count: ``(B,)`` long, real boxes per map.
        pred_box: ``(B, 4)`` float ``xyxy`` predicted box, NaN row = no prediction.
        region, pred_mask: ignored.

    Returns:
        :class:`MetricOutput` on CPU: values ``(B,)`` float64 in ``[0, 1]``; undefined
        ``nan_input`` and ``no_box`` (``box_count == 0``).

    Example:
        >>> gt = torch.tensor([[[0.0, 0.0, 4.0, 4.0], [2.0, 2.0, 6.0, 6.0]]])
        >>> out = box_iou(torch.zeros(1, 8, 8), boxes=gt, box_count=torch.tensor([2]),
        ...               pred_box=torch.tensor([[0.0, 0.0, 4.0, 2.0]]))
        >>> out.values.tolist()
        [0.5]
    """
    best, code = _best_iou("box_iou", heatmap, valid, boxes, box_count, pred_box)
    return MetricOutput(values=finish(best, code), undefined=code)


BOX_ACC_PARAMS = Params(
    Param("iou", 0.5, low=0.0, high=1.0, low_open=True),
    key=lambda name, values: f"{name}@{values['iou']:g}",  # the threshold is always shown
)


@register_metric(
    "box_acc",
    needs=_NEEDS,
    higher_is_better=True,
    range=(0.0, 1.0),
    params=BOX_ACC_PARAMS,
)
def box_acc(
    heatmap: torch.Tensor,
    *,
    region: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    box_count: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    pred_box: torch.Tensor | None = None,
    iou: float = 0.5,
) -> MetricOutput:
    """1 per map when the best box IoU is at least ``iou``, else 0 (``box_acc@0.5``).

    Args:
        heatmap, valid, boxes, box_count, pred_box: as :func:`box_iou`.
        region, pred_mask: ignored.
        iou: the IoU threshold in ``(0, 1]``, inclusive.

    Returns:
        :class:`MetricOutput` on CPU: values ``(B,)`` float64, 0 or 1; undefined as
        :func:`box_iou`.

    Raises:
        ProtocolError: ``iou`` is not in ``(0, 1]``.

    Example:
        >>> gt = torch.tensor([[[0.0, 0.0, 4.0, 4.0]]])
        >>> box_acc(torch.zeros(1, 8, 8), boxes=gt, box_count=torch.tensor([1]),
        ...         pred_box=torch.tensor([[0.0, 0.0, 4.0, 2.0]])).values.tolist()
        [1.0]
    """
    iou = BOX_ACC_PARAMS.check({"iou": iou}, metric="box_acc")["iou"]
    best, code = _best_iou("box_acc", heatmap, valid, boxes, box_count, pred_box)
    return MetricOutput(values=finish((best >= iou).double(), code), undefined=code)
