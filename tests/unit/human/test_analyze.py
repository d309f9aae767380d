"""``human analyze`` and ``export``: byte-reproducible reports, side-swap invariance, exclusions."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from human_study import PORT, answer_all

from groundbench.cli import main
from groundbench.human.analyze import _bootstrap_choose, _vs_metrics, analyze, export_jsonl
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


def test_kendall_tau_has_a_bootstrap_interval_over_samples(answered: Path, tmp_path) -> None:
    r = _report(answered, tmp_path / "R")
    for key, m in r["automatic_metrics"].items():
        if m["kendall_tau"] is None:
            assert m["tau_ci_low"] is None and m["tau_ci_high"] is None, key
        else:
            assert -1 <= m["tau_ci_low"] <= m["kendall_tau"] <= m["tau_ci_high"] <= 1, key
    assert "95 % interval" in (tmp_path / "R" / "report.md").read_text()


def test_tau_interval_is_the_percentile_of_the_replicates_taus() -> None:
    manifest = {
        "type": "choose",
        "methods": ["a", "b", "c"],
        "metrics": {
            "keys": {"m": {"higher_is_better": True}},
            **{
                x: {"m": {"mean": v, "samples": {}}}
                for x, v in zip("abc", (0.1, 0.2, 0.3), strict=True)
            },
        },
    }
    same, swapped, reversed_ = [0.0, 1.0, 2.0], [1.0, 0.0, 2.0], [2.0, 1.0, 0.0]  # τ 1, 1/3, -1
    boot = np.array([same] * 90 + [swapped] * 7 + [reversed_] * 3)
    got = _vs_metrics(manifest, [], dict(zip("abc", same, strict=True)), boot)["m"]
    taus = [1.0] * 90 + [1 / 3] * 7 + [-1.0] * 3
    assert got["kendall_tau"] == 1.0
    want = np.percentile(taus, [2.5, 97.5])
    assert [got["tau_ci_low"], got["tau_ci_high"]] == pytest.approx(list(want), abs=1e-12)
    assert got["tau_ci_low"] < 0 and got["tau_ci_high"] == 1.0  # the reversed replicates count


def test_choose_bootstrap_matches_a_direct_resampling() -> None:
    rows = [
        {"answer": "1", "sample": s, "methods": [m], "slot": slot, "target": 0}
        for s, m, slot in [("s1", "a", 0), ("s1", "b", 1), ("s2", "a", 0), ("s3", "a", 1),
                           ("s3", "b", 0), ("s2", "b", 0), ("s4", "a", None)]
    ] + [{"answer": "ambiguous", "sample": "s4", "methods": ["b"], "slot": None, "target": 0}]  # fmt: skip
    got = _bootstrap_choose(["a", "b"], rows, 40, seed=3)
    kept = [r for r in rows if r["answer"] != "ambiguous"]
    units = sorted({r["sample"] for r in kept})
    rng = np.random.default_rng(3)
    for b in range(40):
        drawn = [units[i] for i in rng.integers(0, len(units), len(units))]
        for j, m in enumerate("ab"):
            mine = [r for u in drawn for r in kept if r["sample"] == u and r["methods"][0] == m]
            want = sum(r["slot"] == 0 for r in mine) / len(mine) if mine else math.nan
            assert got[b, j] == pytest.approx(want, nan_ok=True)
