"""The study server's pure handler: every refusal, blinding, idempotence, resume, round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from human_study import HOST, PORT, login, post

from groundbench.human.analyze import export_jsonl
from groundbench.human.server import MAX_BODY, StudyApp, make_server
from groundbench.human.study import StudyError


@pytest.fixture
def app(study: Path) -> StudyApp:
    a = StudyApp(study, PORT)
    yield a
    a.store.close()


def _first(app: StudyApp, headers) -> dict:
    reply = app.handle("GET", "/api/item", headers)
    assert reply.status == 200
    return json.loads(reply.body)


@pytest.mark.parametrize("host", ["evil.example:8765", "127.0.0.1:9999", "", "localhost"])
def test_foreign_host_is_refused(app: StudyApp, host: str) -> None:
    headers = login(app, "ann1") | {"Host": host}
    for path in ("/", "/api/item", "/static/app.js"):
        assert app.handle("GET", path, headers).status == 421


def test_loopback_names_are_allowed(app: StudyApp) -> None:
    for host in (f"localhost:{PORT}", f"[::1]:{PORT}"):
        assert app.handle("GET", "/static/app.css", {"Host": host}).status == 200


def test_token_becomes_a_strict_http_only_cookie(app: StudyApp) -> None:
    token = json.loads((app.store.path.parent / "tokens.json").read_text())["ann1"]
    reply = app.handle("GET", f"/?t={token}", HOST)
    assert reply.status == 303 and reply.header("Location") == "/"
    cookie = reply.header("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_missing_or_wrong_token_is_refused(app: StudyApp) -> None:
    assert app.handle("GET", "/", HOST).status == 403
    assert app.handle("GET", "/api/item", HOST).status == 403
    assert app.handle("GET", "/?t=wrong", HOST).status == 403
    bad = {**HOST, "Cookie": "gb_session=wrong"}
    assert app.handle("GET", "/api/item", bad).status == 403
    assert app.handle("GET", "/api/item", {**HOST, "Cookie": "gb_session=\x00;;="}).status == 403


def test_tokens_file_is_private(study: Path) -> None:
    assert (study / "tokens.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "extra",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": f"http://127.0.0.1:{PORT + 1}"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"X-Groundbench": "0"},
    ],
)
def test_cross_origin_or_non_json_post_is_refused(app: StudyApp, extra) -> None:
    headers = login(app, "ann1")
    item = _first(app, headers)
    reply = post(app, headers, {"item": item["item"], "answer": "A", "rt_ms": 10}, **extra)
    assert reply.status == 403
    assert app.store.answers() == []


def test_same_origin_post_is_accepted(app: StudyApp) -> None:
    headers = login(app, "ann1")
    item = _first(app, headers)
    extra = {"Origin": f"http://127.0.0.1:{PORT}", "Sec-Fetch-Site": "same-origin"}
    assert (
        post(app, headers, {"item": item["item"], "answer": "A", "rt_ms": 10}, **extra).status
        == 200
    )


def test_oversized_body_is_refused(app: StudyApp) -> None:
    headers = login(app, "ann1")
    item = _first(app, headers)
    big = {"item": item["item"], "answer": "A", "rt_ms": 1, "pad": "x" * MAX_BODY}
    assert post(app, headers, big).status == 413
    h = {**headers, "Content-Type": "application/json", "X-Groundbench": "1"}
    assert app.handle("POST", "/api/answer", {**h, "Content-Length": "99999999"}, b"").status == 413
    assert app.handle("POST", "/api/answer", {**h, "Content-Length": "-1"}, b"").status == 413
    assert app.handle("POST", "/api/answer", {**h, "Transfer-Encoding": "chunked"}).status == 411


@pytest.mark.parametrize(
    "path",
    [
        "/img/..%2f..%2fetc%2fpasswd",
        "/img/../../etc/passwd",
        "/img/%2e%2e/tokens.json",
        "/img//etc/passwd",
        "/img/..\\..\\tokens.json",
        "/img/C:/Windows/win.ini",
        "/img/" + "0" * 64 + ".png",
        "/img/" + "A" * 64 + ".png",
        "/tokens.json",
        "/manifest.json",
        "/judgements.sqlite",
        "/static/../tokens.json",
    ],
)
def test_traversal_and_unknown_images_are_refused(app: StudyApp, path: str) -> None:
    reply = app.handle("GET", path, login(app, "ann1"))
    assert reply.status == 404
    assert b"passwd" not in reply.body and b"ann1" not in reply.body


def test_images_are_served_by_id_only_to_their_annotator(app: StudyApp, study: Path) -> None:
    headers = login(app, "ann1")
    item = _first(app, headers)
    digest = item["images"][0]
    reply = app.handle("GET", f"/img/{digest}.png", headers)
    assert reply.status == 200 and reply.header("Content-Type") == "image/png"
    assert reply.body == (study / "img" / f"{digest}.png").read_bytes()
    foreign = set().union(*app.images.values()) - app.images["ann1"]
    for other in foreign:
        assert app.handle("GET", f"/img/{other}.png", headers).status == 404


def test_pages_are_blind_and_locked_down(app: StudyApp) -> None:
    headers = login(app, "ann1")
    page = app.handle("GET", "/", headers)
    assert page.status == 200
    csp = page.header("Content-Security-Policy")
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert b"<script>" not in page.body and b"onclick" not in page.body
    sent = page.body + b"".join(
        app.handle("GET", f"/api/item?i={i}", headers).body for i in range(len(app.queues["ann1"]))
    )
    for secret in (b"centre_prior", b"uniform", b"gold", b"order", b"synth/test"):
        assert secret not in sent


def test_duplicate_post_is_idempotent_and_reanswers_keep_history(app: StudyApp) -> None:
    headers = login(app, "ann1")
    item = _first(app, headers)
    answer = {"item": item["item"], "answer": "B", "rt_ms": 1234}
    first, again = post(app, headers, answer), post(app, headers, answer)
    assert json.loads(first.body)["stored"] is True
    assert json.loads(again.body)["stored"] is False
    assert len(app.store.answers()) == 1 and app.store.history() == []
    post(app, headers, answer | {"answer": "A"})
    assert [j.answer for j in app.store.answers()] == ["A"]
    assert [j.answer for j in app.store.history()] == ["B"]


def test_bad_answers_are_refused(app: StudyApp) -> None:
    headers = login(app, "ann1")
    item = _first(app, headers)["item"]
    own = {q["item"] for q in app.queues["ann1"]}
    other = next(q["item"] for q in app.queues["ann2"] if q["item"] not in own)
    cases = [
        {"item": item, "answer": "left", "rt_ms": 1},
        {"item": item, "answer": "A", "rt_ms": -1},
        {"item": item, "answer": "A", "rt_ms": True},
        {"item": item, "answer": "A"},
        {"item": other, "answer": "A", "rt_ms": 1},
    ]
    for body in cases:
        assert post(app, headers, body).status == 400
    h = {**headers, "Content-Type": "application/json", "X-Groundbench": "1"}
    assert (
        app.handle("POST", "/api/answer", h | {"Content-Length": "3"}, b"\xff\xfe{").status == 400
    )
    assert app.store.answers() == []


def test_resumes_at_the_first_unanswered_item_after_a_restart(study: Path, app: StudyApp) -> None:
    headers = login(app, "ann2")
    for _ in range(2):
        item = _first(app, headers)
        post(app, headers, {"item": item["item"], "answer": "A", "rt_ms": 900})
    assert _first(app, headers)["index"] == 2
    back = json.loads(app.handle("GET", "/api/item?i=0", headers).body)
    assert back["index"] == 0 and back["answer"] == "A"
    app.store.close()
    again = StudyApp(study, PORT)
    try:
        item = _first(again, headers)
        assert (item["index"], item["answered"]) == (2, 2)
        assert again.handle("GET", "/api/item?i=99", headers).status == 404
        assert again.handle("GET", "/api/item?i=-1", headers).status == 404
    finally:
        again.store.close()


def test_every_field_round_trips_to_the_export(app: StudyApp, study: Path) -> None:
    headers = login(app, "ann3")
    item = _first(app, headers)
    post(app, headers, {"item": item["item"], "answer": "ambiguous", "rt_ms": 4321})
    data, digest = export_jsonl(study)
    (row,) = [json.loads(line) for line in data.decode().splitlines()]
    entry = next(q for q in app.queues["ann3"] if q["item"] == item["item"])
    assert row["annotator"] == "ann3" and row["item"] == item["item"]
    assert row["answer"] == "ambiguous" and row["rt_ms"] == 4321
    assert json.loads(row["order_json"]) == entry["order"]
    assert row["shown_at"] <= row["answered_at"] and row["ui_version"] == "1"
    assert row["status"] == "current" and row["click_x"] is None


def test_non_loopback_host_needs_an_explicit_flag(study: Path) -> None:
    with pytest.raises(StudyError, match="--allow-remote"):
        make_server(study, host="0.0.0.0", port=0)
    with pytest.raises(StudyError, match="own address"):
        make_server(study, host="0.0.0.0", port=0, allow_remote=True)


def test_a_lab_address_is_an_allowed_host(study: Path) -> None:
    app = StudyApp(study, PORT, host="192.0.2.7")
    try:
        assert app.handle("GET", "/static/app.css", {"Host": f"192.0.2.7:{PORT}"}).status == 200
        assert app.handle("GET", "/static/app.css", {"Host": f"192.0.2.8:{PORT}"}).status == 421
        assert app.urls("192.0.2.7", PORT)["ann1"].startswith(f"http://192.0.2.7:{PORT}/?t=")
    finally:
        app.store.close()


def test_cli_serve_refuses_a_remote_host_without_the_flag(study: Path) -> None:
    from click.testing import CliRunner

    from groundbench.cli import main

    result = CliRunner().invoke(main, ["human", "serve", str(study), "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "--allow-remote" in result.output
    assert "Traceback" not in result.output


def test_the_socket_server_applies_the_same_guards(study: Path) -> None:
    import http.client
    import threading

    server, app = make_server(study, port=0)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        token = json.loads((study / "tokens.json").read_text())["ann1"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", f"/?t={token}")
        reply = conn.getresponse()
        reply.read()
        assert reply.status == 303
        cookie = reply.getheader("Set-Cookie").split(";")[0]
        conn.request("GET", "/img/..%2f..%2fetc%2fpasswd", headers={"Cookie": cookie})
        reply = conn.getresponse()
        assert reply.status == 404 and b"root:" not in reply.read()
        conn.request("GET", "/", headers={"Cookie": cookie, "Host": "evil.example"})
        reply = conn.getresponse()
        reply.read()
        assert reply.status == 421
        big = b"{" + b" " * (MAX_BODY + 10) + b"}"
        headers = {"Cookie": cookie, "Content-Type": "application/json", "X-Groundbench": "1"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", "/api/answer", body=big, headers=headers)
        reply = conn.getresponse()
        assert reply.status == 413
    finally:
        server.shutdown()
        server.server_close()
        app.store.close()
