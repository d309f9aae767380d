"""Hand-computed pointing-game cases: ties, variants, tolerance rim, padding, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from groundbench.errors import DataFormatError, ProtocolError
from groundbench.metrics import pointing
from groundbench.metrics.pointing import _GATHER_TIE_LIMIT
from groundbench.types import Undefined


def _region(shape, rows, cols):
    r = torch.zeros(shape, dtype=torch.bool)
    r[rows, cols] = True
    return r[None]


def test_two_tied_maxima_one_in_region_scores_half():
    h = torch.zeros(1, 4, 4)
    h[0, 0, 0] = h[0, 3, 3] = 1.0
    out = pointing(h, region=_region((4, 4), slice(0, 2), slice(0, 2)))
    assert out.values.tolist() == [0.5]
    assert out.extras["tie_count"].tolist() == [2]
    assert out.undefined.tolist() == [0]


def test_constant_map_scores_region_fraction():
    out = pointing(torch.ones(1, 4, 4), region=_region((4, 4), slice(0, 1), slice(0, 4)))
    assert out.values.tolist() == [0.25]
    assert out.extras["tie_count"].tolist() == [16]


def test_full_region_is_a_sure_hit():
    out = pointing(torch.rand(1, 3, 3), region=torch.ones(1, 3, 3, dtype=torch.bool))
    assert out.values.tolist() == [1.0]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_is_undefined(bad):
    h = torch.rand(2, 3, 3)
    h[1, 1, 1] = bad
    out = pointing(h, region=torch.ones(2, 3, 3, dtype=torch.bool))
    assert out.undefined.tolist() == [0, Undefined.NAN_INPUT]
    assert math.isnan(out.values[1]) and out.values[0] == 1.0


def test_nan_on_padding_is_ignored():
    h = torch.rand(1, 3, 3)
    h[0, :, 2] = math.nan
    valid = torch.ones(1, 3, 3, dtype=torch.bool)
    valid[0, :, 2] = False
    out = pointing(h, region=valid.clone(), valid=valid)
    assert out.undefined.tolist() == [0] and out.values.tolist() == [1.0]


def test_empty_region_is_undefined():
    out = pointing(torch.rand(1, 3, 3), region=torch.zeros(1, 3, 3, dtype=torch.bool))
    assert out.undefined.tolist() == [Undefined.EMPTY_REGION]


def test_padding_never_holds_the_maximum():
    h = torch.zeros(1, 2, 4)
    h[0, 0, 3] = 10.0  # padding column
    h[0, 1, 1] = 1.0
    valid = torch.ones(1, 2, 4, dtype=torch.bool)
    valid[0, :, 3] = False
    region = _region((2, 4), 1, 1)
    assert pointing(h, region=region, valid=valid).values.tolist() == [1.0]
    assert pointing(h, region=region).values.tolist() == [0.0]


def _peak(y, x, shape=(40, 40)):
    h = torch.zeros(1, *shape)
    h[0, y, x] = 1.0
    return h


@pytest.mark.parametrize(
    ("peak_x", "hit"),
    [(20 + 15, 1.0), (20 + 16, 0.0)],  # centre distance 15 is a hit (inclusive), 16 a miss
)
def test_zhang2016_tolerance_rim_is_inclusive(peak_x, hit):
    region = _region((40, 40), 20, 20)
    out = pointing(_peak(20, peak_x), region=region, variant="zhang2016")
    assert out.values.tolist() == [hit]


def test_tolerance_is_euclidean_between_centres():
    region = _region((40, 40), 5, 5)
    # (dy, dx) = (9, 12): distance exactly 15; (10, 12): sqrt(244) > 15
    assert pointing(_peak(14, 17), region=region, tolerance_px=15).values.tolist() == [1.0]
    assert pointing(_peak(15, 17), region=region, tolerance_px=15).values.tolist() == [0.0]
    assert pointing(_peak(15, 17), region=region, tolerance_px=15.7).values.tolist() == [1.0]


def test_tolerance_with_many_ties_matches_gather_path():
    # a flat map ties every pixel (distance transform path); a map with few ties uses gathers
    region = _region((30, 30), slice(10, 12), slice(3, 5))
    flat = pointing(torch.ones(1, 30, 30), region=region, tolerance_px=4)
    assert flat.extras["tie_count"].item() > _GATHER_TIE_LIMIT
    near = torch.zeros(30, 30, dtype=torch.bool)
    for i in range(30):
        for j in range(30):
            near[i, j] = any(
                (i - a) ** 2 + (j - b) ** 2 <= 16 for a in range(10, 12) for b in range(3, 5)
            )
    assert flat.values.item() == pytest.approx(near.sum().item() / 900)
    few = torch.zeros(1, 30, 30)
    few[0, 0, :] = 1.0  # 30 ties, none near the region
    few[0, 14, 3] = 1.0  # distance 3 from (11, 3): a hit
    assert pointing(few, region=region, tolerance_px=4).values.item() == pytest.approx(1 / 31)


def _boxes(*boxes):
    return torch.tensor([list(boxes)], dtype=torch.float64), torch.tensor([len(boxes)])


def test_mg_box_is_closed_and_albef_box_is_open():
    # pixel (2, 5) has its centre (5.5, 2.5) on the box's right edge x1 = 5.5
    boxes, count = _boxes([1.0, 1.0, 5.5, 4.0])
    h = _peak(2, 5, shape=(8, 8))
    assert pointing(h, boxes=boxes, box_count=count, variant="mg").values.tolist() == [1.0]
    assert pointing(h, boxes=boxes, box_count=count, variant="albef").values.tolist() == [0.0]
    inner = _peak(2, 4, shape=(8, 8))
    assert pointing(inner, boxes=boxes, box_count=count, variant="albef").values.tolist() == [1.0]


def test_zero_area_box_hits_only_under_the_closed_rule():
    boxes, count = _boxes([3.5, 2.5, 3.5, 2.5])
    h = _peak(2, 3, shape=(8, 8))
    assert pointing(h, boxes=boxes, box_count=count, variant="mg").values.tolist() == [1.0]
    assert pointing(h, boxes=boxes, box_count=count, variant="albef").values.tolist() == [0.0]


def test_several_boxes_and_out_of_image_boxes():
    boxes, count = _boxes([0.0, 0.0, 1.0, 1.0], [6.0, 6.0, 20.0, 20.0])
    h = _peak(7, 7, shape=(8, 8))
    assert pointing(h, boxes=boxes, box_count=count, variant="mg").values.tolist() == [1.0]
    far, one = _boxes([100.0, 100.0, 120.0, 120.0])
    assert pointing(h, boxes=far, box_count=one, variant="albef").values.tolist() == [0.0]


def test_padding_boxes_beyond_box_count_are_ignored():
    boxes = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 8.0, 8.0]]])
    out = pointing(_peak(5, 5, (8, 8)), boxes=boxes, box_count=torch.tensor([1]), variant="mg")
    assert out.values.tolist() == [0.0]


def test_box_variant_without_boxes_is_no_box():
    out = pointing(
        torch.rand(1, 4, 4),
        boxes=torch.zeros(1, 1, 4),
        box_count=torch.tensor([0]),
        variant="mg",
    )
    assert out.undefined.tolist() == [Undefined.NO_BOX]


def test_bfloat16_ties_are_real_ties():
    h = torch.tensor([[[1.0, 1.001], [0.0, 0.0]]])  # equal once rounded to bfloat16
    region = _region((2, 2), 0, 0)
    assert pointing(h, region=region).values.tolist() == [0.0]
    out = pointing(h.bfloat16(), region=region)
    assert out.values.tolist() == [0.5] and out.extras["tie_count"].tolist() == [2]


def test_variant_and_tolerance_conflict_is_an_error():
    with pytest.raises(
        ProtocolError,
        match=r"^pointing: pointing: variant 'zhang2016' fixes its own tolerance; drop "
        r"tolerance_px=10$",
    ):
        pointing(
            torch.rand(1, 2, 2),
            region=torch.ones(1, 2, 2, dtype=torch.bool),
            variant="zhang2016",
            tolerance_px=10,
        )
    with pytest.raises(ProtocolError, match=r"^pointing.variant: unknown value 'torchray'; valid"):
        pointing(
            torch.rand(1, 2, 2), region=torch.ones(1, 2, 2, dtype=torch.bool), variant="torchray"
        )


def test_missing_region_names_it():
    with pytest.raises(DataFormatError, match=r"^pointing: needs 'region', but it was not given$"):
        pointing(torch.rand(1, 2, 2))
