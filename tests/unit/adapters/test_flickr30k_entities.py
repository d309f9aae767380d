"""Flickr30k Entities adapter: markup parsing, 1-based boxes, box modes, tags, errors."""

from __future__ import annotations

import numpy as np
import pytest
from adapter_files import FLICKR_UNRELATED, write_flickr

from dataset_adapters import open_dataset
from dataset_adapters.check import check_dataset
from dataset_adapters.coords import corners_1based_to_xyxy
from dataset_adapters.flickr30k_entities import parse_sentence, read_unrelated_captions
from groundbench.errors import DataFormatError
from groundbench.types import rasterise_boxes


@pytest.fixture
def root(tmp_path):
    return write_flickr(tmp_path / "f30k")


def test_corners_1based_inclusive_to_xyxy():
    # columns 1..10 (1-based, inclusive) are 0-based columns 0..9: continuous [0, 10]
    np.testing.assert_array_equal(corners_1based_to_xyxy([1, 1, 10, 20]), [0.0, 0.0, 10.0, 20.0])
    np.testing.assert_array_equal(
        corners_1based_to_xyxy([[31, 11, 40, 30]]), [[30.0, 10.0, 40.0, 30.0]]
    )
    # the converted box covers exactly the annotated pixels by the pixel-centre rule
    import torch

    mask = rasterise_boxes(
        torch.tensor([[corners_1based_to_xyxy([3, 2, 5, 4]).tolist()]]), torch.tensor([1]), 6, 8
    )
    rows, cols = np.nonzero(mask[0].numpy())
    assert (rows.min() + 1, cols.min() + 1, rows.max() + 1, cols.max() + 1) == (2, 3, 4, 5)


def test_parse_sentence_spans_and_types():
    text, phrases = parse_sentence("[/EN#7/animals/other A   dog]  runs .", "f")
    assert text == "A dog runs ."  # whitespace normalised to single spaces
    (p,) = phrases
    assert (p.entity_id, p.types, p.text, text[p.span[0] : p.span[1]]) == (
        "7",
        ("animals", "other"),
        "A dog",
        "A dog",
    )


def test_unbalanced_markup_is_refused():
    with pytest.raises(DataFormatError) as err:
        parse_sentence("[/EN#1/people A man rides .", "Sentences/1.txt line 1")
    assert str(err.value) == (
        "Sentences/1.txt line 1: unbalanced or malformed phrase markup in '[/EN#1/people A man "
        "rides .'; expected [/EN#<id>/<type> words]"
    )


def test_samples_ids_boxes_any_mode(root):
    ds = open_dataset("flickr30k_entities", root)
    assert ds.splits() == ("train", "val", "test")
    samples = ds.load_samples("test")
    assert [s.id for s in samples] == [
        "flickr30k/test/1000/s0/p1", "flickr30k/test/1000/s0/p2", "flickr30k/test/1000/s0/p3",
        "flickr30k/test/1000/s1/p1", "flickr30k/test/1000/s1/p3", "flickr30k/test/1000/s1/p4",
        "flickr30k/test/1000/s2/p1", "flickr30k/test/1000/s2/p1_2",
        "flickr30k/test/4000/s0/p20", "flickr30k/test/4000/s0/p21", "flickr30k/test/4000/s0/p22",
        "flickr30k/test/4000/s1/p20", "flickr30k/test/4000/s1/p23", "flickr30k/test/4000/s2/p24",
    ]  # fmt: skip
    by_id = {s.id: s for s in samples}
    man = by_id["flickr30k/test/1000/s0/p1"]
    assert man.text == "A man in a red shirt stands left of a woman ." and man.phrase == "A man"
    np.testing.assert_array_equal(man.boxes, [[0, 0, 10, 20], [30, 10, 40, 30]])
    shirt = by_id["flickr30k/test/1000/s0/p2"]
    assert shirt.span == (9, 20) and shirt.phrase == "a red shirt"
    np.testing.assert_array_equal(shirt.boxes, [[4, 4, 8, 8]])  # box shared by entities 2 and 9
    street = by_id["flickr30k/test/1000/s1/p4"]
    np.testing.assert_array_equal(street.boxes, [[0, 0, 100, 80]])  # scene → whole image
    assert by_id["flickr30k/test/1000/s2/p1_2"].phrase == "his friend"
    assert ds.skipped == {"notvisual": 1}


def test_merged_mode_encloses_all_boxes(root):
    ds = open_dataset("flickr30k_entities", root, box_mode="merged")
    man = ds.load_samples("test")[0]
    np.testing.assert_array_equal(man.boxes, [[0, 0, 40, 30]])


def test_bad_box_mode(root):
    with pytest.raises(DataFormatError) as err:
        open_dataset("flickr30k_entities", root, box_mode="union")
    assert (
        str(err.value) == "flickr30k_entities adapter: unknown box_mode 'union'; use any or merged"
    )


def test_tags(root):
    by_id = {s.id: s for s in open_dataset("flickr30k_entities", root).load_samples("test")}
    assert by_id["flickr30k/test/1000/s0/p1"].tags == {
        "people",
        "split=test",
        "distractors",
        "off-centre",
    }
    # (red, shirt) never occurs in train; closed box [50, 80] contains the centre x = 50
    assert by_id["flickr30k/test/1000/s0/p2"].tags == {
        "clothing", "split=test", "attribute", "compositional", "small", "off-centre"
    }  # fmt: skip
    assert by_id["flickr30k/test/1000/s0/p3"].tags == {"people", "split=test", "distractors"}
    assert by_id["flickr30k/test/1000/s1/p4"].tags == {"scene", "whole_image", "split=test"}
    (dog,) = open_dataset("flickr30k_entities", root).load_samples("train")
    assert {"animals", "other"} <= dog.tags and "compositional" not in dog.tags


def test_scene_type_and_whole_image_are_separate_tags(root):
    by_id = {s.id: s for s in open_dataset("flickr30k_entities", root).load_samples("test")}
    stage = by_id["flickr30k/test/4000/s0/p21"]  # entity type scene, with a real box
    np.testing.assert_array_equal(stage.boxes, [[20, 20, 60, 40]])
    assert "scene" in stage.tags and "whole_image" not in stage.tags
    park = by_id["flickr30k/test/4000/s0/p22"]  # scene flag, no box: the whole image
    np.testing.assert_array_equal(park.boxes, [[0, 0, 60, 40]])
    assert {"scene", "whole_image"} <= park.tags
    # the standard boxed-phrase set: every phrase whose entity has a box
    boxed = [i for i, s in by_id.items() if "whole_image" not in s.tags]
    assert len(by_id) == 14 and len(boxed) == 12


def test_distractors_use_every_type_of_a_chain(root):
    # chain 20 is "people" in caption 0 and "other" in caption 1: with chain 23 that makes two
    # boxed people, whichever caption is read last
    by_id = {s.id: s for s in open_dataset("flickr30k_entities", root).load_samples("test")}
    assert "distractors" in by_id["flickr30k/test/4000/s1/p23"].tags
    assert "distractors" in by_id["flickr30k/test/4000/s0/p20"].tags
    assert "distractors" not in by_id["flickr30k/test/4000/s0/p21"].tags  # the only scene box


def test_unrelated_captions_leave_training_and_tag_phrases(root):
    ds = open_dataset("flickr30k_entities", root)
    caps = ds.load_captions("test")
    assert [c.id for c in caps] == [
        "flickr30k/test/1000/s0",
        "flickr30k/test/1000/s1",
        "flickr30k/test/1000/s2",
        "flickr30k/test/4000/s0",
        "flickr30k/test/4000/s1",
    ]
    assert caps[2].text == "Someone watches him and his friend ."
    assert ds.skipped == {"unrelated_caption": 1}
    water = {s.id: s for s in ds.load_samples("test")}["flickr30k/test/4000/s2/p24"]
    assert "unrelated_caption" in water.tags


def test_read_unrelated_captions(tmp_path):
    path = tmp_path / "UNRELATED_CAPTIONS"
    path.write_text(FLICKR_UNRELATED + "129602216 5\n")
    assert read_unrelated_captions(path) == {("4000", 2), ("129602216", 4)}
    assert read_unrelated_captions(tmp_path / "absent") == frozenset()
    path.write_text("4000 0\n")
    with pytest.raises(DataFormatError) as err:
        read_unrelated_captions(path)
    assert str(err.value) == (
        f"{path} line 1: expected '<image_id> <sentence number>' (integers, the number "
        "1-based), got '4000 0'; re-download the file from the Flickr30k Entities repository"
    )


def test_truncated_xml_names_the_file(root):
    path = root / "Annotations" / "1000.xml"
    path.write_text(path.read_text()[:-30])
    with pytest.raises(DataFormatError) as err:
        open_dataset("flickr30k_entities", root).load_samples("test")
    assert str(err.value).startswith(f"{path}: malformed XML (")
    assert str(err.value).endswith("the file is truncated or corrupt: re-download it")


def test_missing_box_coordinate(root):
    path = root / "Annotations" / "2000.xml"
    path.write_text(path.read_text().replace("<ymax>40</ymax>", ""))
    with pytest.raises(DataFormatError) as err:
        open_dataset("flickr30k_entities", root).load_samples("train")
    assert str(err.value) == f"{path}: <object> 0 <bndbox> needs a numeric <ymax>"


def test_check_reports_counts_and_missing_images(root):
    checks = {c.split: c for c in check_dataset(open_dataset("flickr30k_entities", root))}
    assert (checks["test"].images, checks["test"].published, checks["test"].unit) == (
        2,
        1000,
        "images",
    )
    assert checks["val"].missing_images == 1 and checks["test"].missing_images == 0
    assert checks["val"].examples["missing_images"] == [str(root / "flickr30k-images" / "3000.jpg")]
    assert all(c.ok for c in checks.values())
