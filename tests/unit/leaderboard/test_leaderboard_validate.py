"""Validation refusals: each reason a report cannot join the board, with its message."""

from __future__ import annotations

import json
import re

import pytest
from leaderboard_reports import canonical_protocol, rewrite_report, write_report

from groundbench.leaderboard import SubmissionError, validate_report_dir

VALUES = {
    "pointing": [1.0, 0.0, 1.0, 1.0],
    "box_acc": [1.0, 0.0, 0.0, 1.0],
    "soft_iou": [0.5, 0.25, float("nan"), 0.75],
}


@pytest.fixture
def report(tmp_path):
    return write_report(tmp_path / "run", VALUES)


def test_valid_report_is_accepted(report):
    sub = validate_report_dir(report)
    assert sub.table.ids == (
        "synth/test/00000",
        "synth/test/00001",
        "synth/test/00002",
        "synth/test/00003",
    )
    assert sub.table.labels("soft_iou")[2] == "empty_region"
    assert sub.report["method"]["name"] == "centre_prior"


def test_missing_report_json(tmp_path):
    with pytest.raises(
        SubmissionError, match=re.escape(f"{tmp_path}: no report.json; pass the directory")
    ):
        validate_report_dir(tmp_path)


def test_not_json(report):
    (report / "report.json").write_text("{")
    with pytest.raises(SubmissionError, match="report.json: not valid JSON"):
        validate_report_dir(report)


def test_wrong_schema(report):
    rewrite_report(report, lambda r: r.update(schema=2))
    with pytest.raises(
        SubmissionError, match="schema is 2; this groundbench reads report schema 1"
    ):
        validate_report_dir(report)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r["method"].pop("fingerprint"),
            "missing field 'method.fingerprint' (report schema 1)",
        ),
        (lambda r: r["dataset"].update(n_samples="4"), "dataset.n_samples must be a int, got str"),
        (
            lambda r: r["samples"].update(sha256="XYZ"),
            "samples.sha256 must be 64 lowercase hex characters",
        ),
        (
            lambda r: r["method"].update(supervision="weak"),
            "method.supervision is 'weak'; expected one of",
        ),
        (
            lambda r: r["metrics"]["soft_iou"]["all"].pop("ci_low"),
            "metrics.soft_iou.all: missing field 'ci_low'",
        ),
        (lambda r: r.update(metrics={}), "metrics is empty"),
        (
            lambda r: r["samples"].update(file="../samples.csv"),
            "samples.file must be a file name inside the report directory, got '../samples.csv'",
        ),
    ],
)
def test_schema_invalid(report, edit, message):
    rewrite_report(report, edit)
    with pytest.raises(SubmissionError, match=re.escape(message)):
        validate_report_dir(report)


def test_edited_protocol_is_refused(report):
    def edit(r):
        r["protocol"]["canonical"]["pipeline"]["smooth"]["sigma_px"] = 4.0

    rewrite_report(report, edit)
    with pytest.raises(
        SubmissionError,
        match="does not match its canonical settings .* the protocol was edited after the run",
    ):
        validate_report_dir(report)


def test_protocol_id_must_prefix_hash(report):
    rewrite_report(report, lambda r: r["protocol"].update(id="0" * 12))
    with pytest.raises(
        SubmissionError, match="protocol.id '000000000000' is not the first 12 characters"
    ):
        validate_report_dir(report)


def test_dataset_must_match_protocol(tmp_path):
    run = write_report(tmp_path / "run", VALUES)
    rewrite_report(run, lambda r: r["dataset"].update(split="val"))
    with pytest.raises(
        SubmissionError, match="dataset.split is 'val' but the protocol names 'test'"
    ):
        validate_report_dir(run)


def test_metric_keys_must_match_protocol(report):
    rewrite_report(
        report, lambda r: r["metrics"].update({"pointing[mg]": r["metrics"].pop("pointing[albef]")})
    )
    with pytest.raises(
        SubmissionError, match=re.escape("the report does not belong to its protocol")
    ):
        validate_report_dir(report)


def test_missing_samples_file(report):
    (report / "samples.csv").unlink()
    with pytest.raises(
        SubmissionError, match="samples.csv: missing; a report needs its per-sample file"
    ):
        validate_report_dir(report)


def test_samples_sha_mismatch(report):
    path = report / "samples.csv"
    path.write_text(path.read_text().replace("0.75", "0.76"))
    with pytest.raises(SubmissionError, match="the file was changed or truncated after the run"):
        validate_report_dir(report)


def _truncate(report, keep_rows):
    """Drop rows from samples.csv and re-sign it, as a partial run would write."""
    import hashlib

    path = report / "samples.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: 1 + keep_rows]))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rewrite_report(report, lambda r: r["samples"].update(sha256=digest))


def test_incomplete_samples(report):
    _truncate(report, 3)
    with pytest.raises(
        SubmissionError,
        match="3 rows but report.json samples.n is 4; the per-sample file is incomplete",
    ):
        validate_report_dir(report)


def test_row_count_against_dataset(report):
    _truncate(report, 3)
    rewrite_report(report, lambda r: r["samples"].update(n=3))
    with pytest.raises(SubmissionError, match="3 rows but report.json dataset.n_samples is 4"):
        validate_report_dir(report)


def test_aggregate_disagrees_with_samples(report):
    rewrite_report(report, lambda r: r["metrics"]["box_acc@0.5"]["all"].update(mean=0.9))
    with pytest.raises(SubmissionError) as exc:
        validate_report_dir(report)
    assert str(exc.value) == (
        f"{report / 'samples.csv'}: report.json metrics.box_acc@0.5.all.mean is 0.9 but "
        "samples.csv gives 0.5 (bootstrap 200 resamples, seed 0); the report was changed "
        "after the run: re-run groundbench evaluate"
    )


def _forge_interval(r):
    r["metrics"]["soft_iou"]["all"].update(ci_low=0.9, ci_high=0.99)


def _forge_tag_mean(r):
    r["metrics"]["soft_iou"]["attribute"]["mean"] += 0.25


def _forge_undefined(r):
    r["metrics"]["soft_iou"]["all"]["undefined"] = {}


def _forge_tag_n(r):
    r["metrics"]["box_acc@0.5"]["relational"]["n_defined"] -= 1


@pytest.mark.parametrize(
    ("forge", "field"),
    [
        (_forge_interval, "soft_iou.all.ci_low"),
        (_forge_tag_mean, "soft_iou.attribute.mean"),
        (_forge_undefined, "soft_iou.all.undefined"),
        (_forge_tag_n, "box_acc@0.5.relational.n_defined"),
    ],
)
def test_every_published_number_is_recomputed(report, forge, field):
    # Only all's n, n_defined and mean used to be checked: an edited interval, per-tag mean
    # or undefined count was stored and published.
    before = json.loads((report / "report.json").read_text())
    rewrite_report(report, forge)
    after = json.loads((report / "report.json").read_text())
    key, tag, name = field.rsplit(".", 2)
    given, expected = after["metrics"][key][tag][name], before["metrics"][key][tag][name]
    with pytest.raises(SubmissionError) as exc:
        validate_report_dir(report)
    assert str(exc.value) == (
        f"{report / 'samples.csv'}: report.json metrics.{field} is {given!r} but samples.csv "
        f"gives {expected!r} (bootstrap 200 resamples, seed 0); the report was changed after "
        "the run: re-run groundbench evaluate"
    )


def test_a_forged_tag_is_refused(report):
    rewrite_report(
        report, lambda r: r["metrics"]["soft_iou"].update(best=r["metrics"]["soft_iou"]["all"])
    )
    with pytest.raises(SubmissionError) as exc:
        validate_report_dir(report)
    assert str(exc.value) == (
        f"{report / 'samples.csv'}: report.json metrics.soft_iou has tags ['all', 'attribute', "
        "'best', 'relational'] but samples.csv gives ['all', 'attribute', 'relational']; the "
        "report and its per-sample file disagree"
    )


def test_missing_column(tmp_path):
    run = write_report(tmp_path / "run", VALUES)
    path = run / "samples.csv"
    path.write_text(path.read_text().replace("soft_iou:undefined", "soft_iou_reason"))
    import hashlib

    rewrite_report(
        run, lambda r: r["samples"].update(sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    )
    with pytest.raises(
        SubmissionError, match=re.escape("missing column(s) ['soft_iou:undefined']")
    ):
        validate_report_dir(run)


def test_report_written_with_other_canonical_is_valid(tmp_path):
    run = write_report(
        tmp_path / "run", VALUES, canonical=canonical_protocol("small", variant="mg")
    )
    report = json.loads((run / "report.json").read_text())
    assert "pointing[mg]" in report["metrics"]
    assert validate_report_dir(run).report["dataset"]["split"] == "small"


def test_report_of_a_shipped_protocol_is_valid(tmp_path):
    from pathlib import Path

    from groundbench.protocol import load_protocol

    shipped = Path(__file__).resolve().parents[3] / "protocols" / "synth_test.albef.yaml"
    protocol = load_protocol(str(shipped))
    n = 6
    values = {m["name"]: [1.0, 0.0] * (n // 2) for m in protocol.canonical["metrics"]}
    run = write_report(tmp_path / "run", values, canonical=protocol.canonical, name=protocol.name)
    report = validate_report_dir(run).report
    assert report["protocol"]["id"] == protocol.id
    assert "pointing[albef]" in report["metrics"]


def test_a_report_without_interval_kinds_is_refused_as_older(tmp_path):
    run = write_report(tmp_path / "old", {"pointing": [1.0, 0.0, 1.0]})

    def drop_interval(report):
        for by_tag in report["metrics"].values():
            for agg in by_tag.values():
                agg.pop("interval")

    rewrite_report(run, drop_interval)
    with pytest.raises(SubmissionError) as err:
        validate_report_dir(run)
    assert str(err.value) == (
        f"{run / 'samples.csv'}: report.json metrics.pointing[albef].all has no 'interval'; "
        "the report was written by an older groundbench: re-run groundbench evaluate"
    )
