"""RefCOCO adapter on REFER-format fixtures: ids, boxes, masks, tags, errors."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from adapter_files import REFCOCO_REFS, write_hostile_refs, write_refclef, write_refcoco

from dataset_adapters import open_dataset
from dataset_adapters.check import check_dataset
from groundbench.errors import DataFormatError


@pytest.fixture
def root(tmp_path):
    return write_refcoco(tmp_path / "data")


def test_splits_and_ids(root):
    ds = open_dataset("refcoco", root)
    assert ds.splits() == ("train", "val", "testA", "testB")
    assert [s.id for s in ds.load_samples("train")] == [
        "refcoco/unc/train/r1/s101",
        "refcoco/unc/train/r1/s102",
    ]
    assert [s.id for s in ds.load_samples("testA")] == [
        "refcoco/unc/testA/r3/s301",
        "refcoco/unc/testA/r3/s302",
    ]


def test_coco_xywh_becomes_xyxy(root):
    (s,) = open_dataset("refcoco", root).load_samples("val")
    # bbox [40.5, 10, 20, 30] → [40.5, 10, 60.5, 40]
    np.testing.assert_array_equal(s.boxes, [[40.5, 10.0, 60.5, 40.0]])
    assert (s.width, s.height) == (64, 48)
    assert s.text == s.phrase == "blue man right" and s.span == (0, 14)
    assert s.image_path.endswith("images/mscoco/images/train2014/COCO_train2014_000000000001.jpg")
    assert s.meta["raw"] == "BLUE MAN RIGHT" and s.meta["ann_id"] == 12


def test_masks_are_compressed_rle(root):
    from pycocotools import mask as mask_utils

    ds = open_dataset("refcoco", root)
    (val,) = ds.load_samples("val")
    # uncompressed RLE [100, 20, rest]: pixels 100..119 in column-major order = column 2, rows 4..23
    assert isinstance(val.mask["counts"], str) and val.mask["size"] == [48, 64]
    m = mask_utils.decode(dict(val.mask, counts=val.mask["counts"].encode()))
    assert m.sum() == 20 and m[4:24, 2].all()
    red_man, _ = ds.load_samples("testA")
    poly = mask_utils.decode(dict(red_man.mask, counts=red_man.mask["counts"].encode()))
    ref = mask_utils.decode(
        mask_utils.merge(mask_utils.frPyObjects([[20, 20, 28, 20, 28, 28, 20, 28]], 48, 64))
    )
    np.testing.assert_array_equal(poly, ref)
    rows, cols = np.nonzero(poly)
    assert rows.min() >= 20 and rows.max() <= 28 and cols.min() >= 20 and cols.max() <= 28


def test_tags(root):
    ds = open_dataset("refcoco", root)
    (val,) = ds.load_samples("val")
    assert val.tags == {
        "category=person", "supercategory=person", "split=val", "attribute", "relational",
        "compositional",  # (blue, man) is not in train's expressions; (red, man) is
        "distractors",  # two persons in image 1
        "off-centre",
    }  # fmt: skip
    red_man, dog = ds.load_samples("testA")
    assert red_man.tags == {
        "category=dog", "supercategory=animal", "split=testA", "attribute", "small", "off-centre"
    }  # fmt: skip
    assert dog.tags == {
        "category=dog",
        "supercategory=animal",
        "split=testA",
        "small",
        "off-centre",
    }
    assert all("compositional" not in s.tags for s in ds.load_samples("train"))
    (big,) = ds.load_samples("testB")
    assert "off-centre" not in big.tags and "small" not in big.tags


def test_captions_carry_no_boxes(root):
    caps = open_dataset("refcoco", root).load_captions("train")
    assert [(c.id, c.text) for c in caps] == [
        ("refcoco/unc/train/r1/s101", "man on the left"),
        ("refcoco/unc/train/r1/s102", "red man"),
    ]
    assert not hasattr(caps[0], "boxes")


@pytest.mark.parametrize(
    ("dataset", "split_by", "prefix"),
    [("refcoco+", None, "refcoco+/unc"), ("refcocog", None, "refcocog/umd"),
     ("refcocog", "google", "refcocog/google")],
)  # fmt: skip
def test_variants(tmp_path, dataset, split_by, prefix):
    root = write_refcoco(tmp_path, dataset, split_by or ("umd" if dataset == "refcocog" else "unc"))
    ds = open_dataset("refcoco", root, dataset=dataset, split_by=split_by)
    assert ds.load_samples("val")[0].id == f"{prefix}/val/r2/s201"


def test_bad_options(tmp_path):
    with pytest.raises(DataFormatError) as err:
        open_dataset("refcoco", tmp_path, dataset="refcoco+", split_by="umd")
    assert str(err.value) == "refcoco adapter: refcoco+ has no split_by 'umd'; use one of unc"
    with pytest.raises(DataFormatError) as err:
        open_dataset("refcoco", tmp_path, dataset="referit")
    assert str(err.value) == (
        "refcoco adapter: unknown dataset 'referit'; use one of refcoco, refcoco+, refcocog, "
        "refclef"
    )
    with pytest.raises(DataFormatError) as err:
        open_dataset("refcoco", tmp_path, image_list="x.txt")
    assert str(err.value) == (
        "refcoco adapter: image_list applies to dataset refclef only, not refcoco"
    )


def test_unknown_split(root):
    with pytest.raises(DataFormatError, match=r"has no split 'test'; its splits are train, val"):
        open_dataset("refcoco", root).load_samples("test")


def test_malformed_instances_json_names_file_and_position(root):
    path = root / "refcoco" / "instances.json"
    path.write_text(path.read_text()[:-40])
    with pytest.raises(DataFormatError) as err:
        open_dataset("refcoco", root).load_samples("val")
    assert str(err.value).startswith(f"{path}: malformed JSON at line 1 column ")
    assert str(err.value).endswith("the file is truncated or corrupt: re-download it")


def test_malformed_ref_names_record(root):
    refs = [dict(r) for r in REFCOCO_REFS]
    del refs[2]["ann_id"]
    path = root / "refcoco" / "refs(unc).p"
    path.write_bytes(pickle.dumps(refs, protocol=2))
    with pytest.raises(DataFormatError) as err:
        open_dataset("refcoco", root).splits()
    assert str(err.value) == (
        f"{path} record 2: missing field 'ann_id' (fields present: ref_id, image_id, "
        "category_id, split, sent_ids, file_name, sentences)"
    )


def test_dangling_annotation_id(root):
    path = root / "refcoco" / "instances.json"
    data = json.loads(path.read_text())
    data["annotations"] = [a for a in data["annotations"] if a["id"] != 12]
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"ref_id 2: ann_id 12 is not in .*instances.json"):
        open_dataset("refcoco", root).load_samples("val")


def test_hostile_refs_refused_through_adapter(tmp_path):
    marker = tmp_path / "ran.txt"
    root = write_hostile_refs(tmp_path / "data", marker)
    with pytest.raises(DataFormatError, match="refused to unpickle"):
        open_dataset("refcoco", root).load_samples("train")
    assert not marker.exists()


def test_check_counts_and_missing_images(root):
    checks = {c.split: c for c in check_dataset(open_dataset("refcoco", root))}
    assert checks["val"].samples == 1 and checks["val"].published == 10834
    assert checks["testA"].published == 5657 and checks["testB"].published == 5095
    assert checks["train"].published == 120624  # the REFER file's train sentences
    assert (checks["train"].samples, checks["train"].refs, checks["train"].captions) == (2, 1, 2)
    assert checks["testB"].missing_images == 1  # image 2 was never written
    assert checks["val"].missing_images == 0
    assert all(c.ok for c in checks.values())


def test_refclef_unc_and_berkeley_with_saiapr_images_and_mg_tags(tmp_path):
    root = write_refclef(tmp_path / "refer")
    ds = open_dataset(
        "refcoco", root, dataset="refclef", image_list="refclef/referit_test_imlist.txt"
    )
    assert ds.splits() == ("train", "test")
    samples = ds.load_samples("test")
    assert [s.id for s in samples] == [
        "refclef/unc/test/r1/s11",
        "refclef/unc/test/r1/s12",
        "refclef/unc/test/r1/s13",
        "refclef/unc/test/r2/s21",
    ]
    sky, again, blue, car = samples
    assert sky.image_path == str(root / "images/saiapr_tc-12/27/images/27040.jpg")
    np.testing.assert_array_equal(sky.boxes, [[0.0, 0.0, 48.0, 10.0]])
    assert sky.mask == {"size": [32, 48], "counts": sky.mask["counts"]}
    assert "category=sky" in sky.tags and "in_image_list" in sky.tags
    assert "repeated_sentence" not in sky.tags and "repeated_sentence" in again.tags
    assert "repeated_sentence" not in blue.tags
    assert "box_outside_image" in car.tags and "box_outside_image" not in sky.tags
    train = ds.load_samples("train")
    assert [s.id for s in train] == ["refclef/unc/train/r3/s31"]
    assert "in_image_list" not in train[0].tags
    berkeley = open_dataset("refcoco", root, dataset="refclef", split_by="berkeley")
    assert berkeley.splits() == ("val", "test")
    assert [s.id for s in berkeley.load_samples("val")] == ["refclef/berkeley/val/r3/s31"]
    assert not any("in_image_list" in s.tags for s in berkeley.load_samples("test"))


def test_referit_test_mg_protocol_selects_as_mg_does(tmp_path):
    from groundbench.probes import select_samples
    from groundbench.protocol import load_protocol

    root = write_refclef(tmp_path / "refer")
    protocol = load_protocol("referit_test.mg")
    ds = open_dataset(protocol.dataset.adapter, root, **dict(protocol.dataset.options))
    kept = select_samples(ds.load_samples(protocol.dataset.split), protocol.select)
    # "sky" once, "blue sky on top"; the car's box leaves the image
    assert [s.id for s in kept] == ["refclef/unc/test/r1/s11", "refclef/unc/test/r1/s13"]


def test_a_bad_image_list_is_named(tmp_path):
    root = write_refclef(tmp_path / "refer")
    (root / "refclef" / "referit_test_imlist.txt").write_text("27040\nabc\n")
    ds = open_dataset(
        "refcoco", root, dataset="refclef", image_list="refclef/referit_test_imlist.txt"
    )
    with pytest.raises(DataFormatError) as err:
        ds.load_samples("test")
    assert str(err.value) == (
        f"image_list {root / 'refclef' / 'referit_test_imlist.txt'}: 'abc' is not an image id; "
        "the file lists one integer id per line"
    )
