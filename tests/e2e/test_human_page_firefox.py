"""The study page in headless Firefox: answer by keyboard, go back, reload, resume; click.

Firefox is driven through Marionette, its built-in remote protocol, so nothing else is needed:
each message is JSON framed as ``LENGTH:JSON`` on a TCP socket, a command ``[0, id, name,
params]`` and its reply ``[1, id, error, result]``. The test is skipped when Firefox is not
installed (``.ci/run`` installs Firefox ESR from Debian).
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox")
pytestmark = pytest.mark.skipif(FIREFOX is None, reason="Firefox is not installed")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = os.environ.get("GROUNDBENCH_HUMAN_SCREENSHOT_FIREFOX")  # where to save the page
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the WebDriver key of an element reference
KEYS = {"ArrowLeft": "\ue012", "ArrowRight": "\ue014", "ArrowDown": "\ue015", "Backspace": "\ue003"}
# marionette.port 0: Firefox picks a free port and writes it to MarionetteActivePort
PREFS = {
    "marionette.port": 0,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "app.update.disabledForTesting": True,
}


class Marionette:
    """Just enough of a Marionette client for this test: one command at a time."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.stream = self.sock.makefile("rb")
        self.last_id = 0
        self._read()  # the greeting, {"applicationType": "gecko", "marionetteProtocol": 3}

    def _read(self):
        size = b""
        while (c := self.stream.read(1)) != b":":
            if not c:
                raise ConnectionError("Marionette closed the connection")
            size += c
        return json.loads(self.stream.read(int(size)))

    def command(self, name: str, params: dict | None = None):
        self.last_id += 1
        data = json.dumps([0, self.last_id, name, params or {}]).encode()
        self.sock.sendall(b"%d:%s" % (len(data), data))
        kind, msg_id, error, result = self._read()
        assert (kind, msg_id) == (1, self.last_id)
        if error:
            raise RuntimeError(f"{name}: {error['error']}: {error['message']}")
        return result

    def find(self, css: str) -> dict:
        found = self.command("WebDriver:FindElement", {"using": "css selector", "value": css})
        return {"id": found["value"][ELEMENT]}

    def text(self, css: str) -> str:
        return self.command("WebDriver:GetElementText", self.find(css))["value"]

    def property(self, element: dict, name: str):
        return self.command("WebDriver:GetElementProperty", {**element, "name": name})["value"]

    def press(self, key: str) -> None:
        """Press and release ``key`` (a DOM ``KeyboardEvent.key``) on the focused page."""
        value = KEYS.get(key, key)
        keys = [{"type": "keyDown", "value": value}, {"type": "keyUp", "value": value}]
        actions = [{"type": "key", "id": "keyboard", "actions": keys}]
        self.command("WebDriver:PerformActions", {"actions": actions})

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def _launch(folder: Path) -> tuple[subprocess.Popen, Path]:
    """Start Firefox on a fresh profile under ``folder``; its output goes to ``firefox.log``."""
    profile = folder / "profile"
    profile.mkdir()
    prefs = "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items())
    (profile / "user.js").write_text(prefs)
    args = [FIREFOX, "--headless", "--marionette", "--no-remote", "--profile", str(profile)]
    env = {**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"}
    with open(folder / "firefox.log", "wb") as log:
        proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return proc, profile


def _port(proc: subprocess.Popen, profile: Path) -> int:
    active = profile / "MarionetteActivePort"
    deadline = time.monotonic() + 30
    while not active.exists() or not active.read_text().strip():
        if proc.poll() is not None:
            raise RuntimeError(f"Firefox exited with {proc.returncode} before Marionette listened")
        if time.monotonic() > deadline:
            raise TimeoutError("Marionette did not start within 30 s")
        time.sleep(0.1)
    return int(active.read_text())


@pytest.fixture(scope="module")
def firefox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("firefox")


@pytest.fixture(scope="module")
def firefox(firefox_dir: Path):
    proc, profile = _launch(firefox_dir)
    client = None
    try:
        client = Marionette(_port(proc, profile))
        client.command("WebDriver:NewSession", {"capabilities": {"alwaysMatch": {}}})
        client.command("WebDriver:SetWindowRect", {"width": 1280, "height": 800})
        yield client
    finally:
        if client is not None:
            try:
                client.command("Marionette:Quit", {"flags": ["eForceQuit"]})
            except (OSError, RuntimeError):
                pass  # already gone, or quitting closed the socket first
            client.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # Firefox and its content processes
            proc.wait(timeout=10)


def _helpers():
    path = ROOT / "tests" / "unit" / "human" / "human_study.py"
    spec = importlib.util.spec_from_file_location("human_study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _serving(study: Path):
    """Run ``groundbench human serve`` on ``study``; yield {annotator: URL}."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "groundbench", "human", "serve", str(study), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield dict(proc.stdout.readline().strip().split("\t") for _ in range(3))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _helpers().build_study(tmp_path_factory.mktemp("page"))


@pytest.fixture(scope="module")
def served(built: Path):
    with _serving(built) as urls:
        yield built, urls


def _wait(what: str, read, ok, timeout_s: float = 10.0):
    """Poll ``read()`` until ``ok`` holds for its value; return the value."""
    deadline = time.monotonic() + timeout_s
    while not ok(value := read()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {timeout_s} s")
        time.sleep(0.05)
    return value


def _at(ff: Marionette, prefix: str) -> str:
    return _wait("#progress", lambda: ff.text("#progress"), lambda t: t.startswith(prefix))


def test_keyboard_back_reload_resume(firefox: Marionette, firefox_dir: Path, served) -> None:
    ff, (study, urls) = firefox, served
    queue = json.loads((study / "manifest.json").read_text())["queues"]["ann1"]
    n = len(queue)
    ff.command("WebDriver:Navigate", {"url": urls["ann1"]})
    assert "?t=" not in ff.command("WebDriver:GetCurrentURL")["value"]  # swapped for a cookie
    _at(ff, f"1 / {n}")
    for side in ("#left", "#right"):
        width = lambda s=side: ff.property(ff.find(s), "naturalWidth")  # noqa: E731
        _wait(f"{side} naturalWidth", width, lambda w: w > 0)
    # the style sheet passed the CSP, and the two maps sit side by side at 1,280 px
    body = {**ff.find("body"), "propertyName": "background-color"}
    assert ff.command("WebDriver:GetElementCSSValue", body)["value"] == "rgb(17, 17, 17)"
    left, right = (ff.command("WebDriver:GetElementRect", ff.find(s)) for s in ("#left", "#right"))
    assert left["y"] == right["y"] and left["x"] + left["width"] < right["x"]
    assert right["x"] + right["width"] <= 1280
    for i, key in enumerate(["1", "ArrowRight", "0"]):
        ff.press(key)
        _at(ff, f"{i + 2} / {n}")
    ff.press("Backspace")
    _at(ff, f"3 / {n}")
    chosen = {**ff.find("button.chosen"), "name": "data-answer"}
    assert ff.command("WebDriver:GetElementAttribute", chosen)["value"] == "both_good"
    ff.press("x")  # re-answer item 3: both wrong
    _at(ff, f"4 / {n}")
    if SCREENSHOT:
        shot = ff.command("WebDriver:TakeScreenshot")["value"]
        Path(SCREENSHOT).write_bytes(base64.b64decode(shot))
    ff.command("WebDriver:Refresh")
    assert "3 answered" in _at(ff, f"4 / {n}")
    assert ff.text("#status") == ""  # the page reports a failed request there
    # Firefox prints an uncaught error in the page's script (a CSP-blocked eval, say) to stderr
    origin = urls["ann1"].split("/?")[0]
    log = (firefox_dir / "firefox.log").read_text(errors="replace").splitlines()
    assert [line for line in log if line.startswith(f"JavaScript error: {origin}/")] == []
    _helpers().check_keyboard_session(study, queue)


def test_click_page_records_the_click_position(firefox: Marionette, built: Path, tmp_path) -> None:
    from groundbench.human.prepare import prepare

    spec = json.loads((built.parent / "spec" / "study.yaml").read_text())
    spec |= {"type": "click", "sample": {"n": 4}}
    (tmp_path / "click.yaml").write_text(json.dumps(spec))
    study = prepare(tmp_path / "click.yaml", tmp_path / "S")
    queue = json.loads((study / "manifest.json").read_text())["queues"]["ann1"]
    n = len(queue)
    with _serving(study) as urls:
        ff = firefox
        ff.command("WebDriver:Navigate", {"url": urls["ann1"]})
        _at(ff, f"1 / {n}")
        img = ff.find("#maps img")
        _wait("naturalWidth", lambda: ff.property(img, "naturalWidth"), lambda w: w > 0)
        rect = ff.command("WebDriver:GetElementRect", img)
        # a pointer move with an element origin is relative to the element's centre
        move = {"type": "pointerMove", "origin": {ELEMENT: img["id"]}}
        move |= {"x": round(-0.25 * rect["width"]), "y": round(0.25 * rect["height"])}
        clicks = [move, {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]
        mouse = {"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}}
        ff.command("WebDriver:PerformActions", {"actions": [mouse | {"actions": clicks}]})
        _at(ff, f"2 / {n}")
        ff.press("n")
        _wait("#progress", lambda: ff.text("#progress"), lambda t: "(2 answered)" in t)
    _helpers().check_click_session(study, queue)
