import numpy as np
import pytest
import torch

from groundbench.errors import DataFormatError
from groundbench.types import (
    GroundingSample,
    RawMaps,
    box_area,
    pad_boxes,
    rasterise_boxes,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def make_sample(**kw):
    base = dict(
        id="t/1",
        image_path="/nonexistent.png",
        width=8,
        height=6,
        text="the red ball",
        phrase="red ball",
        span=(4, 12),
        boxes=[[1, 1, 3, 3]],
    )
    base.update(kw)
    return GroundingSample(**base)


def test_xywh_round_trip():
    b = np.array([[3.5, 2.0, 10.0, 0.0], [0, 0, 1, 1]])
    assert xywh_to_xyxy(b).tolist() == [[3.5, 2.0, 13.5, 2.0], [0, 0, 1, 1]]
    np.testing.assert_array_equal(xyxy_to_xywh(xywh_to_xyxy(b)), b)


def test_box_area_continuous_pixels():
    assert box_area([0, 0, 2, 3]).item() == 6.0
    assert box_area([5, 5, 5, 9]).item() == 0.0


def test_pixel_centre_rule_closed_box():
    # box [1, 1, 3, 2]: centres x in {1.5, 2.5}, y in {1.5}; centre on the edge counts (closed)
    boxes, count = pad_boxes([np.array([[1.0, 1.0, 3.0, 2.0]]), np.array([[0.5, 0.5, 0.5, 0.5]])])
    m = rasterise_boxes(boxes, count, 3, 4)
    assert m[0].int().tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    # a zero-area box exactly on pixel (0, 0)'s centre covers that one pixel
    assert m[1].int().tolist() == [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_rasterise_union_and_padding_and_out_of_image():
    boxes, count = pad_boxes([np.array([[0, 0, 1, 1], [3, 2, 99, 99]]), np.zeros((1, 4))])
    count[1] = 0
    m = rasterise_boxes(boxes, count, 3, 4)
    assert m[0].int().tolist() == [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    assert not m[1].any()


def test_rasterise_matches_naive_loop(rng):
    boxes = rng.uniform(-2, 12, size=(5, 3, 4))
    boxes[..., 2:] = boxes[..., :2] + rng.uniform(0, 6, size=(5, 3, 2))
    count = torch.tensor([1, 2, 3, 0, 3])
    m = rasterise_boxes(torch.tensor(boxes), count, 9, 11)
    for b in range(5):
        for i in range(9):
            for j in range(11):
                want = any(
                    x0 <= j + 0.5 <= x1 and y0 <= i + 0.5 <= y1
                    for x0, y0, x1, y1 in boxes[b, : count[b]]
                )
                assert bool(m[b, i, j]) == want


def test_sample_validates_span_and_boxes():
    s = make_sample()
    assert s.boxes.shape == (1, 4) and not s.boxes.flags.writeable
    with pytest.raises(
        DataFormatError,
        match=r"sample 't/1': span \(0, 3\) selects 'the' of the text, not the phrase 'red ball'",
    ):
        make_sample(span=(0, 3))
    with pytest.raises(DataFormatError, match=r"x1 >= x0"):
        make_sample(boxes=[[3, 1, 1, 3]])
    with pytest.raises(DataFormatError, match="at least one box"):
        make_sample(boxes=np.zeros((0, 4)))
    with pytest.raises(DataFormatError, match="NaN or Inf"):
        make_sample(boxes=[[0, 0, np.nan, 1]])


def test_sample_pickles_and_missing_image_names_file():
    import pickle

    s = make_sample(meta={"a": 1}, tags={"x"})
    t = pickle.loads(pickle.dumps(s))
    assert t.id == s.id and t.meta["a"] == 1 and t.tags == frozenset({"x"})
    with pytest.raises(DataFormatError, match="image /nonexistent.png does not exist"):
        s.load_image()


def test_raw_maps_checks_shapes():
    RawMaps(("a",), (torch.zeros(3, 4),))
    RawMaps(("a",), (torch.zeros(2, 2, 3, 4),), kind="attention")
    with pytest.raises(DataFormatError, match=r"sample 'a': attention map must be \(L, H, h, w\)"):
        RawMaps(("a",), (torch.zeros(3, 4),), kind="attention")
    with pytest.raises(DataFormatError, match="1 ids but 2 maps"):
        RawMaps(("a",), (torch.zeros(3, 4), torch.zeros(3, 4)))
