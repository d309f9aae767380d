"""Visual Genome adapter through its index: splits, boxes, annotation-derived tags."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from adapter_files import CodeRunningPayload, add_vg_orphans, write_mg_splits, write_vg

from dataset_adapters import open_dataset
from dataset_adapters.check import check_dataset
from dataset_adapters.coords import vg_region_to_xyxy
from dataset_adapters.index import build_vg_index
from groundbench.errors import DataFormatError


@pytest.fixture
def root(tmp_path):
    return write_vg(tmp_path / "vg")


def test_vg_xywh_to_xyxy():
    np.testing.assert_array_equal(vg_region_to_xyxy(10, 20, 30, 40), [10.0, 20.0, 40.0, 60.0])
    np.testing.assert_array_equal(vg_region_to_xyxy(0, 0, 5, 5), [0.0, 0.0, 5.0, 5.0])


@pytest.mark.parametrize("version", ["1.0", "1.2"])
def test_test_split_from_image_ids(tmp_path, version):
    root = write_vg(tmp_path / version, version)
    ds = open_dataset("visual_genome", root, test_image_ids=str(root / "test_ids.txt"))
    assert ds.splits() == ("train", "test")
    test = ds.load_samples("test")
    assert [s.id for s in test] == ["vg/test/1/r11", "vg/test/1/r12", "vg/test/3/r31"]
    np.testing.assert_array_equal(test[0].boxes, [[10.0, 20.0, 40.0, 60.0]])
    assert (test[0].width, test[0].height) == (100, 80)
    assert test[0].image_path == str(root / "VG_100K" / "1.jpg")
    (train,) = ds.load_samples("train")
    assert train.id == "vg/train/2/r21" and train.image_path == str(root / "VG_100K_2" / "2.jpg")
    assert (root / "groundbench_index" / "visual_genome.sqlite").is_file()


def test_tags_from_annotations_and_lexicons(root):
    ds = open_dataset("visual_genome", root, test_image_ids="test_ids.txt")  # relative to root
    by_id = {s.id: s for s in ds.load_samples("test")}
    # "riding" is no lexicon word: relational comes from the (man, riding, horse) triple
    assert by_id["vg/test/1/r11"].tags == {"relational", "off-centre", "split=test"}
    assert by_id["vg/test/1/r12"].tags == {
        "attribute", "compositional", "distractors", "small", "off-centre", "split=test"
    }  # fmt: skip
    assert by_id["vg/test/3/r31"].tags == {"relational", "off-centre", "split=test"}


def test_without_optional_files_tags_come_from_lexicons(tmp_path):
    root = write_vg(tmp_path / "vg", optional=False)
    by_id = {s.id: s for s in open_dataset("visual_genome", root).load_samples("all")}
    assert "relational" not in by_id["vg/all/1/r11"].tags
    assert (
        "attribute" in by_id["vg/all/1/r12"].tags
        and "distractors" not in by_id["vg/all/1/r12"].tags
    )


def test_json_list_of_ids_and_captions(root):
    ids = root / "ids.json"
    ids.write_text(json.dumps([2]))
    ds = open_dataset("visual_genome", root, test_image_ids=str(ids))
    assert [c.id for c in ds.load_captions("test")] == ["vg/test/2/r21"]
    assert [c.text for c in ds.load_captions("train")] == [
        "man riding horse",
        "white fence",
        "the sky above",
    ]


def test_no_ids_means_one_split(root):
    ds = open_dataset("visual_genome", root)
    assert ds.splits() == ("all",)
    with pytest.raises(DataFormatError) as err:
        ds.load_samples("test")
    assert str(err.value) == (
        "visual_genome has no split 'test' here; its splits are all (pass test_image_ids for train/test)"
    )


def test_bad_id_list(root):
    (root / "ids.txt").write_text("1\nabc\n")
    with pytest.raises(DataFormatError, match=r"ids.txt: image ids must be integers"):
        open_dataset("visual_genome", root, test_image_ids=str(root / "ids.txt"))


def test_stale_index_is_rebuilt(root):
    ds = open_dataset("visual_genome", root)
    assert len(ds.load_samples("all")) == 4
    data = json.loads((root / "region_descriptions.json").read_text())
    data[1]["regions"].append(
        {
            "region_id": 22,
            "image_id": 2,
            "phrase": "a spoon",
            "x": 1,
            "y": 1,
            "width": 2,
            "height": 2,
        }
    )
    (root / "region_descriptions.json").write_text(json.dumps(data))
    assert [s.id for s in ds.load_samples("all")][-2:] == ["vg/all/2/r22", "vg/all/3/r31"]


def test_check(root):
    (c,) = check_dataset(open_dataset("visual_genome", root))
    assert (c.split, c.samples, c.images, c.missing_images, c.published) == ("all", 4, 3, 2, None)


def test_mg_split_pickle_is_read_directly(root):
    ds = open_dataset("visual_genome", root, test_image_ids="data_splits.pickle")
    assert ds.test_ids == {1, 3}
    assert [s.id for s in ds.load_samples("test")] == [
        "vg/test/1/r11",
        "vg/test/1/r12",
        "vg/test/3/r31",
    ]
    assert [s.id for s in ds.load_samples("train")] == ["vg/train/2/r21"]


def test_mg_split_pickle_ids_as_strings_and_any_name(root):
    # a pickle under another name is recognised by its protocol byte
    with open(root / "splits.bin", "wb") as f:
        pickle.dump({"train": {"2"}, "test": {"1", "3"}}, f, protocol=4)
    assert open_dataset("visual_genome", root, test_image_ids="splits.bin").test_ids == {1, 3}


def test_split_pickle_without_a_test_set(root):
    path = root / "data_splits.pickle"
    with open(path, "wb") as f:
        pickle.dump({"train": {2}, "val": {1}}, f, protocol=2)
    with pytest.raises(DataFormatError) as err:
        open_dataset("visual_genome", root, test_image_ids="data_splits.pickle")
    assert str(err.value) == (
        f"{path}: expected the MG split pickle, a dict whose 'test' key holds a set of image "
        "ids, got a dict with keys 'train', 'val'; pass the MG data_splits.pickle, a text file "
        "of image ids (one per line) or a JSON list"
    )


def test_split_pickle_that_would_run_code_is_refused(root, tmp_path):
    marker = tmp_path / "ran.txt"
    path = root / "data_splits.pickle"
    with open(path, "wb") as f:
        pickle.dump({"train": {2}, "test": CodeRunningPayload(marker)}, f, protocol=2)
    with pytest.raises(DataFormatError) as err:
        open_dataset("visual_genome", root, test_image_ids="data_splits.pickle")
    assert str(err.value) == (
        f"{path}: refused to unpickle: the file asks for the global __builtin__.exec, but "
        "dataset pickles may hold only lists, dicts, tuples, sets, strings and numbers; "
        "re-download the file from its official source"
    )
    assert not marker.exists()


def test_binary_id_file_that_is_not_a_pickle(root):
    path = root / "ids.bin"
    path.write_bytes(b"1\n\xff\xfe\n")
    with pytest.raises(DataFormatError) as err:
        open_dataset("visual_genome", root, test_image_ids="ids.bin")
    assert str(err.value) == (
        f"{path}: not a text list of image ids ('utf-8' codec can't decode byte 0xff in "
        "position 2: invalid start byte); pass the MG data_splits.pickle, a text file of image "
        "ids (one per line) or a JSON list"
    )


@pytest.mark.parametrize("version", ["1.0", "1.2"])
def test_attribute_pairs_of_every_version(tmp_path, version):
    # v1.0 attribute records say object_names, v1.2 names: both give the (white, fence) pair
    root = write_vg(tmp_path / version, version)
    counts = build_vg_index(root, tmp_path / f"{version}.sqlite", progress=False)
    assert counts["attribute_pairs"] == 1


def test_regions_and_test_ids_without_image_metadata_are_reported(root):
    add_vg_orphans(root)
    ds = open_dataset("visual_genome", root, test_image_ids="test_ids.txt")
    assert [s.id for s in ds.load_samples("train")] == ["vg/train/2/r21"]
    assert ds.load_warnings == [
        f"{root / 'region_descriptions.json'}: 2 regions of 1 images that "
        f"{root / 'image_data.json'} does not list are left out (no image size); use the files "
        "of one Visual Genome version"
    ]
    assert len(ds.load_samples("test")) == 3
    assert ds.load_warnings == [
        f"{root / 'test_ids.txt'}: 1 of its 3 test image ids are not in "
        f"{root / 'image_data.json'}, so they have no samples; use the files of one Visual "
        "Genome version"
    ]
    whole = open_dataset("visual_genome", root)
    assert len(whole.load_captions("all")) == 4
    assert whole.load_warnings[0].startswith(
        f"{root / 'region_descriptions.json'}: 2 regions of 1 images"
    )


def test_mg_split_pickle_fixture_round_trips(tmp_path):
    path = write_mg_splits(tmp_path / "data_splits.pickle", train={5, 6}, test={7})
    with open(path, "rb") as f:
        assert f.read(2) == b"\x80\x02"
    with open(path, "rb") as f:
        assert pickle.load(f) == {"train": {5, 6}, "test": {7}}


def _read_only(root, monkeypatch):
    """Make writes under ``root`` fail as on a read-only mount (tests run as root, for whom
    permission bits do not stop writes)."""
    import errno

    import dataset_adapters.visual_genome as vg

    real = vg.build_vg_index

    def build(src, index_path, **kwargs):
        if str(index_path).startswith(str(root)):
            raise OSError(errno.EROFS, "Read-only file system", str(index_path))
        return real(src, index_path, **kwargs)

    monkeypatch.setattr(vg, "build_vg_index", build)


def test_a_read_only_root_indexes_into_the_cache(tmp_path, monkeypatch):
    from dataset_adapters.visual_genome import cache_index_path

    root = write_vg(tmp_path / "vg")
    monkeypatch.setenv("GROUNDBENCH_CACHE", str(tmp_path / "cache"))
    _read_only(root, monkeypatch)
    ds = open_dataset("visual_genome", root)
    assert len(ds.load_samples("all")) == 4
    cached = cache_index_path(root)
    assert ds.index_path == cached and cached.parent == tmp_path / "cache" / "index"
    assert not (root / "groundbench_index").exists()
    again = open_dataset("visual_genome", root)  # finds the cached index, builds nothing
    monkeypatch.setattr(
        "dataset_adapters.visual_genome.build_vg_index",
        lambda *a, **k: (_ for _ in ()).throw(AssertionError("rebuilt")),
    )
    assert len(again.load_samples("all")) == 4


def test_an_unwritable_index_path_is_named(tmp_path, monkeypatch):
    root = write_vg(tmp_path / "vg")
    _read_only(root, monkeypatch)
    ds = open_dataset("visual_genome", root, index_path="idx/vg.sqlite")
    with pytest.raises(DataFormatError) as err:
        ds.load_samples("all")
    assert str(err.value) == (
        f"cannot write the Visual Genome index {root / 'idx' / 'vg.sqlite'} (Read-only file "
        "system); pass -o index_path=PATH (or dataset.options.index_path) naming a writable file"
    )
