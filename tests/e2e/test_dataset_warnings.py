"""What the adapter left out of the data files reaches the report's dataset section.

A Visual Genome root whose region_descriptions.json has regions of an image that
image_data.json does not list, and whose test id list names images without metadata, is
evaluated end to end through the CLI: report.json and report.md both say what was left out,
the log says it once, and a rerun writes the same bytes.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

from adapter_files import add_vg_orphans, write_flickr, write_vg  # noqa: E402

from groundbench.cli import main  # noqa: E402
from groundbench.report import render_markdown  # noqa: E402

pytestmark = pytest.mark.slow

REGIONS = (
    "region_descriptions.json: 2 regions of 1 images that image_data.json does not list are "
    "left out (no image size); use the files of one Visual Genome version"
)
TEST_IDS = (
    "test_ids.txt: 2 of its 4 test image ids are not in image_data.json, so they have no "
    "samples; use the files of one Visual Genome version"
)


def _evaluate(protocol: str, root: Path, out: Path, *options: str) -> None:
    args = ["evaluate", "--protocol", protocol, "--method", "centre_prior", "--out", str(out)]
    args += ["--data-root", str(root), *options]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture
def vg_root(tmp_path) -> Path:
    root = add_vg_orphans(write_vg(tmp_path / "vg"))
    # image 9 (whose regions image_data.json lacks) and image 8 (no metadata) are test images
    (root / "test_ids.txt").write_text("1\n3\n8\n9\n")
    return root


def test_visual_genome_orphans_are_in_report_json_and_md(vg_root, tmp_path, caplog):
    out = tmp_path / "report"
    with caplog.at_level(logging.WARNING):
        _evaluate(
            "visual_genome_test.mg",
            vg_root,
            out,
            "--set",
            "dataset.options.test_image_ids=test_ids.txt",
        )
    dataset = json.loads((out / "report.json").read_text(encoding="utf-8"))["dataset"]
    assert dataset["warnings"] == [REGIONS, TEST_IDS]
    assert dataset["skipped"] == {}

    md = (out / "report.md").read_text(encoding="utf-8")
    head = md.split("\n## ")[0].splitlines()
    at = head.index(next(line for line in head if line.startswith("- dataset: ")))
    assert head[at + 1 : at + 3] == [f"  - warning: {REGIONS}", f"  - warning: {TEST_IDS}"]
    assert head[at + 3].startswith("- method: ")

    # logged once each, by the adapter as it loads (with the full paths)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("2 regions of 1 images" in m for m in logged) == 1
    assert sum("2 of its 4 test image ids" in m for m in logged) == 1


def test_rerun_writes_the_same_report_bytes(vg_root, tmp_path):
    options = ("--set", "dataset.options.test_image_ids=test_ids.txt", "--no-resume")
    first, second = tmp_path / "first", tmp_path / "second"
    _evaluate("visual_genome_test.mg", vg_root, first, *options)
    _evaluate("visual_genome_test.mg", vg_root, second, *options)

    def without_created_at(report_dir: Path) -> bytes:
        data = (report_dir / "report.json").read_bytes()
        return re.sub(rb'"created_at": "[^"]*"', b"", data)

    assert without_created_at(first) == without_created_at(second)
    assert (first / "report.md").read_bytes() == (second / "report.md").read_bytes()


def test_warnings_do_not_depend_on_where_the_data_lives(tmp_path):
    # the same files in two folders: the dataset section names paths relative to the root
    reports = []
    for name in ("a", "deeper/b"):
        root = add_vg_orphans(write_vg(tmp_path / name / "vg"))
        (root / "test_ids.txt").write_text("1\n3\n8\n9\n")
        out = tmp_path / name / "report"
        _evaluate(
            "visual_genome_test.mg",
            root,
            out,
            "--set",
            "dataset.options.test_image_ids=test_ids.txt",
        )
        reports.append(json.loads((out / "report.json").read_text(encoding="utf-8"))["dataset"])
    assert reports[0] == reports[1]
    assert str(tmp_path) not in json.dumps(reports[0])


def test_flickr_phrases_without_boxes_are_counted(tmp_path):
    root = write_flickr(tmp_path / "flickr")
    out = tmp_path / "report"
    _evaluate("flickr30k_test.albef", root, out)
    dataset = json.loads((out / "report.json").read_text(encoding="utf-8"))["dataset"]
    assert dataset["warnings"] == []
    skipped = dataset["skipped"]
    assert skipped and all(isinstance(n, int) and n > 0 for n in skipped.values())
    assert list(skipped) == sorted(skipped)
    md = (out / "report.md").read_text(encoding="utf-8")
    counts = ", ".join(f"{reason} {n}" for reason, n in skipped.items())
    assert f"\n  - left out by the adapter: {counts}\n" in md


def test_clean_dataset_records_empty_warnings_and_no_md_lines(tmp_path):
    root = write_vg(tmp_path / "vg")
    out = tmp_path / "report"
    _evaluate("visual_genome_test.mg", root, out)
    dataset = json.loads((out / "report.json").read_text(encoding="utf-8"))["dataset"]
    assert (dataset["warnings"], dataset["skipped"]) == ([], {})
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "\n  - " not in md


def test_warning_text_is_escaped_in_report_md():
    report = {
        "protocol": {
            "name": "p",
            "id": "0" * 12,
            "hash": "0" * 64,
            "canonical": {"bootstrap": {"resamples": 10, "seed": 0}},
        },
        "dataset": {
            "adapter": "plugin",
            "name": "d",
            "split": "test",
            "n_samples": 1,
            "fingerprint": "f" * 64,
            "warnings": ["<img src=x> [a](javascript:b)\n# heading | cell"],
            "skipped": {"*odd*": 2},
        },
        "method": {"spec": "m", "name": "m", "supervision": "training-free", "fingerprint": "0"},
        "metrics": {},
    }
    md = render_markdown(report, []).decode("utf-8")
    assert "  - warning: &lt;img src=x&gt; \\[a\\](javascript:b) # heading \\| cell\n" in md
    assert "  - left out by the adapter: \\*odd\\* 2\n" in md
