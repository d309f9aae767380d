"""Leaderboard entries: validated reports stored under ``<board>/entries/``.

An entry is one JSON file, ``<board>/entries/<protocol_id>/<method-name>.json``::

    {"entry_schema": 1,
     "model_card": {... what the model saw, with its sha256 ...} or null,
     "report": {... the report.json, unchanged ...},
     "samples_csv": {"encoding": "gzip+base64", "sha256": "<64 hex>", "data": "..."}}

The per-sample file travels inside the entry (gzip with a zero timestamp, then base64),
so ``groundbench compare`` can pair samples long after the report directory is gone, and
its sha256 is re-checked every time the entry is read.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundbench.leaderboard.cards import card_marks, check_card, resolve_card
from groundbench.leaderboard.validate import (
    Submission,
    SubmissionError,
    check_protocol_hash,
    check_report_schema,
    check_samples,
    check_split_metrics,
    protocol_metric_keys,
    validate_report_dir,
)
from groundbench.report.records import Records
from groundbench.report.render import protocol_title
from groundbench.types import UNDECLARED

ENTRY_SCHEMA = 1
ENTRIES_DIR = "entries"
#: Method specs that read the ground truth: checks of the metrics, listed but unranked.
CHECK_METHODS: tuple[str, ...] = ("oracle_box",)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Entry:
    """One report on the board.

    Attributes:
        report: the report's ``report.json`` content.
        table: its per-sample values.
        path: the entry file, or None for a report directory read directly.
        model_card: what the model saw (:mod:`groundbench.leaderboard.cards`), or None.
    """

    report: Mapping[str, Any]
    table: Records
    path: Path | None = None
    model_card: Mapping[str, Any] | None = None

    @property
    def protocol_id(self) -> str:
        """First 12 hex characters of the protocol hash."""
        return self.report["protocol"]["id"]

    @property
    def protocol_name(self) -> str:
        """The protocol's name, e.g. ``synth_test.albef``."""
        return self.report["protocol"]["name"]

    @property
    def protocol_title(self) -> str:
        """The protocol's name with the ``--set`` overrides of the run, if any."""
        return protocol_title(self.report["protocol"])

    @property
    def canonical(self) -> Mapping[str, Any]:
        """The canonical protocol settings (every default filled)."""
        return self.report["protocol"]["canonical"]

    @property
    def method_name(self) -> str:
        """The method's display name."""
        return self.report["method"]["name"]

    @property
    def method_fingerprint(self) -> str:
        """Hash of everything the method's maps depend on."""
        return self.report["method"]["fingerprint"]

    @property
    def supervision(self) -> str:
        """Supervision class: box-free, detector, box-supervised, training-free or undeclared.

        A heatmap file reported ``undeclared`` takes the class its model card declares.
        """
        own = self.report["method"]["supervision"]
        if own == UNDECLARED and self.model_card is not None:
            return self.model_card["supervision"]
        return own

    @property
    def marks(self) -> tuple[str, ...]:
        """The board's model-card warnings (selected on test, saw evaluated images)."""
        return card_marks(self.model_card, self.report["dataset"]["split"])

    @property
    def is_check(self) -> bool:
        """Whether the entry is a check of the metrics (``oracle_box`` reads the ground truth),
        shown beside the methods but never ranked among them."""
        return self.report["method"]["spec"] in CHECK_METHODS

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """Metric display keys in the protocol's order; the first one ranks the board."""
        return protocol_metric_keys(self.canonical, str(self.path))

    def aggregate(self, key: str, tag: str = "all") -> Mapping[str, Any] | None:
        """Return the aggregate dict of metric ``key`` on ``tag``, or None if absent."""
        return self.report["metrics"].get(key, {}).get(tag)


def entry_path(board: str | Path, report: Mapping[str, Any]) -> Path:
    """Return where the entry for ``report`` is stored on ``board``."""
    name = _UNSAFE.sub("-", report["method"]["name"]).strip("-.") or "method"
    return Path(board) / ENTRIES_DIR / report["protocol"]["id"] / f"{name}.json"


def fingerprint_complete(method: Mapping[str, Any]) -> bool:
    """Whether a report's method fingerprint covers everything its maps depend on.

    Reports written before the field existed count as complete unless the method is a
    ``plugin:``, whose fingerprint then covered its code only.
    """
    value = method.get("fingerprint_complete")
    if isinstance(value, bool):
        return value
    return not str(method.get("spec", "")).startswith("plugin:")


def add_entry(
    report_dir: str | Path,
    board: str | Path,
    *,
    replace: bool = False,
    model_card: str | Path | None = None,
) -> Path:
    """Validate a report directory and store it as an entry on ``board``.

    Args:
        report_dir: a directory written by ``groundbench evaluate`` (or by ``groundbench
            probe randomise``: stored under ``<board>/sanity/``, see :mod:`.sanity`).
        board: the leaderboard directory (``leaderboard/``).
        replace: supersede an entry of the same method name whose fingerprint differs
            (a retrained checkpoint, say). A duplicate is refused even so.
        model_card: a ``model_card.yaml`` saying what the model saw, for a report that
            carries none (docs/leaderboard.md, "Model cards").

    Returns:
        The path of the new entry file.

    Raises:
        SubmissionError: the report is invalid (see :mod:`groundbench.leaderboard.validate`),
            was made with ``--limit`` (``dataset.limit`` set), duplicates an entry (same protocol id and method fingerprint), its dataset
            fingerprint differs from the entries already under its protocol, or its name is
            taken by another method and ``replace`` is False.
    """
    from groundbench.leaderboard.sanity import add_sanity_entry, is_sanity_report
    from groundbench.leaderboard.studies import is_human_report

    if is_sanity_report(report_dir):
        return add_sanity_entry(report_dir, board)
    if is_human_report(report_dir):
        raise SubmissionError(
            f"{Path(report_dir) / 'report.json'}: a human-study analysis, not an evaluation "
            "report; add it with `groundbench leaderboard add-human STUDY_DIR REPORT_DIR`"
        )
    submission = validate_report_dir(report_dir)
    report = submission.report
    where = str(Path(report_dir) / "report.json")
    if not fingerprint_complete(report["method"]):
        raise SubmissionError(
            f"{where}: method {report['method']['spec']!r} has a fingerprint that covers its code "
            "only, not its weights, so two different models would look like one entry; declare "
            "what the plugin's maps depend on (fn.depends_on = [paths] and/or fn.fingerprint = "
            "a function returning a string; docs/plugins.md) and evaluate again"
        )
    limit = report["dataset"].get("limit")
    if limit is not None:
        raise SubmissionError(
            f"{where}: dataset.limit is {limit}: the report was made with --limit {limit} and "
            "scores only the first samples of the split, so it is not comparable with full "
            "runs; evaluate again without --limit and add that report"
        )
    card = resolve_card(report, model_card, where)
    target = entry_path(board, report)
    for other in load_entries(board, protocol_id=report["protocol"]["id"]):
        if other.method_fingerprint == report["method"]["fingerprint"]:
            raise SubmissionError(
                f"{where}: duplicate of {other.path}: protocol {other.protocol_id} already has "
                f"an entry for method fingerprint {other.method_fingerprint[:12]}…"
            )
        if other.report["dataset"]["fingerprint"] != report["dataset"]["fingerprint"]:
            raise SubmissionError(
                f"{where}: dataset fingerprint {report['dataset']['fingerprint'][:12]}… differs "
                f"from {other.path} ({other.report['dataset']['fingerprint'][:12]}…) under the same "
                "protocol: the samples differ, so the rows would not be comparable; check the "
                "dataset files and version"
            )
        if other.path == target and not replace:
            raise SubmissionError(
                f"{where}: {target} already holds method {other.method_name!r} with another "
                f"fingerprint ({other.method_fingerprint[:12]}…); pass --replace to supersede it"
            )
    write_atomic(target, encode_entry(submission, card))
    return target


def encode_entry(submission: Submission, model_card: Mapping[str, Any] | None = None) -> bytes:
    """Serialise a submission (and its model card) as entry-file bytes (deterministic)."""
    payload = {
        "entry_schema": ENTRY_SCHEMA,
        "model_card": model_card,
        "report": submission.report,
        "samples_csv": {
            "encoding": "gzip+base64",
            "sha256": submission.report["samples"]["sha256"],
            "data": _pack(submission.samples_csv),
        },
    }
    if submission.split_files:  # absent otherwise: older entries keep their bytes
        payload["split_files"] = {
            name: {"encoding": "gzip+base64", "data": _pack(data)}
            for name, data in sorted(submission.split_files.items())
        }
    return (json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode(
        "utf-8"
    )


def _pack(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data, mtime=0)).decode("ascii")


def read_entry(path: str | Path) -> Entry:
    """Read and re-validate an entry file.

    Raises:
        SubmissionError: the file is not an entry, or its report or samples fail validation.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        report, blob = payload["report"], payload["samples_csv"]
        if payload.get("entry_schema") != ENTRY_SCHEMA or blob["encoding"] != "gzip+base64":
            raise ValueError(
                f"entry_schema {payload.get('entry_schema')!r}, encoding {blob['encoding']!r}"
            )
        data = gzip.decompress(base64.b64decode(blob["data"], validate=True))
        split_files = {
            name: gzip.decompress(base64.b64decode(f["data"], validate=True))
            for name, f in (payload.get("split_files") or {}).items()
        }
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise SubmissionError(
            f"{path}: not a leaderboard entry (schema {ENTRY_SCHEMA}): {exc}; entries are written "
            "by `groundbench leaderboard add`"
        ) from None
    check_report_schema(report, str(path))
    check_protocol_hash(report, str(path))
    card = payload.get("model_card")
    if card is not None:
        check_card(card, f"{path}: model_card")
    submission = check_samples(report, data, f"{path} (samples_csv)")
    check_split_metrics(report, split_files, submission.table, str(path))
    return Entry(report=submission.report, table=submission.table, path=path, model_card=card)


def read_any(path: str | Path) -> Entry:
    """Read an entry file or a report directory (what ``groundbench compare`` accepts)."""
    path = Path(path)
    if path.is_dir():
        submission = validate_report_dir(path)
        card = resolve_card(submission.report, None, str(path / "report.json"))
        return Entry(report=submission.report, table=submission.table, model_card=card)
    return read_entry(path)


def load_entries(board: str | Path, *, protocol_id: str | None = None) -> list[Entry]:
    """Read every entry on ``board`` (or under one protocol id), sorted by path."""
    root = Path(board) / ENTRIES_DIR
    if protocol_id is not None:
        root = root / protocol_id
    return [read_entry(p) for p in sorted(root.glob("**/*.json"))]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; board files are shared
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
