"""Durable judgements: pragmas, history, and no acknowledged answer lost to ``kill -9``."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from human_study import PORT, login

from groundbench.human.server import StudyApp
from groundbench.human.store import Judgement, Store

ROOT = Path(__file__).resolve().parents[3]


def _j(answer: str, rt: int = 1) -> Judgement:
    return Judgement("a", "0123456789abcdef", answer, "[0, 1]", None, None, rt, "t0", "t1", "1")


def test_wal_and_full_sync(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_one_row_per_annotator_item_and_history(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.record(_j("A")) is True
    assert store.record(_j("A")) is False
    assert store.record(_j("B", rt=2)) is True
    assert store.record(_j("both_good", rt=3)) is True
    assert [j.answer for j in store.answers()] == ["both_good"]
    assert [j.answer for j in store.history()] == ["A", "B"]
    store.close()
    again = Store(tmp_path)
    assert [j.answer for j in again.answers()] == ["both_good"]
    again.close()


def _serve(study: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "groundbench", "human", "serve", str(study), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    urls = {}
    while len(urls) < 3:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        name, url = line.strip().split("\t")
        urls[name] = url
    return proc, urls


def test_kill_9_loses_no_acknowledged_answer_and_restart_resumes(study: Path) -> None:
    proc, urls = _serve(study)
    port = int(urls["ann1"].split(":")[2].split("/")[0])
    token = urls["ann1"].split("?t=")[1]
    host = f"127.0.0.1:{port}"
    queue = json.loads((study / "manifest.json").read_text())["queues"]["ann1"]
    acked: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", f"/?t={token}", headers={"Host": host})
        reply = conn.getresponse()
        reply.read()
        cookie = reply.getheader("Set-Cookie").split(";")[0]
        rt = 0
        try:
            while not stop.is_set():
                rt += 1
                # the last item stays unanswered; each re-answer differs, so each is stored
                n = len(queue) - 1
                item = queue[rt % n]["item"]
                body = json.dumps({"item": item, "answer": "AB"[(rt // n) % 2], "rt_ms": rt})
                headers = {
                    "Host": host, "Cookie": cookie, "Content-Type": "application/json",
                    "X-Groundbench": "1",
                }  # fmt: skip
                conn.request("POST", "/api/answer", body=body, headers=headers)
                got = conn.getresponse()
                if got.status == 200 and json.loads(got.read())["ok"]:
                    acked.append(rt)
        except (OSError, http.client.HTTPException):
            return

    worker = threading.Thread(target=stream)
    worker.start()
    deadline = time.monotonic() + 20
    while len(acked) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    worker.join()
    assert len(acked) >= 30
    store = Store(study)
    kept = {j.rt_ms for j in store.answers()} | {j.rt_ms for j in store.history()}
    store.close()
    assert set(acked) <= kept
    app = StudyApp(study, PORT)
    try:
        headers = login(app, "ann1")
        item = json.loads(app.handle("GET", "/api/item", headers).body)
        assert item["index"] == len(queue) - 1 and item["answered"] == len(queue) - 1
    finally:
        app.store.close()
