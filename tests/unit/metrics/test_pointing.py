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


def test_centre_rule_mg_box_is_closed_and_albef_box_is_open():
    # pixel (2, 5) has its centre (5.5, 2.5) on the box's right edge x1 = 5.5
    boxes, count = _boxes([1.0, 1.0, 5.5, 4.0])
    h = _peak(2, 5, shape=(8, 8))
    centre = {"boxes": boxes, "box_count": count, "coords": "centre"}
    assert pointing(h, variant="mg", **centre).values.tolist() == [1.0]
    assert pointing(h, variant="albef", **centre).values.tolist() == [0.0]
    inner = _peak(2, 4, shape=(8, 8))
    assert pointing(inner, variant="albef", **centre).values.tolist() == [1.0]


@pytest.mark.parametrize(
    ("column", "mg", "albef"),
    # box x from 2 to 5: index 2 and 5 sit on the edges (mg only), 1 and 6 outside
    [(1, 0.0, 0.0), (2, 1.0, 0.0), (3, 1.0, 1.0), (5, 1.0, 0.0), (6, 0.0, 0.0)],
)
def test_index_rule_tests_the_integer_index(column, mg, albef):
    boxes, count = _boxes([2.0, 0.0, 5.0, 8.0])
    h = _peak(4, column, shape=(8, 8))
    assert pointing(h, boxes=boxes, box_count=count, variant="mg").values.tolist() == [mg]
    assert pointing(h, boxes=boxes, box_count=count, variant="albef").values.tolist() == [albef]


def test_index_and_centre_rules_differ_by_half_a_pixel():
    # index 5 is on the edge x1 = 5 (closed: hit); its centre 5.5 is outside (miss)
    boxes, count = _boxes([2.0, 0.0, 5.0, 8.0])
    h = _peak(4, 5, shape=(8, 8))
    kw = {"boxes": boxes, "box_count": count, "variant": "mg"}
    assert pointing(h, coords="index", **kw).values.tolist() == [1.0]
    assert pointing(h, coords="centre", **kw).values.tolist() == [0.0]


@pytest.mark.parametrize(
    ("convention", "hits"),
    # Flickr30k XML corners 3..5 (1-based) are groundbench's [2, 5): MG reads 3 <= j <= 5,
    # a loader that subtracts 1 reads 2 <= j <= 4; groundbench's own numbers 2 <= j <= 5
    [
        ("corners_1based", [0, 1, 1, 1, 0]),
        ("corners_0based", [1, 1, 1, 0, 0]),
        ("xyxy", [1, 1, 1, 1, 0]),
    ],
)
def test_box_convention_rewrites_the_box_before_the_index_test(convention, hits):
    boxes, count = _boxes([2.0, 0.0, 5.0, 8.0])
    got = [
        pointing(
            _peak(4, j, shape=(8, 8)),
            boxes=boxes,
            box_count=count,
            variant="mg",
            box_convention=convention,
        ).values.item()
        for j in range(2, 7)
    ]
    assert got == hits


def test_ties_first_takes_the_first_maximum_in_row_major_order():
    h = torch.zeros(1, 4, 4)
    h[0, 0, 3] = h[0, 1, 0] = h[0, 3, 3] = 1.0  # first in row-major order: (0, 3)
    boxes, count = _boxes([0.0, 1.0, 2.0, 3.0])  # holds only index (1, 0)
    kw = {"boxes": boxes, "box_count": count, "variant": "mg"}
    first = pointing(h, **kw)
    assert first.values.tolist() == [0.0] and first.extras["tie_count"].tolist() == [3]
    assert pointing(h, ties="expected", **kw).values.tolist() == [pytest.approx(1 / 3)]
    region = _region((4, 4), 0, 3)
    assert pointing(h, region=region, ties="first").values.tolist() == [1.0]
    assert pointing(h, region=region).values.tolist() == [pytest.approx(1 / 3)]


def test_ties_first_on_a_uniform_map_is_the_top_left_pixel():
    boxes, count = _boxes([1.0, 1.0, 3.0, 3.0])
    out = pointing(torch.ones(1, 4, 4), boxes=boxes, box_count=count, variant="albef")
    assert out.values.tolist() == [0.0]
    corner, one = _boxes([-1.0, -1.0, 1.0, 1.0])
    out = pointing(torch.ones(1, 4, 4), boxes=corner, box_count=one, variant="albef")
    assert out.values.tolist() == [1.0]


def test_ties_first_with_tolerance_and_padding():
    h = torch.zeros(1, 20, 20)
    h[0, 0, 19] = h[0, 10, 10] = 1.0
    region = _region((20, 20), 12, 10)
    assert pointing(h, region=region, tolerance_px=2, ties="first").values.tolist() == [0.0]
    valid = torch.ones(1, 20, 20, dtype=torch.bool)
    valid[0, 0, :] = False  # the first maximum is padding: the next one counts
    out = pointing(h, region=region, valid=valid, tolerance_px=2, ties="first")
    assert out.values.tolist() == [1.0]


def test_rule_values_are_checked():
    h, region = torch.rand(1, 2, 2), torch.ones(1, 2, 2, dtype=torch.bool)
    with pytest.raises(
        ProtocolError, match="coords: unknown value 'corner'; valid values: None, 'index', 'centre'"
    ):
        pointing(h, region=region, coords="corner")
    with pytest.raises(ProtocolError, match="ties: unknown value 'random'"):
        pointing(h, region=region, ties="random")
    with pytest.raises(ProtocolError, match="apply to the box variants"):
        pointing(h, region=region, coords="index")
    with pytest.raises(ProtocolError, match="apply to the box variants"):
        pointing(h, region=region, variant="zhang2016", box_convention="corners_1based")


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
