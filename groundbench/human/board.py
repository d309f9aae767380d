"""Human studies on a leaderboard: verified, stored beside the entries, recomputed at build.

``groundbench leaderboard add-human S/ R/`` takes a study folder (``human prepare``) and its
analysis (``human analyze S/ --out R/``) and stores, as ``<board>/human/<protocol_id>/
<study_id[:12]>.json``, everything the board needs to recompute the analysis: the report,
the manifest, the lock and the exported judgements (gzip, then base64). It refuses when:

- the study's lock, manifest and design disagree (``study_id`` is the design's hash, the
  manifest's sha256 is the lock's), or an image differs from its hash in the lock;
- the judgements or the exclusions changed since the analysis (their hashes are in the
  report), or ``report.json`` differs from the statistics recomputed from the judgements;
- a method of the study has no entry on the board with the study's protocol id and the
  method's fingerprint (or is there only under another protocol).

A newer analysis of the same study replaces the stored one. Every stored study is verified
and recomputed again when the board is built (:func:`load_human_studies`).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from groundbench.human.analyze import analysis_hash, compute_report, export_jsonl
from groundbench.human.prepare import LOCK, MANIFEST, STUDY_COPY
from groundbench.human.stats import wilson
from groundbench.human.study import StudyError, canonical_json, read_analysis_settings
from groundbench.leaderboard.entries import Entry, load_entries, write_atomic
from groundbench.leaderboard.studies import (
    HUMAN_DIR,
    MEASURES,
    HumanScore,
    HumanStudy,
    stored_study_files,
)
from groundbench.leaderboard.validate import SubmissionError
from groundbench.protocol import protocol_hash

RECORD_SCHEMA = 1


def add_human_study(study_dir: str | Path, report_dir: str | Path, board: str | Path) -> Path:
    """Verify a study folder and its analysis against ``board``; store it; return the file.

    Raises:
        SubmissionError: a check fails (the message names the file, the check and the fix).
    """
    study_dir, report_dir = Path(study_dir), Path(report_dir)
    report = _read_json(report_dir / "report.json", "`groundbench human analyze S/ --out R/`")
    manifest_path = study_dir / MANIFEST
    manifest_bytes = _read_bytes(manifest_path)
    manifest = json.loads(manifest_bytes)
    lock = _read_json(study_dir / LOCK, "`groundbench human prepare`")
    if hashlib.sha256(manifest_bytes).hexdigest() != lock.get("manifest_sha256"):
        raise SubmissionError(
            f"{manifest_path}: its sha256 is not the one in {LOCK}; the study folder was "
            "edited after `groundbench human prepare`; prepare it again"
        )
    for digest in lock.get("images", []):
        image = study_dir / "img" / f"{digest}.png"
        if not image.is_file() or hashlib.sha256(image.read_bytes()).hexdigest() != digest:
            raise SubmissionError(
                f"{image}: missing or not the image its name hashes; the annotators may have "
                "seen other maps than the study recorded; prepare the study again"
            )
    if report.get("study_id") != manifest.get("study_id"):
        raise SubmissionError(
            f"{report_dir / 'report.json'}: analyses study {str(report.get('study_id'))[:12]}, "
            f"but {study_dir} holds study {str(manifest.get('study_id'))[:12]}; pass the study "
            "folder the report was made from"
        )
    try:
        settings = read_analysis_settings(study_dir / STUDY_COPY)
    except StudyError as exc:
        raise SubmissionError(str(exc)) from None
    if analysis_hash(settings) != report.get("analysis_hash"):
        raise SubmissionError(
            f"{study_dir / STUDY_COPY}: its exclusions or min_response_ms changed since the "
            "analysis; run `groundbench human analyze` again and add the new report"
        )
    judgements, digest = export_jsonl(study_dir)
    if digest != report.get("judgements_sha256"):
        raise SubmissionError(
            f"{study_dir}: the judgements changed since the analysis (sha256 {digest[:12]}… vs "
            f"{str(report.get('judgements_sha256'))[:12]}… in the report); run `groundbench "
            "human analyze` again and add the new report"
        )
    record = {
        "human_schema": RECORD_SCHEMA,
        "report": report,
        "manifest": manifest,
        "lock": lock,
        "judgements": {
            "encoding": "gzip+base64",
            "sha256": digest,
            "data": base64.b64encode(gzip.compress(judgements, mtime=0)).decode("ascii"),
        },
    }
    where = str(report_dir / "report.json")
    study = _verify(record, load_entries(board), where)
    target = Path(board) / HUMAN_DIR / study.protocol_id / f"{study.short_id}.json"
    text = json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomic(target, text.encode("utf-8"))
    return target


def load_human_studies(board: str | Path, entries: Sequence[Entry]) -> list[HumanStudy]:
    """Every stored study of ``board``, verified and recomputed against ``entries``.

    Raises:
        SubmissionError: a stored study fails a check of :func:`add_human_study`.
    """
    studies = []
    for path in stored_study_files(board):
        record = _read_json(path, "`groundbench leaderboard add-human`")
        studies.append(_verify(record, entries, str(path)))
    return studies


def _verify(record: Mapping[str, Any], entries: Sequence[Entry], where: str) -> HumanStudy:
    """The checks that need only the stored record and the board's entries."""
    try:
        report, manifest, lock = record["report"], record["manifest"], record["lock"]
        blob = record["judgements"]
        if record.get("human_schema") != RECORD_SCHEMA or blob["encoding"] != "gzip+base64":
            raise ValueError(f"human_schema {record.get('human_schema')!r}")
        judgements = gzip.decompress(base64.b64decode(blob["data"], validate=True))
        design = manifest["design"]
        resamples = int(report["bootstrap"]["resamples"])
        settings = report["analysis"]
    except (ValueError, KeyError, TypeError, EOFError) as exc:
        raise SubmissionError(
            f"{where}: not a human study record (schema {RECORD_SCHEMA}): {exc}; studies are "
            "added by `groundbench leaderboard add-human S/ R/`"
        ) from None
    manifest_sha = hashlib.sha256((canonical_json(manifest) + "\n").encode("utf-8")).hexdigest()
    if not (
        protocol_hash(design) == manifest["study_id"] == lock["study_id"] == report["study_id"]
    ):
        raise SubmissionError(
            f"{where}: the study id differs between the design, the manifest, the lock and the "
            "report; add the study again from its prepared folder"
        )
    if manifest_sha != lock["manifest_sha256"]:
        raise SubmissionError(f"{where}: the manifest does not match the lock's sha256")
    if hashlib.sha256(judgements).hexdigest() != report["judgements_sha256"]:
        raise SubmissionError(f"{where}: the judgements do not match the report's sha256")
    try:
        recomputed, _ = compute_report(manifest, settings, judgements, resamples, where=where)
    except StudyError as exc:
        raise SubmissionError(str(exc)) from None
    changed = sorted(k for k in set(recomputed) | set(report) if recomputed.get(k) != report.get(k))
    if changed:
        raise SubmissionError(
            f"{where}: report.json differs from the statistics recomputed from its judgements "
            f"(at {', '.join(changed)}); run `groundbench human analyze` again and add the "
            "new report with `groundbench leaderboard add-human`"
        )
    return _study(report, design, _board_methods(design, entries, where), where)


def _board_methods(
    design: Mapping[str, Any], entries: Sequence[Entry], where: str
) -> dict[str, Entry]:
    """Each study method's board entry, by fingerprint (same protocol hash and fingerprint)."""
    found = {}
    for m in design["methods"]:
        pid = m["protocol"][:12]
        mine = [e for e in entries if e.method_fingerprint == m["fingerprint"]]
        here = [e for e in mine if e.report["protocol"]["hash"] == m["protocol"]]
        if not here:
            elsewhere = sorted({e.protocol_id for e in mine})
            hint = (
                f"it is on the board only under protocol {', '.join(elsewhere)}, not the study's "
                f"protocol {pid}; the study compares the maps of protocol {pid}"
                if elsewhere
                else f"add its report (protocol {pid}) with `groundbench leaderboard add` first"
            )
            raise SubmissionError(
                f"{where}: method {m['name']!r} (fingerprint {m['fingerprint'][:12]}…) has no "
                f"entry on the board under protocol {pid}; {hint}"
            )
        found[m["fingerprint"]] = here[0]
    return found


def _study(
    report: Mapping[str, Any], design: Mapping[str, Any], board: dict[str, Entry], where: str
) -> HumanStudy:
    """The board's view of a verified report."""
    names = {m["name"]: m["fingerprint"] for m in design["methods"]}
    kind = report["type"]
    if kind not in MEASURES:
        raise SubmissionError(f"{where}: unknown study type {kind!r}")
    scores: list[HumanScore] = []
    pointing = chance = None
    if kind == "pairwise":
        for row in report["bradley_terry"]["methods"]:
            wins = n = 0.0  # ties count half, as in the pair win rates
            for p in report["pairs"]:
                if row["method"] in (p["a"], p["b"]):
                    side = "a_wins" if row["method"] == p["a"] else "b_wins"
                    wins, n = wins + p[side] + p["ties"] / 2, n + p["n"]
            low, high = wilson(wins, n)
            fp = names[row["method"]]
            scores.append(HumanScore(
                fp, board[fp].method_name, row["score"], row["ci_low"], row["ci_high"], int(n),
                rank=row["rank"], win_rate=wins / n if n else None, win_low=_num(low), win_high=_num(high),
            ))  # fmt: skip
    elif kind == "choose":
        chance = report["choose"]["chance"]
        for row in report["choose"]["methods"]:
            fp = names[row["method"]]
            scores.append(HumanScore(
                fp, board[fp].method_name, row["accuracy"], row["ci_low"], row["ci_high"], row["n"],
            ))  # fmt: skip
    else:
        h = report["click"]["rows"][0]
        pointing = HumanScore("", "annotators", h["score"], h["ci_low"], h["ci_high"], h["n"])
    agreement = report["agreement"]
    counts = report["counts"]
    return HumanStudy(
        protocol_id=design["methods"][0]["protocol"][:12],
        study_id=report["study_id"],
        type=kind,
        items=counts["study_items"],
        annotators=len(report["annotators"]),
        judgements=counts["judgements"] - counts["gold_judgements"],
        alpha=agreement["krippendorff_alpha"],
        alpha_low=agreement["alpha_ci_low"],
        alpha_high=agreement["alpha_ci_high"],
        scores=tuple(scores),
        pointing=pointing,
        chance=chance,
        kendall=tuple(
            (k, v["kendall_tau"], v["tau_ci_low"], v["tau_ci_high"])
            for k, v in sorted(report["automatic_metrics"].items())
        ),
        analysis_hash=report["analysis_hash"],
        judgements_sha256=report["judgements_sha256"],
    )


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        raise SubmissionError(
            f"{path}: missing; pass a folder written by `groundbench human prepare`"
        ) from None


def _read_json(path: Path, made_by: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SubmissionError(
            f"{path}: unreadable ({exc.__class__.__name__}); it is written by {made_by}"
        ) from None
    if not isinstance(data, dict):
        raise SubmissionError(f"{path}: not a JSON object; it is written by {made_by}")
    return data
