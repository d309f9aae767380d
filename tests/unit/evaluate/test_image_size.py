"""An image whose real size differs from its record's is refused, or counted undefined: never scored silently."""

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from groundbench.cli import main
from groundbench.errors import DataFormatError
from groundbench.evaluate import evaluate
from groundbench.leaderboard.validate import SubmissionError, validate_report_dir
from groundbench.protocol import protocol_hash


def _resize(path, size):
    with Image.open(path) as im:
        im.resize(size).save(path)


@pytest.mark.parametrize(
    "method", ["centre_prior", "plugin:tests.unit.evaluate.test_image_size:grey"]
)
def test_resized_image_is_refused_and_finished_records_are_kept(tiny, tmp_path, method):
    protocol, root = tiny
    image = root / "images" / "1.png"
    _resize(image, (80, 64))  # the records say 40×32
    out = tmp_path / "out"
    with pytest.raises(DataFormatError) as err:
        evaluate(str(protocol), method, out_dir=out, data_root=root, batch_size=1, progress=False)
    assert str(err.value) == (
        f"image {image} is 80×64 pixels but sample 'tiny/001' records 40×32, so its boxes "
        "and the map would be in different frames; restore the original images or correct the "
        "record (`groundbench data check` lists every such record)"
    )
    cached = list((tmp_path / "out.partial").glob("records.*.jsonl"))
    assert [p.read_text().count("\n") for p in cached] == [1]  # tiny/000, scored before it
    assert not out.exists()


def grey(samples, images):
    """A plugin that reads pixels: one grey map per image, at the image's size."""
    import torch

    from groundbench.types import RawMaps

    maps = [torch.full(img.shape[:2], float(img.mean())) for img in images]
    return RawMaps(tuple(s.id for s in samples), tuple(maps))


grey.supervision = "training-free"


LENIENT = ("dataset.on_size_mismatch=undefined",)
RESIZED = ["tiny/001", "tiny/004"]  # the samples on image 1


def _rows(out, drop=()):
    lines = (out / "samples.csv").read_text().splitlines()
    return [line for line in lines if line.split(",")[0] not in drop]


@pytest.mark.parametrize(
    "method", ["centre_prior", "plugin:tests.unit.evaluate.test_image_size:grey"]
)
def test_under_undefined_a_resized_image_is_counted_loudly_and_the_rest_scored_alike(
    tiny, tmp_path, method, caplog
):
    protocol, root = tiny
    clean = evaluate(
        str(protocol), method, out_dir=tmp_path / "clean", data_root=root, progress=False
    )
    _resize(root / "images" / "1.png", (80, 64))  # the records say 40×32
    with caplog.at_level("WARNING", logger="groundbench.evaluate"):
        result = evaluate(
            str(protocol),
            method,
            out_dir=tmp_path / "out",
            data_root=root,
            batch_size=2,
            overrides=LENIENT,
            progress=False,
        )
    report = result.report
    assert report["protocol"]["canonical"]["dataset"]["on_size_mismatch"] == "undefined"
    assert report["dataset"]["size_mismatches"] == {"count": 2, "examples": RESIZED}
    for key, by_tag in report["metrics"].items():
        assert by_tag["all"]["undefined"] == {"image_size_mismatch": 2}, key
        assert by_tag["all"]["n"] == 6 and by_tag["all"]["n_defined"] == 4
    rows = _rows(tmp_path / "out")
    assert [r.split(",")[0] for r in rows[1:]] == [f"tiny/{k:03d}" for k in range(6)]
    for row in rows[1:]:
        cells = row.split(",")
        if cells[0] in RESIZED:  # no value, every metric says why
            assert cells[2:6] == ["", "", "image_size_mismatch", "image_size_mismatch"]
    # the other samples score exactly as on the untouched data
    assert _rows(tmp_path / "out", RESIZED) == _rows(tmp_path / "clean", RESIZED)
    assert clean.report["dataset"].get("size_mismatches") is None
    assert caplog.records[-1].getMessage() == (
        "2 of 6 samples were not scored: their image's real size differs from their record's, "
        "so they count as undefined (image_size_mismatch) under dataset.on_size_mismatch: "
        "undefined (first: 'tiny/001', 'tiny/004'); `groundbench data check` lists every such "
        "record"
    )
    md = (tmp_path / "out" / "report.md").read_text()
    assert (
        "  - warning: 2 samples not scored, undefined as `image_size_mismatch`: their image's "
        "real size differs from their record's (`dataset.on_size_mismatch: undefined`; first: "
        "`tiny/001`, `tiny/004`)"
    ) in md
    assert "undefined=2 (image_size_mismatch: 2)" in md
    assert validate_report_dir(tmp_path / "out").report == report


def test_the_set_override_works_from_the_command_line(tiny, tmp_path):
    protocol, root = tiny
    _resize(root / "images" / "1.png", (80, 64))
    args = ["evaluate", "--protocol", str(protocol), "--method", "centre_prior"]
    args += ["--data-root", str(root)]
    refused = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a")])
    assert refused.exit_code == 1 and "is 80×64 pixels but sample 'tiny/001'" in refused.output
    result = CliRunner().invoke(
        main, [*args, "--out", str(tmp_path / "b"), "--set", "dataset.on_size_mismatch=undefined"]
    )
    assert result.exit_code == 0, result.output
    assert "undefined=2 (image_size_mismatch: 2)" in result.stdout


def test_an_edited_size_mismatch_count_is_refused_by_the_leaderboard(tiny, tmp_path):
    protocol, root = tiny
    _resize(root / "images" / "1.png", (80, 64))
    out = tmp_path / "out"
    evaluate(
        str(protocol), "centre_prior", out_dir=out, data_root=root, overrides=LENIENT,
        progress=False,
    )  # fmt: skip
    path = out / "report.json"
    report = json.loads(path.read_text())
    report["dataset"]["size_mismatches"] = {"count": 0, "examples": []}
    path.write_text(json.dumps(report))
    with pytest.raises(SubmissionError) as err:
        validate_report_dir(out)
    assert str(err.value) == (
        f"{out / 'samples.csv'}: report.json dataset.size_mismatches is "
        "{'count': 0, 'examples': []} but the samples give {'count': 2, 'examples': "
        "['tiny/001', 'tiny/004']}; the report was edited after the run"
    )
    del report["dataset"]["size_mismatches"]
    report["protocol"]["canonical"]["dataset"].pop("on_size_mismatch")
    report["protocol"]["hash"] = protocol_hash(report["protocol"]["canonical"])
    report["protocol"]["id"] = report["protocol"]["hash"][:12]
    path.write_text(json.dumps(report))
    with pytest.raises(SubmissionError) as err:
        validate_report_dir(out)
    assert str(err.value) == (
        f"{out / 'samples.csv'}: 2 samples are undefined as image_size_mismatch, but the "
        "protocol refuses such images (dataset.on_size_mismatch: refuse); the report was "
        "edited after the run"
    )
