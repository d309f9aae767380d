"""The native adapter reads generated datasets and rejects bad records, all listed by line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from dataset_adapters import open_dataset
from groundbench.errors import DataFormatError
from groundbench.synthetic import PROBE_SPLITS, generate

TINY = {"scenes": {"train": 6, "val": 4, "test": 4} | {s: 3 for s in PROBE_SPLITS}}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("native") / "d", TINY, seed=0, progress=False)


@pytest.fixture
def copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "copy"))


def test_reads_every_split_back(root: Path) -> None:
    a = open_dataset("native", root)
    assert set(a.splits()) == {"train", "val", "test", *PROBE_SPLITS}
    for split in a.splits():
        if split == "train":
            caps = a.load_captions(split)
            assert len(caps) == 18 and not hasattr(caps[0], "boxes")
            continue
        samples = a.load_samples(split)
        assert samples and len({s.id for s in samples}) == len(samples)
        for s in samples:
            assert Path(s.image_path).is_file()
            assert (
                (s.boxes[:, :2] >= 0).all()
                and (s.boxes[:, 2] <= s.width).all()
                and (s.boxes[:, 3] <= s.height).all()
            )
            assert s.mask["size"] == [s.height, s.width]
            assert any(t.startswith("shape=") for t in s.tags) and any(
                t.startswith("colour=") for t in s.tags
            )
    para = a.load_samples("paraphrase")
    ids = {s.id for s in para}
    variants = [s for s in para if "paraphrase" in s.tags]
    assert variants and all(s.meta["source_id"] in ids for s in variants)
    # probe splits carry their tag on the focus object
    assert all("occlusion" in s.tags for s in a.load_samples("occlusion"))
    assert all("off-centre" in s.tags for s in a.load_samples("off_centre"))
    assert all("small" in s.tags for s in a.load_samples("small"))
    assert all("compositional" in s.tags for s in a.load_samples("compositional"))
    assert all("relational" in s.tags for s in a.load_samples("relational"))


def test_grounding_split_gives_captions_too(root: Path) -> None:
    caps = open_dataset("native", root).load_captions("val")
    assert [c.text for c in caps] == [
        s.text for s in open_dataset("native", root).load_samples("val")
    ]


def _rewrite(path: Path, edit) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in edit(lines)))


def test_every_bad_record_is_listed_with_its_line(copy: Path) -> None:
    def edit(recs: list[dict]) -> list[dict]:
        recs[0]["boxes"] = [[10, 10, 5, 20]]  # x1 < x0
        recs[1]["span"] = [0, 3]
        del recs[2]["text"]
        recs[3]["image"] = "/abs/x.png"
        recs[4]["mask"] = {"size": [1, 1], "counts": "x"}
        recs[5]["id"] = recs[6]["id"]
        recs[7]["colour"] = "red"
        return recs

    _rewrite(copy / "val.jsonl", edit)
    with (copy / "val.jsonl").open("a") as f:
        f.write("{not json\n")
    with pytest.raises(DataFormatError) as err:
        open_dataset("native", copy).load_samples("val")
    msg = str(err.value)
    assert msg.startswith(
        f"{copy / 'val.jsonl'}: 8 invalid record(s); fix them (see docs/formats.md):"
    )
    for line, what in [
        (1, "boxes[0] = [10, 10, 5, 20] must satisfy 0 <= x0 < x1 <= width (64)"),
        (2, "span [0, 3] selects"),
        (3, "missing field 'text'"),
        (4, "image '/abs/x.png' must be a path relative to the dataset root"),
        (5, "mask must be a COCO RLE"),
        (7, "repeats line 6; ids must be unique"),
        (8, "unknown field(s) ['colour']"),
        (13, "not valid JSON"),
    ]:
        assert f"val.jsonl line {line}" in msg and what in msg, (line, what)
    # line 6 holds the id first: the duplicate on line 7 is the one reported
    assert "val.jsonl line 6" not in msg.replace("repeats line 6", "")


def test_captions_split_may_not_carry_boxes(copy: Path) -> None:
    def edit(recs: list[dict]) -> list[dict]:
        recs[2]["boxes"] = [[0, 0, 4, 4]]
        return recs

    _rewrite(copy / "train.jsonl", edit)
    with pytest.raises(
        DataFormatError,
        match=r"train.jsonl line 3: a captions \(training\) split must not carry boxes",
    ):
        open_dataset("native", copy).load_captions("train")


def test_caption_only_record_in_a_grounding_split_is_an_error(copy: Path) -> None:
    def edit(recs: list[dict]) -> list[dict]:
        for k in ("phrase", "span", "boxes", "mask", "meta"):
            recs[0].pop(k)
        return recs

    _rewrite(copy / "test.jsonl", edit)
    with pytest.raises(
        DataFormatError, match=r"test.jsonl line 1 \(id '[^']+'\): missing field 'phrase'"
    ):
        open_dataset("native", copy).load_samples("test")


def test_split_kind_and_root_errors(copy: Path, tmp_path: Path) -> None:
    a = open_dataset("native", copy)
    with pytest.raises(DataFormatError, match="split 'train' of .* holds captions only"):
        a.load_samples("train")
    with pytest.raises(DataFormatError, match="has no split 'nope'; splits: "):
        a.load_samples("nope")
    (copy / "images" / "val" / "00000.png").unlink()
    with pytest.raises(DataFormatError, match=r"image file 'images/val/00000.png' does not exist"):
        a.load_samples("val")
    with pytest.raises(DataFormatError, match="is not a native dataset root"):
        open_dataset("native", tmp_path / "empty").splits()
    with pytest.raises(DataFormatError, match=r"takes no options, got \['split_by'\]"):
        open_dataset("native", copy, split_by="unc")
    manifest = yaml.safe_load((copy / "dataset.yaml").read_text())
    manifest["splits"]["val"]["kind"] = "boxes"
    (copy / "dataset.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(
        DataFormatError, match=r"splits.val.kind must be one of \['grounding', 'captions'\]"
    ):
        open_dataset("native", copy).splits()
