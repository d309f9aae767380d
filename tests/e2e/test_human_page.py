"""The study page in headless Chromium, driven by keyboard: answer, go back, reload, resume.

Playwright drives the system Chromium (``executable_path``); the test is skipped when either
is missing (``.ci/run`` installs both: Chromium from Debian, Playwright from the dev extra).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from groundbench.human.store import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = os.environ.get("GROUNDBENCH_HUMAN_SCREENSHOT")  # where to save the page, if set


def _helpers():
    path = ROOT / "tests" / "unit" / "human" / "human_study.py"
    spec = importlib.util.spec_from_file_location("human_study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _serve(study: Path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "groundbench", "human", "serve", str(study), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    urls = dict(proc.stdout.readline().strip().split("\t") for _ in range(3))
    return proc, urls


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _helpers().build_study(tmp_path_factory.mktemp("page"))


@pytest.fixture(scope="module")
def served(built: Path):
    proc, urls = _serve(built)
    yield built, urls
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)


def _progress(page) -> str:
    return page.text_content("#progress")


def _at(page, prefix: str) -> None:
    """Wait until the progress counter starts with ``prefix`` (no eval: the page's CSP forbids it)."""
    playwright.expect(page.locator("#progress")).to_have_text(re.compile("^" + re.escape(prefix)))


def test_keyboard_back_reload_resume(served, tmp_path: Path) -> None:
    study, urls = served
    manifest = json.loads((study / "manifest.json").read_text())
    queue = manifest["queues"]["ann1"]
    n = len(queue)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(urls["ann1"])
        assert "?t=" not in page.url  # the token left the address bar for a cookie
        _at(page, f"1 / {n}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.getElementById('left').naturalWidth") > 0
        assert page.evaluate("document.getElementById('right').naturalWidth") > 0
        for i, key in enumerate(["1", "ArrowRight", "0"]):
            page.keyboard.press(key)
            _at(page, f"{i + 2} / {n}")
        page.keyboard.press("Backspace")
        _at(page, f"3 / {n}")
        assert page.get_attribute("button.chosen", "data-answer") == "both_good"
        page.keyboard.press("x")  # re-answer item 3: both wrong
        _at(page, f"4 / {n}")
        if SCREENSHOT:
            page.screenshot(path=SCREENSHOT)
        page.reload()
        _at(page, f"4 / {n}")
        assert "3 answered" in _progress(page)
        browser.close()
    assert errors == []
    _helpers().check_keyboard_session(study, queue)


def test_choose_page_by_keyboard(built: Path, tmp_path: Path) -> None:
    from groundbench.human.prepare import prepare

    spec = json.loads((built.parent / "spec" / "study.yaml").read_text())
    spec |= {"type": "choose", "k": 2, "sample": {"n": 3}}
    (tmp_path / "choose.yaml").write_text(json.dumps(spec))
    study = prepare(tmp_path / "choose.yaml", tmp_path / "S")
    queue = json.loads((study / "manifest.json").read_text())["queues"]["ann1"]
    n = len(queue)
    proc, urls = _serve(study)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(urls["ann1"])
            _at(page, f"1 / {n}")
            assert page.locator("#maps img").count() == 2
            for i, key in enumerate(["2", "1", "n"]):
                page.keyboard.press(key)
                _at(page, f"{i + 2} / {n}")
            page.keyboard.press("Backspace")
            _at(page, f"3 / {n}")
            assert page.get_attribute("button.chosen", "data-answer") == "none"
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    store = Store(study)
    try:
        got = {j.item: (j.answer, json.loads(j.order_json)) for j in store.answers("ann1")}
    finally:
        store.close()
    assert [got[q["item"]] for q in queue[:3]] == [
        ("2", queue[0]["order"]),
        ("1", queue[1]["order"]),
        ("none", queue[2]["order"]),
    ]


def test_click_page_records_the_click_position(built: Path, tmp_path: Path) -> None:
    from groundbench.human.prepare import prepare

    spec = json.loads((built.parent / "spec" / "study.yaml").read_text())
    spec |= {"type": "click", "sample": {"n": 4}}
    (tmp_path / "click.yaml").write_text(json.dumps(spec))
    study = prepare(tmp_path / "click.yaml", tmp_path / "S")
    queue = json.loads((study / "manifest.json").read_text())["queues"]["ann1"]
    n = len(queue)
    proc, urls = _serve(study)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(urls["ann1"])
            _at(page, f"1 / {n}")
            page.wait_for_load_state("networkidle")
            box = page.locator("#maps img").bounding_box()
            page.mouse.click(box["x"] + 0.25 * box["width"], box["y"] + 0.75 * box["height"])
            _at(page, f"2 / {n}")
            page.keyboard.press("n")
            playwright.expect(page.locator("#progress")).to_contain_text("(2 answered)")
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    _helpers().check_click_session(study, queue)
