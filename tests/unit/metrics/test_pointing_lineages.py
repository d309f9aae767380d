"""The box pointing variants against independent rewrites of each lineage's own hit function.

Each reference below is written from the lineage's evaluation code, and is fed the box the way
that lineage's data loader stores it; groundbench gets the same box through its adapter's
conversion. Maps are small integers, so ties are frequent.

- SelfEQ / AMC (``dataset/utils.py``): ``y, x = (mask == mask.max()).nonzero()[0]`` then
  ``point_in_box``: ``x > x1 and x < x1 + w and y > y1 and y < y1 + h`` on the COCO
  ``[x, y, w, h]`` of the referent (RefCOCO family); on Flickr30k ``point_in_box_xyxy``, the
  same strict test on any box, the boxes read by info-ground's ``get_annotations`` (XML
  corners minus 1).
- MG (``code/utils.py: isCorrectHit``): ``np.unravel_index(np.argmax(heatmap))`` then
  ``x0 <= col <= x1 and y0 <= row <= y1`` for any box. Its Flickr30k loader keeps the XML's
  1-based corners as they are; its COCO / Visual Genome loaders store ``[x, y, x + w, y + h]``.
- WWbL (``utils_grounding.py: isCorrectHit``): the same test; its Flickr30k loader subtracts 1
  from every XML corner.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dataset_adapters.coords import coco_bbox_to_xyxy, corners_1based_to_xyxy
from groundbench.metrics import pointing

H, W, N = 11, 14, 400


def _maps(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    levels = rng.integers(2, 400, size=(N, 1, 1))  # 2..399 distinct values: ties often
    return (rng.random((N, H, W)) * levels).astype(np.int64).astype(np.float32)


def _selfeq_point_in_box(mask: torch.Tensor, bbox_xywh: list[float]) -> bool:
    y, x = (mask == torch.max(mask)).nonzero()[0]
    x, y = int(x), int(y)
    x1, y1, w, h = bbox_xywh
    return x > x1 and x < (x1 + w) and y > y1 and y < (y1 + h)


def _mg_is_correct_hit(bbox_annot: list[list[float]], heatmap: np.ndarray) -> int:
    max_loc = np.unravel_index(np.argmax(heatmap, axis=None), heatmap.shape)
    for bbox in bbox_annot:
        if bbox[0] <= max_loc[1] <= bbox[2] and bbox[1] <= max_loc[0] <= bbox[3]:
            return 1
    return 0


def _ours(maps: np.ndarray, boxes_xyxy: list[np.ndarray], **params) -> list[float]:
    K = max(len(b) for b in boxes_xyxy)
    boxes = torch.zeros(N, K, 4, dtype=torch.float64)
    for i, b in enumerate(boxes_xyxy):
        boxes[i, : len(b)] = torch.from_numpy(np.asarray(b, dtype=np.float64).reshape(-1, 4))
    count = torch.tensor([len(b) for b in boxes_xyxy])
    out = pointing(torch.from_numpy(maps), boxes=boxes, box_count=count, **params)
    return out.values.tolist()


@pytest.mark.parametrize("seed", [0, 1])
def test_albef_is_selfeq_point_in_box_on_coco_boxes(seed):
    maps = _maps(seed)
    rng = np.random.default_rng(100 + seed)
    # COCO boxes are floats; half of them snapped to integers so edges meet pixel indices
    x = rng.uniform(-2, W, N)
    y = rng.uniform(-2, H, N)
    w = rng.uniform(0, W, N)
    h = rng.uniform(0, H, N)
    snap = rng.random(N) < 0.5
    xywh = [
        [float(np.round(v)) if s else float(v) for v in box]
        for box, s in zip(np.stack([x, y, w, h], 1), snap, strict=True)
    ]
    expected = [
        float(_selfeq_point_in_box(torch.from_numpy(m), b)) for m, b in zip(maps, xywh, strict=True)
    ]
    ours = _ours(maps, [coco_bbox_to_xyxy(b)[None] for b in xywh], variant="albef")
    assert ours == expected
    assert 0 < sum(expected) < N  # both outcomes occur


def _selfeq_flickr_point_acc(boxes: list[list[int]], mask: torch.Tensor) -> int:
    y, x = (mask == torch.max(mask)).nonzero()[0]
    center_point = [int(x), int(y)]
    for x1, y1, x2, y2 in boxes:  # calculate_point_acc / point_in_box_xyxy
        px, py = center_point
        if px > x1 and px < x2 and py > y1 and py < y2:
            return 1
    return 0


def _corners(rng: np.random.Generator, k: int) -> list[list[int]]:
    """Flickr30k XML corners (1-based, inclusive), some reaching past the image."""
    out = []
    for _ in range(k):
        x0, x1 = sorted(rng.integers(1, W + 2, 2))
        y0, y1 = sorted(rng.integers(1, H + 2, 2))
        out.append([int(x0), int(y0), int(x1), int(y1)])
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_mg_on_flickr_is_mg_is_correct_hit_on_the_xml_corners(seed):
    maps = _maps(seed)
    rng = np.random.default_rng(200 + seed)
    corners = [_corners(rng, int(rng.integers(1, 4))) for _ in range(N)]
    expected = [float(_mg_is_correct_hit(c, m)) for m, c in zip(maps, corners, strict=True)]
    ours = _ours(
        maps,
        [corners_1based_to_xyxy(c) for c in corners],
        variant="mg",
        box_convention="corners_1based",
    )
    assert ours == expected
    assert 0 < sum(expected) < N


@pytest.mark.parametrize("seed", [0, 1])
def test_corners_0based_is_wwbl_is_correct_hit_on_its_flickr_boxes(seed):
    maps = _maps(seed)
    rng = np.random.default_rng(300 + seed)
    corners = [_corners(rng, int(rng.integers(1, 4))) for _ in range(N)]
    wwbl_boxes = [[[v - 1 for v in box] for box in c] for c in corners]  # its loader's "- 1"
    expected = [float(_mg_is_correct_hit(b, m)) for m, b in zip(maps, wwbl_boxes, strict=True)]
    ours = _ours(
        maps,
        [corners_1based_to_xyxy(c) for c in corners],
        variant="mg",
        box_convention="corners_0based",
    )
    assert ours == expected


@pytest.mark.parametrize("seed", [0, 1])
def test_mg_is_mg_is_correct_hit_on_coco_and_vg_boxes(seed):
    maps = _maps(seed)
    rng = np.random.default_rng(400 + seed)
    xywh = rng.integers(0, W, (N, 4)).astype(float)
    mg_boxes = [[[x, y, x + w, y + h]] for x, y, w, h in xywh]  # MG's COCO / VG loaders
    expected = [float(_mg_is_correct_hit(b, m)) for m, b in zip(maps, mg_boxes, strict=True)]
    ours = _ours(maps, [coco_bbox_to_xyxy(b)[None] for b in xywh], variant="mg")
    assert ours == expected
    assert 0 < sum(expected) < N


def test_the_torch_path_picks_the_same_first_maximum():
    maps = _maps(5) // 2  # integers below 256 stay exact in bfloat16
    rng = np.random.default_rng(5)
    corners = [_corners(rng, 1) for _ in range(N)]
    kw = {"variant": "mg", "box_convention": "corners_1based"}
    boxes = [corners_1based_to_xyxy(c) for c in corners]
    on_numpy = _ours(maps, boxes, **kw)
    K = torch.tensor(np.stack(boxes)).double()
    out = pointing(
        torch.from_numpy(maps).bfloat16(), boxes=K, box_count=torch.ones(N, dtype=torch.long), **kw
    )
    assert out.values.tolist() == on_numpy


@pytest.mark.parametrize("seed", [0, 1])
def test_albef_on_flickr_is_selfeq_point_acc_on_its_flickr_boxes(seed):
    maps = _maps(seed)
    rng = np.random.default_rng(500 + seed)
    corners = [_corners(rng, int(rng.integers(1, 4))) for _ in range(N)]
    selfeq_boxes = [[[v - 1 for v in box] for box in c] for c in corners]  # info-ground's "- 1"
    expected = [
        float(_selfeq_flickr_point_acc(b, torch.from_numpy(m)))
        for m, b in zip(maps, selfeq_boxes, strict=True)
    ]
    ours = _ours(
        maps,
        [corners_1based_to_xyxy(c) for c in corners],
        variant="albef",
        box_convention="corners_0based",
    )
    assert ours == expected
    assert 0 < sum(expected) < N
