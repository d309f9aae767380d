"""Region ranking: hand cases, IoU rules, the pixel convention, and ALBEF's grounding_eval."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from groundbench.errors import ProtocolError
from groundbench.metrics import display_key, proposal_rank, rank_acc
from groundbench.metrics.ranking import box_sums
from groundbench.types import Undefined


def _call(fn, h, gt, cand, **params):
    gt = torch.as_tensor(gt, dtype=torch.float64)
    cand = torch.as_tensor(cand, dtype=torch.float64)
    return fn(
        torch.as_tensor(h, dtype=torch.float32),
        boxes=gt,
        box_count=torch.tensor([gt.shape[1]] * gt.shape[0]),
        proposals=cand,
        proposal_count=torch.tensor([cand.shape[1]] * cand.shape[0]),
        **params,
    )


def test_hand_made_map_and_the_area_exponent():
    # mass 4 in a 2×2 corner; a 4×4 box holding it and 4 more pixels of 0.5
    h = np.zeros((1, 6, 6))
    h[0, :2, :2] = 1.0
    h[0, 2:4, :2] = 0.5
    small, big = [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 4.0]
    # alpha 0.5: 4 / 2 = 2 vs 6 / sqrt(8) = 2.12 -> big; alpha 1: 1 vs 0.75 -> small
    gt = [[[0.0, 0.0, 2.0, 1.5]]]  # IoU 0.75 with small, 0.375 with big
    assert _call(rank_acc, h, gt, [[small, big]]).values.tolist() == [0.0]
    assert _call(rank_acc, h, gt, [[small, big]], alpha=1.0).values.tolist() == [1.0]
    assert _call(proposal_rank, h, gt, [[small, big]]).values.tolist() == [2.0]
    assert _call(proposal_rank, h, gt, [[small, big]], alpha=1.0).values.tolist() == [1.0]


def test_iou_exactly_half_under_both_rules():
    h = np.zeros((1, 4, 8))
    h[0, :, :2] = 1.0
    gt = [[[0.0, 0.0, 4.0, 4.0]]]
    cand = [[[0.0, 0.0, 2.0, 4.0]]]  # IoU 8 / 16 = 0.5 exactly
    assert _call(rank_acc, h, gt, cand).values.tolist() == [1.0]
    assert _call(rank_acc, h, gt, cand, rule=">").values.tolist() == [0.0]
    out = _call(proposal_rank, h, gt, cand, rule=">")
    assert out.undefined.tolist() == [Undefined.NO_CORRECT_PROPOSAL]


def test_pixels_count_by_their_centres():
    h = np.arange(1, 26, dtype=np.float64).reshape(5, 5)
    # x from 0.4 to 2.6: centres 0.5, 1.5, 2.5 inside; y from 1.5 to 3.5: rows 1, 2, 3 (closed)
    box = np.array([[0.4, 1.5, 2.6, 3.5], [0.6, 0.0, 1.4, 5.0], [2.0, 2.0, 2.0, 2.0]])
    want = [h[1:4, 0:3].sum(), 0.0, 0.0]  # the second box holds no centre, the third none
    assert box_sums(h.astype(np.float32), None, box).tolist() == want
    valid = np.ones((5, 5), dtype=bool)
    valid[:, 2] = False
    assert box_sums(h.astype(np.float32), valid, box[:1]).tolist() == [h[1:4, 0:2].sum()]


def test_box_sums_match_slicing_on_random_and_tied_maps(rng):
    for kind in ("random", "tied"):
        h = rng.random((37, 53)) if kind == "random" else rng.integers(0, 3, (37, 53)) * 1.0
        h = h.astype(np.float32)
        x0, y0 = rng.uniform(-3, 50, 60), rng.uniform(-3, 35, 60)
        boxes = np.stack([x0, y0, x0 + rng.uniform(0, 20, 60), y0 + rng.uniform(0, 20, 60)], 1)
        got = box_sums(h, None, boxes)
        for b, g in zip(boxes, got, strict=True):
            c0, c1 = max(0, math.ceil(b[0] - 0.5)), min(53, math.floor(b[2] - 0.5) + 1)
            r0, r1 = max(0, math.ceil(b[1] - 0.5)), min(37, math.floor(b[3] - 0.5) + 1)
            ref = (
                math.fsum(h[r0:r1, c0:c1].astype(np.float64).ravel()) if r1 > r0 and c1 > c0 else 0
            )
            assert abs(g - ref) <= 1e-12 * max(1.0, abs(ref)), (b, g, ref)


# --- ALBEF's grounding_eval (salesforce/ALBEF dataset/utils.py), reimplemented ------------


def albef_compute_iou(box1, box2):
    inter_x1 = max(box1[0], box2[0])
    inter_y1 = max(box1[1], box2[1])
    inter_x2 = min(box1[0] + box1[2] - 1, box2[0] + box2[2] - 1)
    inter_y2 = min(box1[1] + box1[3] - 1, box2[1] + box2[3] - 1)
    if inter_x1 < inter_x2 and inter_y1 < inter_y2:
        inter = (inter_x2 - inter_x1 + 1) * (inter_y2 - inter_y1 + 1)
    else:
        inter = 0
    union = box1[2] * box1[3] + box2[2] * box2[3] - inter
    return float(inter) / union


def albef_correct(mask, dets, ref_box, alpha=0.5):
    """One sample of grounding_eval: None when no detection scores above 0."""
    max_score, pred_box = 0, None
    for det in dets:
        score = mask[int(det[1]) : int(det[1] + det[3]), int(det[0]) : int(det[0] + det[2])]
        score = score.sum() / (det[2] * det[3]) ** alpha
        if score > max_score:
            pred_box, max_score = det[:4], score
    return None if pred_box is None else albef_compute_iou(ref_box, pred_box) >= 0.5


def _xyxy(b):
    return [b[0], b[1], b[0] + b[2], b[1] + b[3]]


def test_agrees_with_albef_on_integer_boxes(rng):
    n, Y, X = 40, 30, 40
    agree = 0
    for i in range(n):
        mask = rng.random((Y, X)) ** 4 if i % 2 else rng.integers(0, 3, (Y, X)) * 1.0
        mask = mask.astype(np.float32)
        dets = []
        for _ in range(12):
            x, y = int(rng.integers(0, X - 4)), int(rng.integers(0, Y - 4))
            dets.append([x, y, int(rng.integers(3, X - x + 1)), int(rng.integers(3, Y - y + 1))])
        ref_box = dets[int(rng.integers(0, 12))][:]
        ref_box = [ref_box[0] + 1, ref_box[1], ref_box[2] - 1, ref_box[3]]  # overlapping, not equal
        want = albef_correct(mask.astype(np.float64), dets, ref_box)
        out = _call(rank_acc, mask[None], [[_xyxy(ref_box)]], [[_xyxy(d) for d in dets]])
        assert want is not None
        assert out.values.item() == float(want), i
        agree += 1
    assert agree == n


def test_where_albef_differs_on_purpose():
    # 1. ALBEF truncates float coordinates; the pixel-centre rule rounds them
    mask = np.zeros((4, 8), dtype=np.float32)
    mask[:, 1] = 1.0
    det = [1.7, 0.0, 2.0, 4.0]  # x from 1.7 to 3.7: ALBEF sums columns 1..2, we columns 2..3
    assert albef_correct(mask, [det], [1.0, 0.0, 1.0, 4.0]) is not None
    assert box_sums(mask, None, np.array([_xyxy(det)])).tolist() == [0.0]
    # 2. ALBEF's intersection is inclusive (-1/+1) but strict: boxes overlapping by one
    # pixel column intersect 0 there, and the continuous IoU counts that column
    a, b = [0, 0, 2, 2], [1, 0, 2, 2]
    assert albef_compute_iou(a, b) == 0.0
    h = np.ones((1, 2, 3))
    assert _call(rank_acc, h, [[_xyxy(a)]], [[_xyxy(b)]], iou=1 / 3).values.tolist() == [1.0]
    # 3. no positive score: ALBEF carries the previous prediction over; we count it
    out = _call(rank_acc, -np.ones((1, 4, 4)), [[[0.0, 0.0, 2.0, 2.0]]], [[[0.0, 0.0, 2.0, 2.0]]])
    assert out.undefined.tolist() == [Undefined.NO_POSITIVE_SCORE]


def test_undefined_cases_and_missing_proposals():
    h = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
    h[2, 0, 0] = math.nan
    out = rank_acc(
        h,
        boxes=torch.tensor([[[0.0, 0.0, 2.0, 2.0]]] * 3, dtype=torch.float64),
        box_count=torch.tensor([0, 1, 1]),
        proposals=torch.tensor([[[0.0, 0.0, 2.0, 2.0]]] * 3, dtype=torch.float64),
        proposal_count=torch.tensor([1, 0, 1]),
    )
    assert out.undefined.tolist() == [Undefined.NO_BOX, Undefined.NO_PROPOSAL, Undefined.NAN_INPUT]
    with pytest.raises(ProtocolError, match=r"^metric 'rank_acc' needs candidate boxes"):
        rank_acc(h, boxes=torch.zeros(3, 1, 4), box_count=torch.ones(3, dtype=torch.long))


def test_display_keys():
    assert display_key("rank_acc") == "rank_acc@0.5"
    assert display_key("rank_acc", {"rule": ">"}) == "rank_acc@0.5[>]"
    assert display_key("proposal_rank", {"alpha": 1, "iou": 0.7}) == "proposal_rank@0.7[alpha=1]"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_pixel_outside_every_box_is_flagged_unless_padding(value):
    # the box sums read the whole map in the pass that flags non-finite pixels: a bad pixel
    # beyond the last box's row and column is still found; one in the padding is not
    h = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(1))
    h[:, 5, 5] = value
    h[1, 0, 0] = math.inf
    h[1, 0, 1] = -math.inf  # +Inf and -Inf in two columns: their total is NaN
    valid = torch.ones(3, 6, 6, dtype=torch.bool)
    valid[2, 5, 5] = False
    h[1, 5, 5] = 0.0
    box = [[[0.0, 0.0, 2.0, 2.0]]] * 3
    out = rank_acc(
        h,
        valid=valid,
        boxes=torch.tensor(box, dtype=torch.float64),
        box_count=torch.tensor([1, 1, 1]),
        proposals=torch.tensor(box, dtype=torch.float64),
        proposal_count=torch.tensor([1, 1, 1]),
    )
    assert out.undefined.tolist() == [Undefined.NAN_INPUT, Undefined.NAN_INPUT, 0]
    assert out.values[2].item() == 1.0
