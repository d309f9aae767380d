"""Build a tiny evaluated study for the human-study tests: a generated synthetic set, two
baselines evaluated on it, a study file and its prepared folder."""

from __future__ import annotations

import json
from pathlib import Path

from groundbench.evaluate import evaluate
from groundbench.human.prepare import prepare
from groundbench.human.server import StudyApp
from groundbench.human.store import Store
from groundbench.synthetic import PROBE_SPLITS, generate

TINY = {"scenes": {"train": 2, "val": 2, "test": 6} | {s: 1 for s in PROBE_SPLITS}}
PROTOCOL = "synth_test.albef"
PORT = 8765
HOST = {"Host": f"127.0.0.1:{PORT}"}


def build_reports(root: Path) -> tuple[Path, list[Path]]:
    """Generate the data under ``root/data`` and evaluate two baselines; return (data, reports)."""
    data = generate(root / "data", TINY, seed=0, progress=False)
    reports = []
    for method in ("centre_prior", "uniform"):
        out = root / "reports" / method
        evaluate(PROTOCOL, method, out_dir=out, data_root=data, progress=False)
        reports.append(out)
    return data, reports


def write_study(folder: Path, data: Path, reports: list[Path], **extra) -> Path:
    """Write ``folder/study.yaml`` (JSON is YAML) comparing ``reports``."""
    folder.mkdir(parents=True, exist_ok=True)
    study = {
        "schema": 1,
        "about": "test study",
        "type": "pairwise",
        "methods": [str(r) for r in reports],
        "annotators": ["ann1", "ann2", "ann3"],
        "per_item": 2,
        "sample": {"n": 6},
        "gold_rate": 0.25,
        "rendering": {"width": 64},
        "data_root": str(data),
        "seed": 0,
    } | extra
    path = folder / "study.yaml"
    path.write_text(json.dumps(study), encoding="utf-8")
    return path


def build_study(root: Path) -> Path:
    """A prepared study folder under ``root/S``."""
    data, reports = build_reports(root)
    return prepare(write_study(root / "spec", data, reports), root / "S")


def login(app: StudyApp, annotator: str) -> dict[str, str]:
    """Exchange the annotator's token for the session cookie; return request headers."""
    token = json.loads((app.store.path.parent / "tokens.json").read_text())[annotator]
    reply = app.handle("GET", f"/?t={token}", HOST)
    assert reply.status == 303
    return {**HOST, "Cookie": reply.header("Set-Cookie").split(";")[0]}


def post(app: StudyApp, headers: dict[str, str], obj, **extra: str):
    body = json.dumps(obj).encode()
    h = {**headers, "Content-Type": "application/json", "X-Groundbench": "1"}
    h["Content-Length"] = str(len(body))
    return app.handle("POST", "/api/answer", {**h, **extra}, body)


def answer_all(app: StudyApp, prefer: str, seed: int = 0) -> None:
    """Every annotator answers every item: ``prefer`` wins, gold goes to the oracle, and a
    seeded few answers are ties or 'ambiguous'."""
    import random

    rnd = random.Random(seed)
    for name, queue in app.queues.items():
        headers = login(app, name)
        for entry in queue:
            item = app.items[entry["item"]]
            shown = [item["slots"][s]["source"] for s in entry["order"]]
            best = "gold:oracle_box" if item["gold"] is not None else prefer
            answer = "A" if shown[0] == best else "B"
            roll = rnd.random()
            if item["gold"] is None and roll < 0.15:
                answer = "both_good" if roll < 0.1 else "ambiguous"
            rt = rnd.randint(300, 5000)
            assert (
                post(app, headers, {"item": item["id"], "answer": answer, "rt_ms": rt}).status
                == 200
            )


def check_keyboard_session(study: Path, queue: list[dict]) -> None:
    """The browser tests' script left in the store: the first three items answered A, B and
    both wrong in the shown order, and the third's first answer (both good) in the history."""
    store = Store(study)
    try:
        got = {j.item: j for j in store.answers("ann1")}
        history = store.history()
    finally:
        store.close()
    for entry, answer in zip(queue[:3], ["A", "B", "both_wrong"], strict=True):
        j = got[entry["item"]]
        assert j.answer == answer and json.loads(j.order_json) == entry["order"]
        assert j.rt_ms >= 0
    assert set(got) == {q["item"] for q in queue[:3]}
    assert [(h.item, h.answer) for h in history] == [(queue[2]["item"], "both_good")]


def check_click_session(study: Path, queue: list[dict]) -> None:
    """The click page's script left in the store: a click at (0.25, 0.75) of the first
    image, then "no single object" for the second."""
    store = Store(study)
    try:
        got = {j.item: j for j in store.answers("ann1")}
    finally:
        store.close()
    first, second = got[queue[0]["item"]], got[queue[1]["item"]]
    assert first.answer == "click"
    assert abs(first.click_x - 0.25) <= 0.02 and abs(first.click_y - 0.75) <= 0.02
    assert second.answer == "no_single_object" and second.click_x is None
