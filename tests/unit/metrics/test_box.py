"""Hand-computed box IoU / box accuracy cases: several boxes, clipping, empty predictions."""

from __future__ import annotations

import math

import pytest
import torch

from groundbench.errors import ProtocolError
from groundbench.metrics import box_acc, box_iou
from groundbench.types import Undefined


def _call(fn, pred, *gt, shape=(10, 10), valid=None, **params):
    boxes = torch.tensor([list(gt) or [[0.0, 0.0, 0.0, 0.0]]], dtype=torch.float64)
    return fn(
        torch.zeros(1, *shape),
        boxes=boxes,
        box_count=torch.tensor([len(gt)]),
        pred_box=torch.tensor([pred], dtype=torch.float64),
        valid=valid,
        **params,
    )


def test_iou_takes_the_best_matching_box():
    out = _call(box_iou, [0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 2.0, 4.0], [0.0, 0.0, 4.0, 5.0])
    assert out.values.tolist() == [pytest.approx(16 / 20)]


def test_no_prediction_scores_zero_and_no_gt_box_is_undefined():
    assert _call(box_iou, [math.nan] * 4, [0.0, 0.0, 4.0, 4.0]).values.tolist() == [0.0]
    out = _call(box_iou, [0.0, 0.0, 4.0, 4.0])
    assert out.undefined.tolist() == [Undefined.NO_BOX] and math.isnan(out.values.item())


def test_boxes_are_clipped_to_the_image():
    # the GT box reaches 10 px beyond the right edge of a 10 px-wide image
    out = _call(box_iou, [5.0, 0.0, 10.0, 10.0], [5.0, 0.0, 20.0, 10.0])
    assert out.values.tolist() == [1.0]


def test_image_extent_comes_from_valid():
    valid = torch.zeros(1, 10, 10, dtype=torch.bool)
    valid[0, :6, :8] = True  # an 8×6 image padded to 10×10
    out = _call(box_iou, [0.0, 0.0, 8.0, 6.0], [0.0, 0.0, 10.0, 10.0], valid=valid)
    assert out.values.tolist() == [1.0]


def test_zero_area_boxes_score_zero():
    assert _call(box_iou, [2.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0]).values.tolist() == [0.0]
    assert _call(box_iou, [0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 1.0, 3.0]).values.tolist() == [0.0]


def test_box_acc_threshold_is_inclusive():
    half = ([0.0, 0.0, 4.0, 2.0], [0.0, 0.0, 4.0, 4.0])  # IoU exactly 0.5
    assert _call(box_acc, *half).values.tolist() == [1.0]
    assert _call(box_acc, *half, iou=0.75).values.tolist() == [0.0]


def test_nan_heatmap_is_flagged():
    out = box_iou(
        torch.full((1, 4, 4), math.nan),
        boxes=torch.zeros(1, 1, 4),
        box_count=torch.tensor([1]),
        pred_box=torch.zeros(1, 4),
    )
    assert out.undefined.tolist() == [Undefined.NAN_INPUT]


def test_bad_threshold_is_an_error():
    with pytest.raises(
        ProtocolError, match=r"^box_acc.iou: 1.5 is out of range; use a value in \(0, 1\]$"
    ):
        _call(box_acc, [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], iou=1.5)
