"""Judgements in SQLite inside the study folder: WAL, ``synchronous=FULL``, one transaction
per answer, so an answer acknowledged to the page survives ``kill -9`` of the server.

``judgement`` holds one row per (annotator, item): the current answer, which the analysis
scores. A re-answer with other content first copies the old row into ``history``, so nothing
is overwritten; an identical re-post (a retried request) changes nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

DB_NAME = "judgements.sqlite"
_COLUMNS = (
    "annotator", "item", "answer", "order_json", "click_x", "click_y", "rt_ms",
    "shown_at", "answered_at", "ui_version",
)  # fmt: skip
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS judgement (
  annotator TEXT NOT NULL, item TEXT NOT NULL, answer TEXT NOT NULL, order_json TEXT NOT NULL,
  click_x REAL, click_y REAL, rt_ms INTEGER NOT NULL, shown_at TEXT NOT NULL,
  answered_at TEXT NOT NULL, ui_version TEXT NOT NULL, UNIQUE (annotator, item));
CREATE TABLE IF NOT EXISTS history (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, {", ".join(c + " " for c in _COLUMNS)[:-1]});
"""


@dataclass(frozen=True)
class Judgement:
    """One answer.

    Attributes:
        annotator: annotator id.
        item: opaque item id.
        answer: the answer key (``A``, ``B``, ``both_good``, ``both_wrong``, ``ambiguous``).
        order_json: the screen order of the canonical slots, e.g. ``[1,0]`` (left first).
        click_x / click_y: click position as fractions of the image (None when not a click).
        rt_ms: milliseconds from showing the item to the answer.
        shown_at / answered_at: ISO-8601 UTC times from the server clock.
        ui_version: version of the page that recorded it.
    """

    annotator: str
    item: str
    answer: str
    order_json: str
    click_x: float | None
    click_y: float | None
    rt_ms: int
    shown_at: str
    answered_at: str
    ui_version: str


class Store:
    """The study's judgement database; safe to share between the server's threads."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / DB_NAME
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def record(self, j: Judgement) -> bool:
        """Store ``j``; return False when the same answer was already the current one.

        The transaction commits (and is synced) before this returns.
        """
        cols = ", ".join(_COLUMNS)
        marks = ", ".join("?" for _ in _COLUMNS)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                old = self._db.execute(
                    f"SELECT {cols} FROM judgement WHERE annotator=? AND item=?",
                    (j.annotator, j.item),
                ).fetchone()
                same = old is not None and (old[2], old[3], old[4], old[5]) == (
                    j.answer, j.order_json, j.click_x, j.click_y
                )  # fmt: skip
                if same:
                    self._db.execute("COMMIT")
                    return False
                if old is not None:
                    self._db.execute(f"INSERT INTO history ({cols}) VALUES ({marks})", old)
                    self._db.execute(
                        "DELETE FROM judgement WHERE annotator=? AND item=?", (j.annotator, j.item)
                    )
                self._db.execute(
                    f"INSERT INTO judgement ({cols}) VALUES ({marks})", tuple(asdict(j).values())
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return True

    def answers(self, annotator: str | None = None) -> list[Judgement]:
        """Current answers (of one annotator, or all), sorted by annotator and item."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM judgement"
        args: tuple = ()
        if annotator is not None:
            sql, args = sql + " WHERE annotator=?", (annotator,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY annotator, item", args).fetchall()
        return [Judgement(*r) for r in rows]

    def history(self) -> list[Judgement]:
        """Superseded answers, oldest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM history ORDER BY seq"
            ).fetchall()
        return [Judgement(*r) for r in rows]
