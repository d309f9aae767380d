"""The study server: a pure request handler (:meth:`StudyApp.handle`) behind the standard
library's threading HTTP server.

Guards, in order: the ``Host`` header must name this server (DNS rebinding → 421); a chunked
body → 411, a body over 4 KiB → 413; a POST must be same-origin JSON with the ``X-Groundbench`` header (→ 403);
the annotator's token, given once in the URL, is exchanged for an ``HttpOnly;
SameSite=Strict`` cookie and compared in constant time (→ 403); images are served only by
the opaque id of one of the annotator's own items (anything else → 404, no path is ever built
from the URL). Every response carries a restrictive Content-Security-Policy.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from groundbench.human.page import APP_CSS, APP_JS, UI_VERSION, answers_for, page_html
from groundbench.human.prepare import MANIFEST, TOKENS
from groundbench.human.store import Judgement, Store
from groundbench.human.study import StudyError

MAX_BODY = 4096
COOKIE = "gb_session"
_IMG = re.compile(r"^/img/([0-9a-f]{64})\.png$")
_SECURITY = (
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
     "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)  # fmt: skip


@dataclass(frozen=True)
class Response:
    """Status, headers and body of one reply."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def _reply(status: int, body: bytes, ctype: str, *extra: tuple[str, str]) -> Response:
    cache = "private, max-age=86400" if ctype == "image/png" else "no-store"
    return Response(
        status, (("Content-Type", ctype), ("Cache-Control", cache), *_SECURITY, *extra), body
    )


def _json(status: int, obj) -> Response:
    return _reply(status, json.dumps(obj, sort_keys=True).encode(), "application/json")


def _error(status: int, message: str) -> Response:
    return _reply(status, message.encode() + b"\n", "text/plain; charset=utf-8")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class StudyApp:
    """Everything the server does, as a function of (method, target, headers, body).

    Args:
        folder: the prepared study folder.
        port: the port the server listens on (part of every allowed ``Host``).
        host: the bound host; a non-loopback one is allowed as a ``Host`` too.
    """

    def __init__(self, folder: str | Path, port: int, host: str = "127.0.0.1") -> None:
        folder = Path(folder)
        try:
            self.manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            self.tokens = json.loads((folder / TOKENS).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise StudyError(
                f"{folder}: not a prepared study folder ({exc.filename} missing); run `groundbench human prepare`"
            ) from None
        self.store = Store(folder)
        self.items = {it["id"]: it for it in self.manifest["items"]}
        self.queues = self.manifest["queues"]
        self.kind, self.k = self.manifest["type"], int(self.manifest["design"]["k"])
        self.answers = answers_for(self.kind, self.k)
        self.images = {
            a: {self.items[q["item"]]["slots"][s]["img"] for q in queue for s in q["order"]}
            for a, queue in self.queues.items()
        }
        names = {"127.0.0.1", "localhost", "[::1]"} | ({host} if not is_loopback(host) else set())
        self.hosts = {f"{h}:{port}" for h in names}
        self.origins = {f"http://{h}" for h in self.hosts}
        self._shown: dict[tuple[str, str], str] = {}

    def urls(self, host: str, port: int) -> dict[str, str]:
        """One start URL per annotator (the token travels once, then lives in a cookie)."""
        shown = f"[{host}]" if ":" in host else host
        return {a: f"http://{shown}:{port}/?t={t}" for a, t in sorted(self.tokens.items())}

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Response:
        """Answer one request; ``headers`` keys are compared case-insensitively."""
        h = {k.lower(): v for k, v in headers.items()}
        if h.get("host") not in self.hosts:
            return _error(421, "unknown Host header")
        if "transfer-encoding" in h:
            return _error(411, "send a Content-Length; chunked bodies are refused")
        length = h.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY or len(body) > MAX_BODY:
            return _error(413, "request body too large")
        url = urlsplit(target)
        if method == "GET" and url.path == "/" and "t" in parse_qs(url.query):
            return self._login(parse_qs(url.query)["t"][0])
        if method == "GET" and url.path == "/favicon.ico":
            return _reply(204, b"", "image/x-icon")
        if method == "GET" and url.path in ("/static/app.js", "/static/app.css"):
            js = url.path.endswith(".js")
            return _reply(200, APP_JS if js else APP_CSS, "text/javascript" if js else "text/css")
        who = self._annotator(h.get("cookie", ""))
        if who is None:
            return _error(
                403, "open the URL with your token that `groundbench human serve` printed"
            )
        if method == "POST":
            refusal = self._check_post(h)
            return refusal or (
                self._answer(who, body) if url.path == "/api/answer" else _error(404, "not found")
            )
        if method != "GET":
            return _error(405, "method not allowed")
        if url.path == "/":
            return _reply(200, page_html(who, self.kind, self.k), "text/html; charset=utf-8")
        if url.path == "/api/item":
            return self._item(who, parse_qs(url.query).get("i", [None])[0])
        m = _IMG.match(url.path)
        if m and m.group(1) in self.images[who]:
            return _reply(200, self._image_bytes(m.group(1)), "image/png")
        return _error(404, "not found")

    def _login(self, token: str) -> Response:
        if self._match(token) is None:
            return _error(403, "unknown token")
        cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
        return Response(
            303,
            (("Location", "/"), ("Set-Cookie", cookie), ("Cache-Control", "no-store"), *_SECURITY),
            b"",
        )

    def _match(self, token: str) -> str | None:
        found = None
        for name, secret in self.tokens.items():  # every comparison runs: constant time
            if hmac.compare_digest(token.encode(), secret.encode()):
                found = name
        return found

    def _annotator(self, cookie_header: str) -> str | None:
        try:
            jar = SimpleCookie(cookie_header)
        except CookieError:
            return None
        return self._match(jar[COOKIE].value) if COOKIE in jar else None

    def _check_post(self, h: Mapping[str, str]) -> Response | None:
        if h.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(403, "POST must be application/json")
        if h.get("x-groundbench") != "1":
            return _error(403, "POST needs the X-Groundbench header")
        if "origin" in h and h["origin"] not in self.origins:
            return _error(403, "cross-origin POST refused")
        if h.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return _error(403, "cross-site POST refused")
        return None

    def _position(self, who: str) -> int:
        done = {j.item for j in self.store.answers(who)}
        queue = self.queues[who]
        return next((i for i, q in enumerate(queue) if q["item"] not in done), len(queue))

    def _item(self, who: str, index: str | None) -> Response:
        queue = self.queues[who]
        if not queue:
            return _error(404, "this annotator has no items")
        if index is None:
            i = min(self._position(who), len(queue) - 1)
        elif index.isdigit() and int(index) < len(queue):
            i = int(index)
        else:
            return _error(404, "no such position")
        entry = queue[i]
        item = self.items[entry["item"]]
        answers = {j.item: j.answer for j in self.store.answers(who)}
        self._shown.setdefault((who, item["id"]), _now())
        return _json(200, {
            "index": i, "total": len(queue), "answered": len(answers), "item": item["id"],
            "phrase": item["phrase"], "answer": answers.get(item["id"]),
            "images": [item["slots"][s]["img"] for s in entry["order"]], "type": self.kind,
        })  # fmt: skip

    def _answer(self, who: str, body: bytes) -> Response:
        try:
            data = json.loads(body.decode("utf-8"))
            item, answer, rt = data["item"], data["answer"], data["rt_ms"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            return _error(400, "body must be JSON with item, answer and rt_ms")
        order = next((q["order"] for q in self.queues[who] if q["item"] == item), None)
        click = _click(data) if self.kind == "click" and answer == "click" else None
        known = answer in self.answers or click is not None
        if order is None or not known or not isinstance(rt, int) or isinstance(rt, bool) or rt < 0:
            return _error(400, "unknown item or answer, a bad click or a bad rt_ms")
        now = _now()
        shown = self._shown.pop((who, item), now)
        x, y = click or (None, None)
        j = Judgement(who, item, answer, json.dumps(order), x, y, rt, shown, now, UI_VERSION)
        stored = self.store.record(j)
        return _json(
            200,
            {
                "ok": True,
                "stored": stored,
                "next": min(self._position(who), len(self.queues[who]) - 1),
            },
        )

    def _image_bytes(self, digest: str) -> bytes:
        return (self.store.path.parent / "img" / f"{digest}.png").read_bytes()


def _click(data: dict) -> tuple[float, float] | None:
    """``(x, y)`` fractions of the image from a click answer, or None when not both in [0, 1]."""
    x, y = data.get("click_x"), data.get("click_y")
    ok = all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in (x, y)
    )
    return (float(x), float(y)) if ok else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def make_server(
    folder: str | Path, host: str = "127.0.0.1", port: int = 0, allow_remote: bool = False
):
    """Bind the server (port 0 picks a free port); return ``(server, app)``.

    Raises:
        StudyError: ``host`` is not a loopback address and ``allow_remote`` is False, or it is
            the wildcard address (the ``Host`` allowlist needs the name browsers will use).
    """
    if not is_loopback(host) and not allow_remote:
        raise StudyError(
            f"--host {host} is reachable from other machines; add --allow-remote to mean it"
        )
    if host.strip("[]") in ("0.0.0.0", "::", ""):
        raise StudyError(
            f"--host {host or repr(host)} names no address the browsers could send as Host; bind "
            "the machine's own address on the lab network (e.g. --host 192.168.1.20)"
        )

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _run(self) -> None:
            length = self.headers.get("Content-Length", "0")
            n = int(length) if length.isdigit() else 0
            body = self.rfile.read(n) if 0 < n <= MAX_BODY else b""
            reply = app.handle(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(reply.status)
            for k, v in reply.headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(reply.body)))
            if n > MAX_BODY or "Transfer-Encoding" in self.headers:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_DELETE = _run

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
            pass

    server = ThreadingHTTPServer((host.strip("[]"), port), Handler)
    app = StudyApp(folder, server.server_address[1], host)
    return server, app
