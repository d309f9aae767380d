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


def test_flickr_gives_one_sample_per_boxed_mention_in_the_flickr30k_convention(root, tmp_path):
    """The file MDETR's preprocessing writes from the Flickr30k fixture gives the samples the
    flickr30k_entities adapter reads from the XML: same phrases, spans and boxes."""
    from adapter_files import write_flickr

    ds = open_dataset("mdetr", root, subset="flickr")
    assert ds.splits() == ("test",)
    samples = ds.load_samples("test")
    flickr = [
        s
        for s in open_dataset("flickr30k_entities", write_flickr(tmp_path / "f")).load_samples(
            "test"
        )
        if "whole_image" not in s.tags
    ]
    assert len(samples) == len(flickr) == 12
    for mine, theirs in zip(samples, flickr, strict=True):
        assert (mine.text, mine.phrase, mine.span) == (theirs.text, theirs.phrase, theirs.span)
        np.testing.assert_array_equal(
            np.unique(mine.boxes, axis=0), np.unique(theirs.boxes, axis=0), err_msg=mine.id
        )
    him, friend = samples[5], samples[6]
    assert (him.id, him.phrase, friend.phrase) == ("mdetr/flickr/test/i2/p0", "him", "his friend")
    np.testing.assert_array_equal(samples[1].boxes, [[4.0, 4.0, 8.0, 8.0]])  # XML (5, 5, 8, 8)
    assert (samples[0].width, samples[0].height) == (100, 80)
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
        "(length 45), got [[10, 99]]"
    )


def test_a_mention_without_a_box_is_refused(root):
    data = mdetr_flickr_file()
    data["images"][0]["tokens_positive_eval"].append([[0, 1]])
    path = root / "mdetr_annotations" / "final_flickr_separateGT_test.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError) as err:
        open_dataset("mdetr", root, subset="flickr").load_samples("test")
    assert str(err.value) == (
        f"{path} images[0] tokens_positive_eval[3]: no annotation of record 0 holds the span "
        "(0, 1); the file is not MDETR's flickr_combined.py output: re-download it"
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
