"""Human studies on a leaderboard: ``leaderboard add-human``, the refusals, and the board's
human columns, section and CSV rows (recomputed from the stored judgements)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from human_study import PORT, answer_all, login, post

from groundbench.cli import main
from groundbench.evaluate import evaluate
from groundbench.human.analyze import analyze
from groundbench.human.board import add_human_study, load_human_studies
from groundbench.human.prepare import prepare
from groundbench.human.server import StudyApp
from groundbench.leaderboard import SubmissionError, add_entry, build_board, load_entries
from groundbench.leaderboard.studies import (
    HumanScore,
    HumanStudy,
    column_cells,
    column_heads,
    render_studies_markdown,
)

RESAMPLES = 30


@pytest.fixture(scope="module")
def analysed(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The answered study folder and its analysis (module scope: analysed once)."""
    tmp = tmp_path_factory.mktemp("board_study")
    study = Path(shutil.copytree(prepared, tmp / "S"))
    app = StudyApp(study, PORT)
    answer_all(app, prefer="centre_prior")
    app.store.close()
    return study, analyze(study, tmp / "R", resamples=RESAMPLES)


def _reports(prepared: Path) -> Path:
    return prepared.parent / "reports"


def _board(prepared: Path, tmp_path: Path, methods=("centre_prior", "uniform")) -> Path:
    board = tmp_path / "board"
    for m in methods:
        add_entry(_reports(prepared) / m, board)
    return board


def _copy(analysed: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    study, report = analysed
    return Path(shutil.copytree(study, tmp_path / "S")), Path(
        shutil.copytree(report, tmp_path / "R")
    )


def test_a_study_is_shown_beside_the_metrics_of_its_protocol(prepared, analysed, tmp_path) -> None:
    study, rdir = analysed
    board = _board(prepared, tmp_path)
    stored = add_human_study(study, rdir, board)
    report = json.loads((rdir / "report.json").read_text())
    pid = json.loads((_reports(prepared) / "uniform" / "report.json").read_text())["protocol"]["id"]
    sid = report["study_id"][:12]
    assert stored == board / "human" / pid / f"{sid}.json"
    files = build_board(board, human=load_human_studies)
    readme = files.markdown.read_text()
    bt = {m["method"]: m for m in report["bradley_terry"]["methods"]}
    (pair,) = report["pairs"]
    wins = {"centre_prior": pair["a_wins"], "uniform": pair["b_wins"]}
    rows = {line.split(" | ")[1]: line for line in readme.splitlines() if line.startswith("| ")}
    for name in ("centre_prior", "uniform"):
        b = bt[name]
        cell = f"{b['score']:+.3f} [{b['ci_low']:+.3f}, {b['ci_high']:+.3f}]"
        assert cell in rows[name]  # in the protocol table and the study's table
        rate = (wins[name] + pair["ties"] / 2) / pair["n"]
        assert f"| {rate:.3f} [" in rows[name]
    assert f"human Bradley–Terry {sid}" in readme and f"human win rate {sid}" in readme
    assert "## Human studies" in readme and f"study `{sid}` (pairwise)" in readme
    alpha = report["agreement"]["krippendorff_alpha"]
    assert f"Krippendorff's α {alpha:.3f} [" in readme
    got = [
        r
        for r in csv.DictReader(io.StringIO(files.csv.read_text()))
        if r["metric"].startswith("human:")
    ]
    scores = {
        r["method"]: float(r["mean"]) for r in got if r["metric"] == f"human:bradley_terry@{sid}"
    }
    assert scores == {m: pytest.approx(b["score"], abs=1e-12) for m, b in bt.items()}
    assert {r["rank"] for r in got} == {str(b["rank"]) for b in bt.values()}
    page = files.html.read_text()
    assert f'id="h-{sid}"' in page and f"human win rate {sid}" in page
    # the same inputs give the same bytes
    first = [p.read_bytes() for p in (files.markdown, files.csv, files.html)]
    again = build_board(board, human=load_human_studies)
    assert first == [p.read_bytes() for p in (again.markdown, again.csv, again.html)]


def test_a_board_with_studies_is_not_built_without_them(prepared, analysed, tmp_path) -> None:
    board = _board(prepared, tmp_path)
    add_human_study(*analysed, board)
    with pytest.raises(SubmissionError, match="holds human studies; build with"):
        build_board(board)


def test_a_method_not_on_the_board_is_refused(prepared, analysed, tmp_path) -> None:
    board = _board(prepared, tmp_path, methods=("centre_prior",))
    with pytest.raises(SubmissionError) as err:
        add_human_study(*analysed, board)
    assert "method 'uniform'" in str(
        err.value
    ) and "has no entry on the board under protocol" in str(err.value)
    assert "`groundbench leaderboard add` first" in str(err.value)
    assert not (board / "human").exists()


def test_a_method_under_another_protocol_is_refused(prepared, analysed, tmp_path) -> None:
    board = _board(prepared, tmp_path, methods=("centre_prior",))
    other = tmp_path / "uniform_val"
    evaluate(
        "synth_val.albef",
        "uniform",
        out_dir=other,
        data_root=prepared.parent / "data",
        progress=False,
    )
    add_entry(other, board)
    val_id = json.loads((other / "report.json").read_text())["protocol"]["id"]
    with pytest.raises(
        SubmissionError, match=f"only under protocol {val_id}, not the study's protocol"
    ):
        add_human_study(*analysed, board)


def test_a_tampered_report_or_study_is_refused(prepared, analysed, tmp_path) -> None:
    board = _board(prepared, tmp_path)
    study, rdir = _copy(analysed, tmp_path)
    report = json.loads((rdir / "report.json").read_text())
    edited = json.loads(json.dumps(report))
    edited["bradley_terry"]["methods"][0]["score"] += 0.5
    (rdir / "report.json").write_text(json.dumps(edited))
    with pytest.raises(
        SubmissionError, match=r"differs from the statistics recomputed .*\(at bradley_terry\)"
    ):
        add_human_study(study, rdir, board)
    (rdir / "report.json").write_text(json.dumps(report))
    spec = json.loads((study / "study.yaml").read_text())
    (study / "study.yaml").write_text(json.dumps(spec | {"min_response_ms": 10}))
    with pytest.raises(
        SubmissionError, match="exclusions or min_response_ms changed since the analysis"
    ):
        add_human_study(study, rdir, board)
    (study / "study.yaml").write_text(json.dumps(spec))
    db = sqlite3.connect(study / "judgements.sqlite")
    with db:
        db.execute("UPDATE judgement SET rt_ms = rt_ms + 1 WHERE rowid = 1")
    db.close()
    with pytest.raises(SubmissionError, match="the judgements changed since the analysis"):
        add_human_study(study, rdir, board)
    manifest = study / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"phrase":"', '"phrase":"x', 1))
    with pytest.raises(SubmissionError, match="was edited after `groundbench human prepare`"):
        add_human_study(study, rdir, board)
    assert not (board / "human").exists()


def test_a_stored_study_edited_by_hand_fails_the_build(prepared, analysed, tmp_path) -> None:
    board = _board(prepared, tmp_path)
    stored = add_human_study(*analysed, board)
    record = json.loads(stored.read_text())
    record["report"]["agreement"]["krippendorff_alpha"] = 0.99
    stored.write_text(json.dumps(record))
    with pytest.raises(
        SubmissionError, match=r"differs from the statistics recomputed .*\(at agreement\)"
    ):
        build_board(board, human=load_human_studies)


def test_cli_add_human_and_a_human_report_given_to_add(prepared, analysed, tmp_path) -> None:
    board = _board(prepared, tmp_path)
    study, rdir = analysed
    runner = CliRunner()
    result = runner.invoke(main, ["leaderboard", "add", str(rdir), "--board", str(board)])
    assert (
        result.exit_code == 1
        and "a human-study analysis, not an evaluation report" in result.output
    )
    result = runner.invoke(
        main, ["leaderboard", "add-human", str(study), str(rdir), "--board", str(board)]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["leaderboard", "build", "--board", str(board)])
    assert result.exit_code == 0, result.output
    assert "## Human studies" in (board / "README.md").read_text()


def _study(kind: str, scores=(), pointing=None, chance=None) -> HumanStudy:
    return HumanStudy(
        protocol_id="p" * 12, study_id="ab" * 32, type=kind, items=4,
        annotators=2, judgements=8, alpha=0.5, alpha_low=0.1, alpha_high=0.8,
        scores=tuple(scores), pointing=pointing, chance=chance, kendall=(("soft_iou", 1.0, 0.5, 1.0),),
        analysis_hash="c" * 64, judgements_sha256="d" * 64,
    )  # fmt: skip


def test_choose_and_click_studies_render() -> None:
    choose = _study("choose", [HumanScore("f1", "model", 0.75, 0.4, 0.9, 8)], chance=0.5)
    click = _study("click", pointing=HumanScore("", "annotators", 0.875, 0.5, 0.98, 8))
    assert column_heads([choose, click]) == [f"human picked own map {'ab' * 6}"]
    assert column_cells([choose, click], "f1") == [("0.750 [0.400, 0.900]", 0.75)]
    assert column_cells([choose, click], "other") == [("–", None)]
    text = "\n".join(render_studies_markdown([choose, click], {"p" * 12: "synth_test.albef"}))
    assert "| model | 0.750 [0.400, 0.900] | 8 |" in text and "chance is 0.500" in text
    assert "clicks fall in the phrase's box in 0.875 [0.500, 0.980] of 8" in text


@pytest.mark.parametrize("kind", ["choose", "click"])
def test_choose_and_click_studies_go_on_the_board(prepared, tmp_path, kind) -> None:
    spec = json.loads((prepared.parent / "spec" / "study.yaml").read_text())
    spec |= {"type": kind, "sample": {"n": 4}} | ({"k": 2} if kind == "choose" else {})
    (tmp_path / "study.yaml").write_text(json.dumps(spec))
    study = prepare(tmp_path / "study.yaml", tmp_path / "S")
    app = StudyApp(study, PORT)
    for name, queue in app.queues.items():
        headers = login(app, name)
        for k, entry in enumerate(queue):
            item = app.items[entry["item"]]
            if kind == "choose":  # the phrase's own map, except each annotator's first item
                body = {"answer": "none" if k == 0 else str(entry["order"].index(0) + 1)}
            else:
                box = item["boxes"][0]
                x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                body = {"answer": "click", "click_x": x, "click_y": y}
            assert post(app, headers, {"item": item["id"], "rt_ms": 2000} | body).status == 200
    app.store.close()
    rdir = analyze(study, tmp_path / "R", resamples=RESAMPLES)
    report = json.loads((rdir / "report.json").read_text())
    board = _board(prepared, tmp_path)
    add_human_study(study, rdir, board)
    (got,) = load_human_studies(board, load_entries(board))
    readme = build_board(board, human=load_human_studies).markdown.read_text()
    if kind == "choose":
        want = {m["method"]: m for m in report["choose"]["methods"]}
        assert {s.method_name: s.score for s in got.scores} == {
            m: w["accuracy"] for m, w in want.items()
        }
        assert got.chance == 0.5 and f"human picked own map {got.short_id}" in readme
        for m, w in want.items():
            row = next(x for x in readme.splitlines() if x.startswith(f"| {m} | "))
            assert (
                f"{w['accuracy']:.3f} [{w['ci_low']:.3f}, {w['ci_high']:.3f}] | {w['n']} |" in row
            )
    else:
        human = report["click"]["rows"][0]
        assert got.scores == () and got.pointing.score == human["score"] == 1.0
        assert f"clicks fall in the phrase's box in 1.000 [{human['ci_low']:.3f}, 1.000]" in readme
