"""Hand-computed mIoU and soft-IoU cases."""

from __future__ import annotations

import math

import pytest
import torch

from groundbench.metrics import miou, soft_iou
from groundbench.types import Undefined


def _mask(rows):
    return torch.tensor([rows], dtype=torch.bool)


def test_miou_hand_case_and_empty_prediction():
    region = _mask([[1, 1, 0], [0, 0, 0]])
    pred = _mask([[0, 1, 1], [0, 0, 0]])
    h = torch.zeros(1, 2, 3)
    assert miou(h, region=region, pred_mask=pred).values.tolist() == [pytest.approx(1 / 3)]
    empty = torch.zeros_like(pred)
    assert miou(h, region=region, pred_mask=empty).values.tolist() == [0.0]


def test_miou_ignores_padding_and_flags_empty_region():
    region = _mask([[1, 0, 0]])
    pred = _mask([[1, 0, 1]])
    valid = _mask([[1, 1, 0]])
    h = torch.zeros(1, 1, 3)
    assert miou(h, region=region, pred_mask=pred, valid=valid).values.tolist() == [1.0]
    out = miou(h, region=torch.zeros_like(region), pred_mask=pred)
    assert out.undefined.tolist() == [Undefined.EMPTY_REGION]


def test_soft_iou_uses_the_minmax_normalised_map():
    # normalised: [[1, .5], [0, 0]] -> min-sum 1, max-sum 1 + .5
    h = torch.tensor([[[3.0, 2.0], [1.0, 1.0]]])
    region = _mask([[1, 0], [0, 0]])
    assert soft_iou(h, region=region).values.tolist() == [pytest.approx(2 / 3)]
    assert soft_iou(h * 7 - 2, region=region).values.tolist() == [pytest.approx(2 / 3)]


def test_soft_iou_perfect_and_undefined_cases():
    region = _mask([[1, 0], [0, 0]])
    assert soft_iou(region.float(), region=region).values.tolist() == [1.0]
    cases = {
        Undefined.CONSTANT_MAP: (torch.ones(1, 2, 2), region),
        Undefined.FULL_REGION: (torch.rand(1, 2, 2), torch.ones(1, 2, 2, dtype=torch.bool)),
        Undefined.EMPTY_REGION: (torch.rand(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.bool)),
        Undefined.NAN_INPUT: (torch.tensor([[[math.nan, 0.0], [1.0, 0.0]]]), region),
    }
    for code, (h, r) in cases.items():
        out = soft_iou(h, region=r)
        assert out.undefined.tolist() == [code] and math.isnan(out.values.item())


def test_soft_iou_ignores_padding_values():
    h = torch.tensor([[[1.0, 0.0, 100.0]]])
    valid = _mask([[1, 1, 0]])
    region = _mask([[1, 0, 0]])
    assert soft_iou(h, region=region, valid=valid).values.tolist() == [1.0]
