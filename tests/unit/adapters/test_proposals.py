"""Proposal files: both formats, validation counts, gt proposals."""

from __future__ import annotations

import hashlib
import json

import pytest

from dataset_adapters.proposals import gt_proposals, image_key, read_proposals
from groundbench.errors import DataFormatError
from groundbench.types import GroundingSample


def _sample(sid, image_id, boxes, width=100, height=80):
    return GroundingSample(
        id=sid,
        image_path=f"/img/{image_id:012d}.jpg",
        width=width,
        height=height,
        text="a cat",
        phrase="cat",
        span=(2, 5),
        boxes=boxes,
        meta={"image_id": image_id},
    )


SAMPLES = [_sample("r/1", 7, [[10, 10, 30, 30]]), _sample("r/2", 9, [[0, 0, 5, 5]])]


def test_dict_and_list_formats_give_the_same_boxes(tmp_path):
    as_dict = {"7": [[10, 20, 30, 40, 0.9], [0.5, 1.5, 2, 3]], "9": [[1, 1, 2, 2]]}
    as_list = [
        {"det_id": 1, "image_id": 7, "box": [10, 20, 30, 40], "category_id": 1, "score": 0.9},
        {"det_id": 2, "image_id": 7, "box": [0.5, 1.5, 2, 3], "category_id": 1, "score": 0.8},
        {"det_id": 3, "image_id": 9, "box": [1, 1, 2, 2], "category_id": 3, "score": 0.7},
    ]
    (tmp_path / "d.json").write_text(json.dumps(as_dict))
    (tmp_path / "l.json").write_text(json.dumps(as_list))
    a, b = (
        read_proposals(tmp_path / "d.json", SAMPLES),
        read_proposals(tmp_path / "l.json", SAMPLES),
    )
    assert a.of(SAMPLES[0]).tolist() == [[10, 20, 40, 60], [0.5, 1.5, 2.5, 4.5]]
    assert b.of(SAMPLES[0]).tolist() == a.of(SAMPLES[0]).tolist()
    assert a.of(SAMPLES[1]).tolist() == [[1, 1, 3, 3]]
    assert a.warnings == () and a.source == "d.json"
    assert a.sha256 == hashlib.sha256((tmp_path / "d.json").read_bytes()).hexdigest()
    assert image_key(SAMPLES[0]) == "7"


def test_problems_are_counted_and_named(tmp_path):
    raw = {
        "7": [
            [90, 70, 20, 20],
            [float("nan"), 0, 1, 1],
            [5, 5, 0, 3],
            [200, 5, 3, 3],
            [1, 1, 2, 2],
        ],
        "9": [],
        "123": [[1, 1, 2, 2]],
    }
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(raw))
    p = read_proposals(path, SAMPLES)
    assert p.of(SAMPLES[0]).tolist() == [[90, 70, 100, 80], [1, 1, 3, 3]]  # first clipped
    assert p.of(SAMPLES[1]).shape == (0, 4)
    assert p.counts == {
        "unknown_image_ids": 1,
        "non_finite": 1,
        "empty_box": 2,
        "outside": 1,
        "images_without_proposals": 1,
    }
    assert p.warnings == (
        "proposals dets.json: 1 image ids match no image of the split (ignored), e.g. 123",
        "proposals dets.json: 1 boxes hold NaN or Inf (dropped), e.g. 7#1",
        "proposals dets.json: 2 boxes are empty or lie outside their image (dropped), e.g. "
        "7#2, 7#3",
        "proposals dets.json: 1 boxes reach outside their image (clipped to it), e.g. 7#0",
        "proposals dets.json: 1 images of the split have no proposal (their samples score "
        "undefined: no_proposal), e.g. 9",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "element 0: a MAttNet detection needs 'image_id' and 'box'"),
        (
            '{"7": [[1, 2, 3]]}',
            "image '7' box 0: expected [x, y, w, h, ...] numbers, got [1, 2, 3]",
        ),
        ('{"7": 3}', "image '7': expected a list of [x, y, w, h, ...] boxes, got int"),
        ('"x"', "expected a list of MAttNet detections or a dict image_id -> boxes, got str"),
    ],
)
def test_malformed_files_name_the_element(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataFormatError) as exc:
        read_proposals(path, SAMPLES)
    assert str(exc.value).startswith(f"{path}: {message}")


def test_gt_proposals_are_the_split_boxes_of_each_image():
    samples = [*SAMPLES, _sample("r/3", 7, [[0, 0, 4, 4]]), _sample("r/4", 7, [[10, 10, 30, 30]])]
    p = gt_proposals(samples)
    assert p.source == "gt" and p.sha256 is None
    assert p.of(samples[0]).tolist() == [[10, 10, 30, 30], [0, 0, 4, 4]]
