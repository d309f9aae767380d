"""Randomisation-probe reports on a board: stored beside the entries, shown beside the scores.

``groundbench leaderboard add PROBE_DIR`` (a directory written by ``groundbench probe
randomise``) stores its ``report.json`` as ``<board>/sanity/<protocol_id>/<method>.json``
(a newer probe of the same method replaces it); ``build`` adds a table of the fully
randomised end points per tower to the board's ``README.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from groundbench.leaderboard.entries import write_atomic
from groundbench.leaderboard.validate import SubmissionError
from groundbench.report.render import md_code, md_text

SANITY_DIR = "sanity"
PROBE = "randomisation"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def is_sanity_report(report_dir: str | Path) -> bool:
    """Whether ``report_dir`` holds a randomisation-probe report (not an evaluation report)."""
    try:
        report = json.loads((Path(report_dir) / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and report.get("probe") == PROBE


def _check(report: Any, where: str) -> None:
    try:
        ok = (
            isinstance(report["protocol"]["id"], str)
            and isinstance(report["method"]["name"], str)
            and all("end_point" in t and "survives" in t for t in report["towers"].values())
        )
    except (KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise SubmissionError(
            f"{where}: not a complete randomisation report (needs protocol.id, method.name and "
            "towers.*.end_point); rerun `groundbench probe randomise`"
        )


def add_sanity_entry(report_dir: str | Path, board: str | Path) -> Path:
    """Store a randomisation-probe report on ``board``; returns the file written.

    Raises:
        SubmissionError: the report is incomplete.
    """
    where = Path(report_dir) / "report.json"
    report = json.loads(where.read_text(encoding="utf-8"))
    _check(report, str(where))
    name = _UNSAFE.sub("-", report["method"]["name"]).strip("-.") or "method"
    target = Path(board) / SANITY_DIR / report["protocol"]["id"] / f"{name}.json"
    write_atomic(target, (json.dumps(report, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return target


def load_sanity(board: str | Path) -> list[dict[str, Any]]:
    """Every stored probe report, ordered by protocol name then method name."""
    reports = []
    for path in sorted((Path(board) / SANITY_DIR).glob("*/*.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        _check(report, str(path))
        reports.append(report)
    return sorted(reports, key=lambda r: (r["protocol"].get("name", ""), r["method"]["name"]))


def _cell(tower: Mapping[str, Any] | None) -> str:
    if tower is None:
        return "–"
    end = tower["end_point"]
    if end["mean"] is None:
        return "undefined"
    text = f"{end['mean']:.3f} [{end['ci_low']:.3f}, {end['ci_high']:.3f}]"
    return f"**{text} survives**" if tower["survives"] else text


def render_sanity_markdown(reports: list[dict[str, Any]]) -> list[str]:
    """The board's randomisation section (no lines when there is no probe report).

    Example:
        >>> render_sanity_markdown([])
        []
    """
    if not reports:
        return []
    towers = sorted({t for r in reports for t in r["towers"]})
    lines = [
        "## Randomisation sanity probe",
        "",
        "Spearman correlation between each method's maps and its maps after every layer of a "
        "tower is reset (top-down, cascading; Adebayo et al. 2018, Quantus MPRT), mean with a "
        "95% bootstrap interval over the probed samples. Near 0 = the map depends on the "
        "weights; a high value (flagged) = the map survives randomisation and does not explain "
        "that tower. Per-layer curves: `groundbench probe randomise` reports.",
        "",
        "| method | protocol | samples | " + " | ".join(md_text(t) for t in towers) + " |",
        "|---|---|---:|" + "---|" * len(towers),
    ]
    for r in reports:
        cells = [_cell(r["towers"].get(t)) for t in towers]
        lines.append(
            f"| {md_text(r['method']['name'])} | {md_code(r['protocol'].get('name', r['protocol']['id']))} | "
            f"{r['dataset']['n']} | " + " | ".join(cells) + " |"
        )
    return [*lines, ""]
