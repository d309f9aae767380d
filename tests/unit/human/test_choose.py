"""The ``choose`` study: k maps of one method for phrases of one image; which shows this phrase?"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from human_study import PORT, login, post

from groundbench.human.analyze import analyze
from groundbench.human.prepare import prepare
from groundbench.human.server import StudyApp
from groundbench.human.study import StudyError, load_study


def _spec(prepared: Path, tmp_path: Path, **change) -> Path:
    spec = json.loads((prepared.parent / "spec" / "study.yaml").read_text())
    spec = {**spec, "type": "choose", "k": 2, "sample": {"n": 4}, "methods": [spec["methods"][0]]}
    path = tmp_path / "choose.yaml"
    path.write_text(json.dumps({**spec, **change}))
    return path


@pytest.fixture(scope="module")
def chosen(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("choose")
    spec = json.loads((prepared.parent / "spec" / "study.yaml").read_text())
    spec |= {"type": "choose", "k": 2, "sample": {"n": 4}, "gold_rate": 0.5}
    (tmp / "choose.yaml").write_text(json.dumps(spec))
    return prepare(tmp / "choose.yaml", tmp / "S")


def test_k_is_validated(prepared: Path, tmp_path: Path) -> None:
    both = json.loads((prepared.parent / "spec" / "study.yaml").read_text())["methods"]
    with pytest.raises(StudyError, match="k is 3"):
        load_study(_spec(prepared, tmp_path, type="pairwise", k=3, methods=both))
    with pytest.raises(StudyError, match="at least 2"):
        load_study(_spec(prepared, tmp_path, type="pairwise"))
    with pytest.raises(StudyError, match="k must be"):
        load_study(_spec(prepared, tmp_path, k=1))
    assert load_study(_spec(prepared, tmp_path)).methods[0].name == "centre_prior"
    assert (
        load_study(_spec(prepared, tmp_path, k=3)).study_id
        != load_study(_spec(prepared, tmp_path)).study_id
    )


def test_items_show_this_phrase_and_other_phrases_of_the_image(chosen: Path) -> None:
    manifest = json.loads((chosen / "manifest.json").read_text())
    study = [it for it in manifest["items"] if it["gold"] is None]
    gold = [it for it in manifest["items"] if it["gold"] is not None]
    assert len(study) == 4 * 2 and gold  # 4 phrases x 2 methods
    for it in study:
        assert it["target"] == 0 and len(it["slots"]) == 2
        assert it["slots"][0]["phrase_of"] == it["sample"]
        other = it["slots"][1]["phrase_of"]
        assert other != it["sample"] and other.rsplit("/", 1)[0] == it["sample"].rsplit("/", 1)[0]
        assert {s["source"] for s in it["slots"]} == {it["slots"][0]["source"]}
    for it in gold:
        assert len(it["slots"]) == 2 and it["slots"][0]["source"] == "gold:oracle_box"
    for queue in manifest["queues"].values():
        assert all(sorted(q["order"]) == [0, 1] for q in queue)


def test_page_answers_and_report(chosen: Path, tmp_path: Path) -> None:
    app = StudyApp(chosen, PORT)
    try:
        page = app.handle("GET", "/", login(app, "ann1")).body
        assert b"Which heatmap shows" in page and b'data-answer="2"' in page
        for name, queue in app.queues.items():
            headers = login(app, name)
            for entry in queue:
                item = app.items[entry["item"]]
                wrong = post(app, headers, {"item": item["id"], "answer": "A", "rt_ms": 5})
                assert wrong.status == 400
                # pick the phrase's own map for centre_prior and gold, the other one for uniform
                own = item["slots"][0]["source"] in ("centre_prior", "gold:oracle_box")
                target_pos = entry["order"].index(0) + 1
                pick = target_pos if own else 3 - target_pos
                reply = post(app, headers, {"item": item["id"], "answer": str(pick), "rt_ms": 2000})
                assert reply.status == 200
    finally:
        app.store.close()
    analyze(chosen, tmp_path / "R", resamples=20)
    report = json.loads((tmp_path / "R" / "report.json").read_text())
    rows = {m["method"]: m for m in report["choose"]["methods"]}
    assert rows["centre_prior"]["accuracy"] == 1.0 and rows["uniform"]["accuracy"] == 0.0
    assert report["choose"]["chance"] == 0.5 and "bradley_terry" not in report
    assert all(a["gold_accuracy"] == 1.0 for a in report["annotators"])
    assert len(report["position_bias"]["positions"]) == 2
    md = (tmp_path / "R" / "report.md").read_text()
    assert "Which map shows the phrase" in md and (tmp_path / "R" / "accuracy.png").is_file()
