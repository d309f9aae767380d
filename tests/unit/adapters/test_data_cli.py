"""``groundbench data check`` and ``groundbench data index`` through the CLI."""

from __future__ import annotations

import json

import pytest
from adapter_files import add_vg_orphans, write_flickr, write_mdetr, write_refcoco, write_vg
from click.testing import CliRunner
from PIL import Image

from dataset_adapters.base import DatasetAdapter
from dataset_adapters.check import check_dataset
from groundbench.cli import main
from groundbench.errors import DataFormatError
from groundbench.types import CaptionRecord


def test_check_table_lists_counts_and_missing_images(tmp_path):
    root = write_flickr(tmp_path / "f30k")
    result = CliRunner().invoke(main, ["data", "check", "flickr30k_entities", "--root", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "flickr30k_entities: OK"
    assert lines[1].split()[:6] == ["split", "samples", "refs", "captions", "images", "published"]
    # 14 phrases, no refs, 5 training captions (one of the 6 is unrelated to its image)
    assert lines[4].split() == [
        "test", "14", "-", "5", "2", "1000", "images", "(!)", "0", "0", "0", "0", "0"
    ]  # fmt: skip
    assert f"[val] missing images: {root / 'flickr30k-images' / '3000.jpg'}" in lines
    assert "[test] not samples by design: notvisual 1" in lines
    as_json = CliRunner().invoke(
        main, ["data", "check", "flickr30k_entities", "--root", str(root), "--json"]
    )
    test = [c for c in json.loads(as_json.stdout)["splits"] if c["split"] == "test"][0]
    assert (test["skipped"], test["captions"], test["refs"]) == ({"notvisual": 1}, 5, None)


def test_check_compares_each_shipped_protocol_with_its_expected_count(tmp_path):
    root = write_flickr(tmp_path / "f30k")
    result = CliRunner().invoke(main, ["data", "check", "flickr30k_entities", "--root", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    source = (
        "Flickr30k Entities test, phrases whose entity has a box (Plummer et al., IJCV 2017; "
        "the set MDETR's flickr_eval.py evaluates)"
    )
    i = lines.index("expected on the full dataset (docs/adapters.md) vs found here:")
    assert lines[i + 1].split() == ["protocol", "split", "expected", "found", "source"]
    assert lines[i + 2].split(maxsplit=6) == [
        "flickr30k_test.albef", "test", "14481", "samples", "12", "samples", "(!)  " + source
    ]  # fmt: skip
    assert lines[i + 3].split()[:5] == ["flickr30k_test.mg", "test", "-", "9", "samples"]
    assert lines[i + 4].split()[:7] == [
        "flickr30k_test.zhang2016", "test", "14481", "samples", "12", "samples", "(!)"
    ]  # fmt: skip


def test_check_compares_only_the_protocols_of_the_chosen_data(tmp_path):
    root = write_refcoco(tmp_path / "data", "refcocog", "umd")
    result = CliRunner().invoke(
        main, ["data", "check", "refcoco", "--root", str(root), "-o", "dataset=refcocog"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    i = lines.index("expected on the full dataset (docs/adapters.md) vs found here:")
    assert [line.split()[:6] for line in lines[i + 2 : i + 4]] == [
        ["refcocog_val.albef", "val", "4896", "samples", "1", "samples"],
        ["refcocog_test.albef", "test", "9602", "samples", "3", "samples"],
    ]
    assert lines[i + 4].startswith("[")  # no RefCOCO or RefCOCO+ protocol follows


def test_check_json_has_expected_counts_and_warnings(tmp_path):
    root = add_vg_orphans(write_vg(tmp_path / "vg"))
    result = CliRunner().invoke(
        main,
        ["data", "check", "visual_genome", "--root", str(root), "-o",
         "test_image_ids=test_ids.txt", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    train, test = json.loads(result.stdout)["splits"]
    assert train["warnings"] == [
        f"{root / 'region_descriptions.json'}: 2 regions of 1 images that "
        f"{root / 'image_data.json'} does not list are left out (no image size); use the files "
        "of one Visual Genome version"
    ]
    assert test["expected"] == [
        {
            "name": "visual_genome_test.mg",
            "expected": 17478,
            "found": 2,
            "unit": "images",
            "source": "the 'test' set of the MG authors' data_splits.pickle (Akbari et al. "
            "2019); no published count of its regions",
            "differs": True,
        }
    ]


def test_check_table_says_ok_with_warnings(tmp_path):
    root = add_vg_orphans(write_vg(tmp_path / "vg"))
    result = CliRunner().invoke(
        main,
        ["data", "check", "visual_genome", "--root", str(root), "-o",
         "test_image_ids=test_ids.txt"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "visual_genome: OK (2 warnings below)"
    assert (
        f"[test] warning: {root / 'test_ids.txt'}: 1 of its 3 test image ids are not in "
        f"{root / 'image_data.json'}, so they have no samples; use the files of one Visual "
        "Genome version"
    ) in lines


def test_one_broken_file_of_every_split_is_reported_once(tmp_path):
    root = write_refcoco(tmp_path / "data")
    instances = root / "refcoco" / "instances.json"
    instances.write_text(instances.read_text()[:40])
    result = CliRunner().invoke(main, ["data", "check", "refcoco", "--root", str(root)])
    assert result.exit_code == 1
    malformed = [line for line in result.output.splitlines() if "malformed" in line]
    assert malformed == [
        f"[train, val, testA, testB] malformed: {instances}: malformed JSON at line 1 column "
        "36 (Unterminated string starting at); the file is truncated or corrupt: re-download it"
    ]


def test_check_json_with_options(tmp_path):
    root = write_refcoco(tmp_path / "data", "refcocog", "umd")
    result = CliRunner().invoke(
        main,
        [
            "data",
            "check",
            "refcoco",
            "--root",
            str(root),
            "-o",
            "dataset=refcocog",
            "--split",
            "val",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    (val,) = json.loads(result.output)["splits"]
    assert (val["split"], val["samples"], val["published"], val["ok"]) == ("val", 1, 4896, True)


def test_check_malformed_file_exits_1_naming_it(tmp_path):
    root = write_flickr(tmp_path / "f30k")
    xml = root / "Annotations" / "1000.xml"
    xml.write_text(xml.read_text()[:50])
    result = CliRunner().invoke(main, ["data", "check", "flickr30k_entities", "--root", str(root)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == "flickr30k_entities: PROBLEMS FOUND"
    assert f"[test] malformed: {xml}: malformed XML (" in result.output


def test_bad_option_syntax(tmp_path):
    result = CliRunner().invoke(
        main, ["data", "check", "refcoco", "--root", str(tmp_path), "-o", "dataset"]
    )
    assert result.exit_code == 2 and "'dataset' is not KEY=VALUE" in result.output


def test_index_builds_vg_and_refuses_others(tmp_path):
    root = write_vg(tmp_path / "vg")
    result = CliRunner().invoke(
        main, ["data", "index", "visual_genome", "--root", str(root), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    index = root / "groundbench_index" / "visual_genome.sqlite"
    assert result.output == (
        f"wrote {index}: images 3, regions 4, object_names 4, attribute_pairs 1, relation_triples 1, phrase_pairs 1\n"
    )
    result = CliRunner().invoke(main, ["data", "index", "refcoco", "--root", str(root)])
    assert result.exit_code == 1
    assert "adapter 'refcoco' reads its files directly and has no index to build" in result.output


class _CaptionsOnly(DatasetAdapter):
    """An adapter whose ``kind`` marks a captions-only split, as the native format does."""

    name = "captions_only"

    def splits(self):
        return ("train",)

    def kind(self, split):
        return "captions"

    def load_samples(self, split):
        raise DataFormatError("train holds captions only")

    def load_captions(self, split):
        path = str(self.root / "a.jpg")
        return [CaptionRecord(f"c/{i}", path, 4, 4, "a cat") for i in (0, 1, 1)]


def test_check_counts_captions_of_a_captions_only_split(tmp_path):
    (c,) = check_dataset(_CaptionsOnly(tmp_path))
    assert (c.samples, c.captions, c.images, c.missing_images, c.duplicate_ids) == (0, 3, 1, 1, 1)
    assert c.error is None and not c.ok and c.examples["duplicate_ids"] == ["c/1"]


def _native(root):
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (40, 32)).save(root / "images" / "a.png")
    rec = {"id": "n/0", "image": "images/a.png", "width": 40, "height": 32, "text": "a cup",
           "phrase": "cup", "span": [2, 5], "boxes": [[1.0, 1.0, 9.0, 9.0]]}  # fmt: skip
    (root / "test.jsonl").write_text(json.dumps(rec) + "\n")
    (root / "dataset.yaml").write_text(
        "name: n\nformat_version: 1\nsplits:\n  test: {kind: grounding}\n"
    )
    return root


@pytest.mark.parametrize(
    "adapter, write",
    [
        ("native", _native),
        ("refcoco", write_refcoco),
        ("flickr30k_entities", write_flickr),
        ("visual_genome", write_vg),
        ("mdetr", write_mdetr),
    ],
)
def test_check_finds_images_resized_behind_their_records_for_every_adapter(
    tmp_path, adapter, write
):
    root = write(tmp_path / adapter)
    image = sorted(p for p in root.rglob("*") if p.suffix in (".jpg", ".png"))[0]
    with Image.open(image) as im:
        (w, h), fmt = im.size, im.format
        im.resize((2 * w, 2 * h)).save(image, format=fmt)
    result = CliRunner().invoke(main, ["data", "check", adapter, "--root", str(root)])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[0] == f"{adapter}: PROBLEMS FOUND"
    found = [line for line in result.stdout.splitlines() if "] size mismatches: " in line]
    assert found and f"record {w}×{h}, image {2 * w}×{2 * h}" in found[0], result.output
