"""MDETR adapter: RefCOCO-family records and Flickr phrases grouped by tokens_positive."""

from __future__ import annotations

import json

import numpy as np
import pytest
from adapter_files import mdetr_flickr_file, write_mdetr

from dataset_adapters import open_dataset
from dataset_adapters.check import check_dataset
from dataset_adapters.coords import coco_bbox_to_xyxy
from groundbench.errors import DataFormatError


@pytest.fixture
def root(tmp_path):
    return write_mdetr(tmp_path / "mdetr")


def test_coco_bbox_to_xyxy():
    np.testing.assert_array_equal(
        coco_bbox_to_xyxy([20.0, 20.0, 8.0, 8.0]), [20.0, 20.0, 28.0, 28.0]
    )


def test_refcoco_records_are_whole_expressions(root):
    ds = open_dataset("mdetr", root)
    assert ds.splits() == ("train", "val")
    man, dog = ds.load_samples("val")
    assert (man.id, man.phrase, man.span) == ("mdetr/refcoco/val/i0", "man on the left", (0, 15))
    np.testing.assert_array_equal(man.boxes, [[2.0, 4.0, 12.0, 24.0]])
    assert man.image_path == str(root / "train2014" / "COCO_train2014_000000000001.jpg")
    assert man.meta["original_id"] == 1 and man.meta["dataset_name"] == "refcoco"
    assert {"relational", "split=val", "off-centre"} <= man.tags
    assert "compositional" not in dog.tags  # (red, dog) is in train
    assert [c.text for c in ds.load_captions("train")] == ["man on the left", "red dog"]


def test_flickr_phrases_group_boxes(root):
    ds = open_dataset("mdetr", root, subset="flickr")
    assert ds.splits() == ("test",)
    samples = ds.load_samples("test")
    assert [(s.id, s.phrase) for s in samples] == [
        ("mdetr/flickr/test/i5/p0", "A man"),
        ("mdetr/flickr/test/i5/p1", "a dog"),
        ("mdetr/flickr/test/i5/p2", "a red ball"),
    ]
    np.testing.assert_array_equal(samples[0].boxes, [[0, 0, 10, 20], [30, 10, 40, 30]])
    assert samples[2].span == (26, 36) and "attribute" in samples[2].tags
    assert samples[0].image_path == str(root / "flickr30k-images" / "1000.jpg")


def test_bad_tokens_positive(root):
    data = mdetr_flickr_file()
    data["annotations"][2]["tokens_positive"] = [[10, 99]]
    path = root / "mdetr_annotations" / "final_flickr_separateGT_test.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError) as err:
        open_dataset("mdetr", root, subset="flickr").load_samples("test")
    assert str(err.value) == (
        f"{path} annotations[2]: tokens_positive must be [[start, end], ...] inside the caption "
        "(length 38), got [[10, 99]]"
    )


def test_malformed_json_and_missing_fields(root):
    path = root / "mdetr_annotations" / "final_refcoco_val.json"
    path.write_text('{"images": [')
    with pytest.raises(
        DataFormatError, match=r"final_refcoco_val.json: malformed JSON at line 1 column 13"
    ):
        open_dataset("mdetr", root).load_samples("val")
    path.write_text(
        json.dumps({"images": [{"id": 0, "file_name": "x.jpg", "caption": "c"}], "annotations": []})
    )
    with pytest.raises(DataFormatError) as err:
        open_dataset("mdetr", root).load_samples("val")
    assert str(err.value) == (
        f"{path} images[0]: missing field 'width' (fields present: id, file_name, caption)"
    )


def test_unknown_subset_and_split(root):
    with pytest.raises(
        DataFormatError,
        match=r"unknown subset 'vg'; use one of refcoco, refcoco\+, refcocog, flickr",
    ):
        open_dataset("mdetr", root, subset="vg")
    with pytest.raises(
        DataFormatError,
        match=r"final_refcoco_testA.json does not exist; the refcoco splits here are train, val",
    ):
        open_dataset("mdetr", root).load_samples("testA")


def test_check(root):
    checks = {c.split: c for c in check_dataset(open_dataset("mdetr", root))}
    assert checks["val"].published == 10834 and checks["val"].samples == 2
    assert checks["val"].missing_images == 0 and checks["val"].ok
