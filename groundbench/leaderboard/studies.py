"""Human studies beside the automatic metrics: the results a board shows, and how.

A human study (docs/human.md) is stored on a board as ``<board>/human/<protocol_id>/
<study_id[:12]>.json`` by ``groundbench leaderboard add-human``. Verifying and recomputing
it is the job of :mod:`groundbench.human.board`, which imports this module (never the
reverse); this module holds the plain results and renders them:

- in each protocol table, human columns beside the metrics: for a ``pairwise`` study the
  Bradley–Terry score and the win rate against the other methods, for a ``choose`` study
  the share of items where the method's own map was picked; a line under the table names
  the study, its size and its agreement (a ``click`` study adds only that line: humans'
  own pointing score);
- a "Human studies" section of ``README.md`` and the HTML page, one table per study;
- rows of ``leaderboard.csv`` (metric ``human:<measure>@<study>``, tag ``all``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from groundbench.leaderboard.entries import Entry
from groundbench.report.render import md_code, md_text

HUMAN_DIR = "human"
#: What each study type measures per method, as named in column heads and CSV metric keys.
MEASURES = {"pairwise": "bradley_terry", "choose": "picked_own_map", "click": "pointing"}


@dataclass(frozen=True)
class HumanScore:
    """One method's (or, in a click study, the annotators') human score in one study.

    Attributes:
        method_fingerprint: the board entry it belongs to ("" for the annotators' own score).
        method_name: its display name.
        score: Bradley–Terry score (natural-log odds, centred to sum 0), or a share in [0, 1].
        ci_low, ci_high: its 95% interval (bootstrap over samples for Bradley–Terry, else
            Wilson); None when undefined.
        n: judgements it rests on (ambiguous answers and gold items left out).
        rank: 1 + the methods whose interval lies wholly above (pairwise only).
        win_rate, win_low, win_high: (wins + ties/2) / judgements against all the other
            methods, with a Wilson interval (pairwise only).
    """

    method_fingerprint: str
    method_name: str
    score: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    rank: int | None = None
    win_rate: float | None = None
    win_low: float | None = None
    win_high: float | None = None


@dataclass(frozen=True)
class HumanStudy:
    """A verified, recomputed human study of one protocol's methods.

    Attributes:
        protocol_id: the protocol id (12 hex) all its methods were evaluated under.
        study_id: the study's design hash (64 hex).
        type: ``pairwise``, ``choose`` or ``click``.
        items: study items judged (gold items not counted).
        annotators: annotators kept (exclusions applied).
        judgements: judgements of study items kept.
        alpha, alpha_low, alpha_high: Krippendorff's α (nominal) with its 95% bootstrap
            interval over items; None when undefined.
        scores: per method, in the study's order (empty for a click study).
        pointing: the annotators' own pointing score (click studies), else None.
        chance: ``1/k`` for a choose study, else None.
        kendall: ``(metric key, Kendall τ, low, high)``: τ between the human scores and each
            metric's mean across methods, with its 95% interval from the bootstrap of the
            human scores over samples; None when undefined.
        analysis_hash: hash of the exclusions and the fast-answer threshold.
        judgements_sha256: sha256 of the exported judgements.
    """

    protocol_id: str
    study_id: str
    type: str
    items: int
    annotators: int
    judgements: int
    alpha: float | None
    alpha_low: float | None
    alpha_high: float | None
    scores: tuple[HumanScore, ...]
    pointing: HumanScore | None
    chance: float | None
    kendall: tuple[tuple[str, float | None, float | None, float | None], ...]
    analysis_hash: str
    judgements_sha256: str

    @property
    def short_id(self) -> str:
        """The first 12 hex characters of the study id."""
        return self.study_id[:12]

    def score_of(self, fingerprint: str) -> HumanScore | None:
        """The human score of the method with this fingerprint, or None if not in the study."""
        return next((s for s in self.scores if s.method_fingerprint == fingerprint), None)


#: Verifies and recomputes a board's stored studies against its entries (see
#: :func:`groundbench.human.board.load_human_studies`).
HumanLoader = Callable[[Path, Sequence[Entry]], Sequence[HumanStudy]]


def is_human_report(report_dir: str | Path) -> bool:
    """Whether ``report_dir`` holds a ``groundbench human analyze`` report."""
    try:
        report = json.loads((Path(report_dir) / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and {"study_id", "judgements_sha256"} <= set(report)


def stored_study_files(board: str | Path) -> list[Path]:
    """The stored study files of ``board``, sorted."""
    return sorted((Path(board) / HUMAN_DIR).glob("*/*.json"))


def of_protocol(studies: Sequence[HumanStudy], protocol_id: str) -> list[HumanStudy]:
    """The studies of one protocol, in study-id order."""
    return sorted((s for s in studies if s.protocol_id == protocol_id), key=lambda s: s.study_id)


def column_heads(studies: Sequence[HumanStudy]) -> list[str]:
    """The human column heads of a protocol table (plain text)."""
    heads = []
    for s in studies:
        if s.type == "pairwise":
            heads += [f"human Bradley–Terry {s.short_id}", f"human win rate {s.short_id}"]
        elif s.type == "choose":
            heads.append(f"human picked own map {s.short_id}")
    return heads


def column_cells(studies: Sequence[HumanStudy], fingerprint: str) -> list[tuple[str, float | None]]:
    """One table row's human cells: ``(text, sort value)``; ``–`` for a method not in a study."""
    cells: list[tuple[str, float | None]] = []
    for s in studies:
        if s.type == "click":
            continue
        got = s.score_of(fingerprint)
        signed = s.type == "pairwise"
        cells.append(
            ("–", None)
            if got is None
            else (_interval(got.score, got.ci_low, got.ci_high, signed), got.score)
        )
        if signed:
            cells.append(
                ("–", None)
                if got is None
                else (_interval(got.win_rate, got.win_low, got.win_high), got.win_rate)
            )
    return cells


def study_line(s: HumanStudy) -> str:
    """One sentence on a study: type, size, agreement (and a click study's score).

    It holds only numbers, the hex study id and the study type (one of :data:`MEASURES`),
    so it needs no escaping in Markdown.
    """
    text = (
        f"Human study {s.short_id} ({s.type}): {s.items} items, {s.annotators} annotators, "
        f"{s.judgements} judgements; Krippendorff's α "
        f"{_interval(s.alpha, s.alpha_low, s.alpha_high)}"
    )
    if s.pointing is not None:
        p = s.pointing
        text += (
            f"; the annotators' own clicks fall in the phrase's box in "
            f"{_interval(p.score, p.ci_low, p.ci_high)} of {p.n}"
        )
    if s.chance is not None:
        text += f"; chance is {s.chance:.3f}"
    return text + "."


SECTION_NOTE = (
    "Blinded judgements of the maps (docs/human.md), verified and recomputed from the stored "
    "judgements when the board is built. Pairwise: Bradley–Terry score (natural-log odds, "
    "centred to sum 0; 95% interval from a bootstrap over samples), rank = 1 + the methods "
    "whose interval lies wholly above, and the win rate against the other methods (ties count "
    "half; Wilson interval). Choose: the share of items where the method's own map of the "
    "phrase was picked among k (chance 1/k). Click: the share of the annotators' clicks inside "
    "the phrase's box. Agreement: Krippendorff's α (nominal) with a 95% bootstrap interval "
    "over items; Kendall τ compares the human scores with each metric's mean across methods (95% "
    "interval from the human scores' bootstrap over samples)."
)


def render_studies_markdown(studies: Sequence[HumanStudy], titles: dict[str, str]) -> list[str]:
    """The board's "Human studies" section (no lines without studies).

    Args:
        studies: the verified studies.
        titles: protocol id → protocol title, for the headings.

    Example:
        >>> render_studies_markdown([], {})
        []
    """
    if not studies:
        return []
    lines = ["## Human studies", "", SECTION_NOTE, ""]
    for s in sorted(studies, key=lambda s: (titles.get(s.protocol_id, ""), s.study_id)):
        lines += [
            f"### {md_text(titles.get(s.protocol_id, s.protocol_id))} · protocol "
            f"{md_code(s.protocol_id)} · study {md_code(s.short_id)} ({md_text(s.type)})",
            "",
            study_line(s) + f" Analysis {md_code(s.analysis_hash[:12])}, judgements sha256 "
            f"{md_code(s.judgements_sha256[:12])}.",
            "",
        ]
        if s.scores:
            head, rule = _section_head(s)
            lines += [head, rule]
            lines += [
                "| "
                + " | ".join(
                    md_text(c) if h == "method" else c
                    for h, c in zip(section_columns(s), section_row(s, r), strict=True)
                )
                + " |"
                for r in s.scores
            ]
            lines.append("")
        taus = [f"{md_code(k)} {_interval(t, lo, hi, signed=True)}" for k, t, lo, hi in s.kendall]
        if taus and s.scores:
            lines += [
                "Kendall τ (human score vs metric mean, across methods): " + ", ".join(taus) + ".",
                "",
            ]
    return lines


def section_columns(s: HumanStudy) -> list[str]:
    """The column heads of a study's own table."""
    if s.type == "pairwise":
        return ["rank", "method", "Bradley–Terry score", "win rate vs the others", "judgements"]
    return ["method", "picked own map", "items"]


def _section_head(s: HumanStudy) -> tuple[str, str]:
    cols = section_columns(s)
    rule = (
        "|"
        + "|".join("---:" if c in ("rank", "judgements", "items") else "---" for c in cols)
        + "|"
    )
    return "| " + " | ".join(cols) + " |", rule


def section_row(s: HumanStudy, r: HumanScore) -> list[str]:
    """A study table's row for one method (plain text cells)."""
    if s.type == "pairwise":
        return [
            "–" if r.rank is None else str(r.rank),
            r.method_name,
            _interval(r.score, r.ci_low, r.ci_high, signed=True),
            _interval(r.win_rate, r.win_low, r.win_high),
            str(r.n),
        ]
    return [r.method_name, _interval(r.score, r.ci_low, r.ci_high), str(r.n)]


def csv_rows(
    studies: Sequence[HumanStudy], titles: dict[str, tuple[str, str, str, str]]
) -> list[list]:
    """``leaderboard.csv`` rows of the human scores (columns as :data:`tables.CSV_COLUMNS`).

    Args:
        studies: the verified studies.
        titles: protocol id → (protocol title, dataset, split, variant).
    """
    rows = []
    for s in studies:
        name, dataset, split, variant = titles[s.protocol_id]
        measure = f"human:{MEASURES[s.type]}@{s.short_id}"
        scored = [(r, measure, r.score, r.ci_low, r.ci_high) for r in s.scores]
        if s.type == "pairwise":
            scored += [
                (r, f"human:win_rate@{s.short_id}", r.win_rate, r.win_low, r.win_high)
                for r in s.scores
            ]
        if s.pointing is not None:
            p = s.pointing
            scored.append((p, measure, p.score, p.ci_low, p.ci_high))
        for r, key, mean, low, high in scored:
            rank = "" if r.rank is None else r.rank
            rows.append([
                rank, s.protocol_id, name, dataset, split, variant, r.method_name,
                r.method_fingerprint, "", key, "all", *(_repr(v) for v in (mean, low, high)),
                r.n, r.n, "", "",
            ])  # fmt: skip
    return rows


def _interval(
    mean: float | None, low: float | None, high: float | None, signed: bool = False
) -> str:
    """``0.731 [0.718, 0.744]`` (``+0.412 [-0.100, +0.900]`` when signed); ``n/a`` if undefined."""
    spec = "+.3f" if signed else ".3f"

    def f(x: float | None) -> str:
        return "n/a" if x is None or math.isnan(x) else format(x, spec)

    if mean is None or math.isnan(mean):
        return "n/a"
    return f"{f(mean)} [{f(low)}, {f(high)}]"


def _repr(x: float | None) -> str:
    return "" if x is None else repr(float(x))
