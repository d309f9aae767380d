"""COCO Captions: captions_<split>.json → CaptionRecords; malformed files named."""

from __future__ import annotations

import json
import re

import pytest
from adapter_files import write_image

from dataset_adapters import open_dataset
from groundbench.errors import DataFormatError

CAPTIONS = {
    "info": {},
    "images": [
        {"id": 9, "file_name": "000000000009.jpg", "width": 40, "height": 30},
        {"id": 25, "file_name": "000000000025.jpg", "width": 20, "height": 20},
    ],
    "annotations": [
        {"id": 101, "image_id": 9, "caption": "A plate of food on a table. "},
        {"id": 102, "image_id": 25, "caption": "A giraffe eating leaves."},
        {"id": 103, "image_id": 9, "caption": "Broccoli next to a sandwich."},
    ],
}


def _write(root, data=CAPTIONS, split="train2017"):
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    path = root / "annotations" / f"captions_{split}.json"
    path.write_text(json.dumps(data))
    for image in CAPTIONS["images"]:
        write_image(root / split / image["file_name"], image["width"], image["height"])
    return path


def test_captions_become_records_in_file_order(tmp_path):
    _write(tmp_path)
    ds = open_dataset("coco_captions", tmp_path)
    assert ds.splits() == ("train2017",)
    records = ds.load_captions("train2017")
    assert [(r.id, r.text, r.width, r.height) for r in records] == [
        ("coco/train2017/9/c101", "A plate of food on a table.", 40, 30),
        ("coco/train2017/25/c102", "A giraffe eating leaves.", 20, 20),
        ("coco/train2017/9/c103", "Broccoli next to a sandwich.", 40, 30),
    ]
    assert records[0].image_path == str(tmp_path / "train2017" / "000000000009.jpg")
    assert records[0].load_image().shape == (30, 40, 3)


def test_there_is_nothing_to_evaluate(tmp_path):
    _write(tmp_path)
    with pytest.raises(DataFormatError, match="COCO Captions have no phrase boxes"):
        open_dataset("coco_captions", tmp_path).load_samples("train2017")


def test_a_missing_split_names_the_file_and_the_splits_found(tmp_path):
    _write(tmp_path)
    with pytest.raises(DataFormatError) as err:
        open_dataset("coco_captions", tmp_path).load_captions("val2017")
    assert str(err.value) == (
        f"{tmp_path}/annotations/captions_val2017.json does not exist (splits found: "
        "train2017); put the COCO captions file there (annotations_trainval2017.zip holds "
        "captions_train2017.json)"
    )


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("images"), ": missing field 'images'"),
        (lambda d: d["images"][1].pop("width"), " images[1]: missing field 'width'"),
        (lambda d: d["annotations"][2].update(caption=7), " annotations[2]: field 'caption' must be str"),
        (lambda d: d["annotations"][0].update(image_id=77),
         " annotations[0]: image_id 77 is not among the file's images"),
    ],
)  # fmt: skip
def test_malformed_files_are_named_with_the_record(tmp_path, edit, message):
    data = json.loads(json.dumps(CAPTIONS))
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(DataFormatError, match=re.escape(f"{path}{message}")):
        open_dataset("coco_captions", tmp_path).load_captions("train2017")
