"""The ``click`` study: the bare image, a click on the named object, a human pointing game."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from human_study import PORT, login, post

from groundbench.human.analyze import analyze
from groundbench.human.prepare import prepare
from groundbench.human.server import StudyApp
from groundbench.human.store import Store
from groundbench.human.study import StudyError, load_study


@pytest.fixture(scope="module")
def clicked(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("click")
    spec = json.loads((prepared.parent / "spec" / "study.yaml").read_text())
    spec |= {"type": "click", "sample": {"n": 4}}
    (tmp / "click.yaml").write_text(json.dumps(spec))
    return prepare(tmp / "click.yaml", tmp / "S")


def test_click_items_hold_the_boxes_but_show_the_bare_image(clicked: Path, tmp_path) -> None:
    manifest = json.loads((clicked / "manifest.json").read_text())
    study = [it for it in manifest["items"] if it["gold"] is None]
    gold = [it for it in manifest["items"] if it["gold"] is not None]
    # 4 items × 2 annotators each / 3 annotators × gold_rate 0.25 → round(0.67) = 1 gold item
    assert len(study) == 4 and len(gold) == 1
    assert not {it["sample"] for it in gold} & {it["sample"] for it in study}
    for it in manifest["items"]:
        assert len(it["slots"]) == 1 and it["slots"][0]["source"] == "image" and it["boxes"]
        assert all(b[0] < b[2] and b[1] < b[3] for b in it["boxes"])
    assert all(
        any(q["item"] == gold[0]["id"] for q in queue) for queue in manifest["queues"].values()
    )
    spec = json.loads((clicked / "study.yaml").read_text()) | {"k": 2}
    (tmp_path / "bad.yaml").write_text(json.dumps(spec))
    with pytest.raises(StudyError, match="k is 2"):
        load_study(tmp_path / "bad.yaml")


def test_clicks_are_validated_stored_and_scored(clicked: Path, tmp_path: Path) -> None:
    app = StudyApp(clicked, PORT)
    try:
        headers = login(app, "ann1")
        page = app.handle("GET", "/", headers).body
        assert b"Click the object named by" in page and b"no_single_object" in page
        item = json.loads(app.handle("GET", "/api/item", headers).body)
        assert item["type"] == "click" and len(item["images"]) == 1
        assert b"boxes" not in app.handle("GET", "/api/item", headers).body
        for bad in (
            {"click_x": 1.5, "click_y": 0.5},
            {"click_x": 0.5},
            {"click_x": True, "click_y": 0.1},
        ):
            body = {"item": item["item"], "answer": "click", "rt_ms": 10} | bad
            assert post(app, headers, body).status == 400
        for name, queue in app.queues.items():
            h = login(app, name)
            for k, entry in enumerate(queue):
                item = app.items[entry["item"]]
                box = item["boxes"][0]
                x, y = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                if item["gold"] is not None and name == "ann1":  # ann1 misses the gold box
                    x = box[0] / 2 if box[0] > 0.01 else (box[2] + 1) / 2
                if k == 0 and item["gold"] is None:  # no single object
                    body = {"answer": "no_single_object"}
                else:
                    body = {"answer": "click", "click_x": x, "click_y": y}
                reply = post(app, h, {"item": entry["item"], "rt_ms": 1800} | body)
                assert reply.status == 200
    finally:
        app.store.close()
    store = Store(clicked)
    rows = store.answers()
    store.close()
    assert all((j.click_x is None) == (j.answer != "click") for j in rows)
    analyze(clicked, tmp_path / "R", resamples=20)
    report = json.loads((tmp_path / "R" / "report.json").read_text())
    human = report["click"]["rows"][0]
    is_gold = {i: it["gold"] is not None for i, it in app.items.items()}
    study = [j for j in rows if not is_gold[j.item]]
    misses = sum(j.answer == "no_single_object" for j in study)
    assert human["method"] == "human" and human["n"] == len(study)
    assert human["hits"] == len(study) - misses and human["no_single_object"] == misses
    # gold accuracy: a click inside the box is right; ann1 clicked beside it
    accuracy = {a["annotator"]: (a["gold_n"], a["gold_accuracy"]) for a in report["annotators"]}
    assert accuracy == {"ann1": (1, 0.0), "ann2": (1, 1.0), "ann3": (1, 1.0)}
    assert any(r["method"].startswith("centre_prior pointing") for r in report["click"]["rows"])
    assert "Human pointing game" in (tmp_path / "R" / "report.md").read_text()
    assert (tmp_path / "R" / "pointing.png").is_file()
