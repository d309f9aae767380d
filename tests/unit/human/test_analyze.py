"""``human analyze`` and ``export``: byte-reproducible reports, side-swap invariance, exclusions."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from human_study import PORT, answer_all

from groundbench.cli import main
from groundbench.human.analyze import analyze, export_jsonl
from groundbench.human.server import StudyApp
from groundbench.human.study import StudyError

METHOD_LEVEL = ("pairs", "bradley_terry", "agreement", "automatic_metrics", "counts")


@pytest.fixture
def answered(study: Path) -> Path:
    app = StudyApp(study, PORT)
    answer_all(app, prefer="centre_prior")
    app.store.close()
    return study


def _report(folder: Path, out: Path) -> dict:
    analyze(folder, out, resamples=50)
    return json.loads((out / "report.json").read_text())


def test_report_reads_the_preference(answered: Path, tmp_path: Path) -> None:
    r = _report(answered, tmp_path / "R")
    scores = {m["method"]: m for m in r["bradley_terry"]["methods"]}
    assert scores["centre_prior"]["score"] > 0 > scores["uniform"]["score"]
    assert scores["centre_prior"]["ci_low"] <= scores["centre_prior"]["score"]
    (pair,) = r["pairs"]
    assert pair["a"] == "centre_prior" and pair["a_win_rate"] > 0.5
    assert pair["ci_low"] <= pair["a_win_rate"] <= pair["ci_high"]
    assert all(a["gold_accuracy"] == 1.0 for a in r["annotators"])
    assert r["agreement"]["krippendorff_alpha"] is not None
    assert set(r["automatic_metrics"]) >= {"soft_iou", "pointing[albef]"}
    md = (tmp_path / "R" / "report.md").read_text()
    assert "Bradley–Terry" in md and "Krippendorff" in md and "centre_prior" in md
    assert (tmp_path / "R" / "bradley_terry.png").stat().st_size > 0


def test_same_judgements_same_bytes(answered: Path, tmp_path: Path) -> None:
    analyze(answered, tmp_path / "R1", resamples=50)
    analyze(answered, tmp_path / "R2", resamples=50)
    for name in ("report.json", "report.md", "bradley_terry.png"):
        assert (tmp_path / "R1" / name).read_bytes() == (tmp_path / "R2" / name).read_bytes()


def test_swapping_screen_sides_changes_no_method_level_result(answered: Path, tmp_path) -> None:
    before = _report(answered, tmp_path / "R1")
    db = sqlite3.connect(answered / "judgements.sqlite")
    rows = db.execute("SELECT annotator, item, answer, order_json FROM judgement").fetchall()
    swap = {"A": "B", "B": "A"}
    with db:
        for annotator, item, answer, order in rows:
            db.execute(
                "UPDATE judgement SET answer=?, order_json=? WHERE annotator=? AND item=?",
                (swap.get(answer, answer), json.dumps(json.loads(order)[::-1]), annotator, item),
            )
    db.close()
    after = _report(answered, tmp_path / "R2")
    for key in METHOD_LEVEL:
        assert after[key] == before[key], key
    assert after["annotators"] == before["annotators"]
    p, q = before["position_bias"]["p_left"], after["position_bias"]["p_left"]
    assert q == pytest.approx(1.0 - p, abs=1e-12)


def test_exclusions_written_into_the_study_copy_apply(answered: Path, tmp_path: Path) -> None:
    before = _report(answered, tmp_path / "R1")
    spec = json.loads((answered / "study.yaml").read_text())
    spec["exclude"] = {"annotators": ["ann1"], "items": []}
    (answered / "study.yaml").write_text(json.dumps(spec))
    after = _report(answered, tmp_path / "R2")
    assert after["study_id"] == before["study_id"]
    assert after["analysis_hash"] != before["analysis_hash"]
    assert after["counts"]["excluded_annotators"] == 1
    assert "ann1" not in {a["annotator"] for a in after["annotators"]}
    assert after["counts"]["judgements"] < before["counts"]["judgements"]


def test_nothing_to_analyse_is_a_clear_error(study: Path, tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="nothing to analyse"):
        analyze(study, tmp_path / "R")


def test_export_is_sorted_canonical_jsonl_with_its_hash(answered: Path, tmp_path: Path) -> None:
    data, digest = export_jsonl(answered)
    lines = data.decode().splitlines()
    assert lines == sorted(lines) and hashlib.sha256(data).hexdigest() == digest
    assert all(json.dumps(json.loads(x), sort_keys=True, separators=(",", ":")) == x for x in lines)
    out = tmp_path / "j.jsonl"
    result = CliRunner().invoke(main, ["human", "export", str(answered), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == data
    assert (tmp_path / "j.jsonl.sha256").read_text() == f"{digest}  j.jsonl\n"


def test_cli_analyze_and_clean_errors(answered: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "R"
    result = runner.invoke(
        main, ["human", "analyze", str(answered), "--out", str(out), "--resamples", "20"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "report.md").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: 1\ntype: rating\n")
    result = runner.invoke(main, ["human", "prepare", str(bad), "--out", str(tmp_path / "S")])
    assert result.exit_code == 1 and "type must be one of" in result.output
    assert "Traceback" not in result.output


def test_permuting_annotators_changes_no_agreement(answered: Path, tmp_path: Path) -> None:
    before = _report(answered, tmp_path / "R1")
    db = sqlite3.connect(answered / "judgements.sqlite")
    with db:  # ann1 -> ann3 -> ann2 -> ann1
        for old, new in (("ann1", "tmp"), ("ann3", "ann1"), ("ann2", "ann3"), ("tmp", "ann2")):
            db.execute("UPDATE judgement SET annotator=? WHERE annotator=?", (new, old))
    db.close()
    after = _report(answered, tmp_path / "R2")
    for key in ("agreement", "pairs", "bradley_terry", "position_bias"):
        assert after[key] == before[key], key
