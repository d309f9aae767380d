"""Generate the leaderboard files from the entries on a board.

``build_board`` reads ``<board>/entries/**.json`` (re-validating each) and writes, all
deterministically (the only varying line is "generated from N entries"):

- ``README.md``: one Markdown table per protocol, grouped by dataset and pointing variant,
  then the robustness matrices, then the randomisation-probe end points (when the board
  holds probe reports, :mod:`.sanity`);
- ``leaderboard.csv``: every aggregate in long format;
- ``leaderboard.html``: a self-contained sortable page with inline SVG charts;
- ``robustness.png``: the methods × probes figure (only when a family has probes).

It also renders a compact plain-text summary for a terminal (:func:`render_summary`): the
headline metric per protocol and method, and the robustness differences, at most 120
columns wide, pointing to these files for the rest.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from groundbench.leaderboard.entries import ENTRIES_DIR, load_entries, write_atomic
from groundbench.leaderboard.html import render_html
from groundbench.leaderboard.robustness import (
    RobustnessMatrix,
    display_names,
    plot_robustness,
    robustness_matrices,
)
from groundbench.leaderboard.sanity import load_sanity, render_sanity_markdown
from groundbench.leaderboard.studies import (
    HUMAN_DIR,
    HumanLoader,
    HumanStudy,
    render_studies_markdown,
    stored_study_files,
)
from groundbench.leaderboard.tables import (
    ProtocolTable,
    protocol_tables,
    render_csv,
    render_markdown_table,
)
from groundbench.leaderboard.validate import SubmissionError
from groundbench.report.render import md_code, md_text

ROBUSTNESS_FIGURE = "robustness.png"


@dataclass(frozen=True)
class BoardFiles:
    """What :func:`build_board` wrote.

    Attributes:
        markdown: ``README.md``.
        csv: ``leaderboard.csv``.
        html: ``leaderboard.html``.
        figure: ``robustness.png``, or None when no family has probes.
        n_entries: entries the board was built from.
        summary: plain-text summary for a terminal (:func:`render_summary`).
    """

    markdown: Path
    csv: Path
    html: Path
    figure: Path | None
    n_entries: int
    summary: str = ""


def build_board(
    board: str | Path,
    *,
    in_distribution_split: str = "test",
    human: HumanLoader | None = None,
) -> BoardFiles:
    """Write the leaderboard files of ``board`` from its entries (and its human studies).

    Args:
        board: the leaderboard directory.
        in_distribution_split: the split the robustness view measures drops against.
        human: verifies and recomputes the board's stored human studies against its entries
            (:func:`groundbench.human.board.load_human_studies`); needed when the board holds
            any, so that none is silently left out.

    Returns:
        The paths written.

    Raises:
        SubmissionError: the board has no entries, an entry or a human study fails
            re-validation, or the board holds human studies and ``human`` is None.
    """
    board = Path(board)
    entries = load_entries(board)
    if not entries:
        raise SubmissionError(
            f"{board / ENTRIES_DIR}: no entries; add reports with `groundbench leaderboard add REPORT_DIR`"
        )
    studies: list[HumanStudy] = []
    if human is not None:
        studies = list(human(board, entries))
    elif stored_study_files(board):
        raise SubmissionError(
            f"{board / HUMAN_DIR}: holds human studies; build with `groundbench leaderboard "
            "build`, or pass human=groundbench.human.board.load_human_studies"
        )
    tables = protocol_tables(entries, in_distribution_split=in_distribution_split)
    matrices = robustness_matrices(entries, in_distribution_split=in_distribution_split)
    figure = board / ROBUSTNESS_FIGURE
    if matrices:
        plot_robustness(matrices, figure)
    elif figure.exists():
        figure.unlink()
    markdown = board / "README.md"
    text = render_markdown(tables, matrices, n_entries=len(entries), studies=studies)
    sanity = render_sanity_markdown(load_sanity(board))
    if sanity:
        text += "\n" + "\n".join(sanity)
    write_atomic(markdown, text.encode("utf-8"))
    csv_path = board / "leaderboard.csv"
    write_atomic(csv_path, render_csv(tables, studies).encode("utf-8"))
    html_path = board / "leaderboard.html"
    write_atomic(
        html_path,
        render_html(tables, matrices, n_entries=len(entries), studies=studies).encode("utf-8"),
    )
    figure_path = figure if matrices else None
    files = [markdown, csv_path, html_path, *([figure_path] if figure_path else [])]
    summary = render_summary(tables, matrices, n_entries=len(entries), files=files)
    return BoardFiles(markdown, csv_path, html_path, figure_path, len(entries), summary)


def render_markdown(
    tables: list[ProtocolTable],
    matrices: list[RobustnessMatrix],
    *,
    n_entries: int,
    studies: Sequence[HumanStudy] = (),
) -> str:
    """Render the board's ``README.md`` (human columns and section when ``studies``)."""
    lines = [
        "# Leaderboard",
        "",
        "Generated by `groundbench leaderboard build`; do not edit by hand "
        "(see docs/leaderboard.md to submit an entry).",
        f"Generated from {n_entries} entries.",
        "",
        "Each table holds the entries of one protocol (same hash, dataset and pointing variant), "
        "ranked by its first metric. Values are means with 95% intervals (Wilson score for 0/1 metrics, else bootstrap). "
        "Also: `leaderboard.csv` (every aggregate, per tag) and `leaderboard.html` (sortable, with charts).",
        "",
    ]
    heading = None
    for t in tables:
        if (t.dataset, t.variant) != heading:
            heading = (t.dataset, t.variant)
            lines += [f"## {md_text(t.dataset)} · pointing variant {md_code(t.variant)}", ""]
        lines += [render_markdown_table(t, studies).rstrip("\n"), ""]
    if matrices:
        lines += ["## Robustness", "", f"![methods × probes]({ROBUSTNESS_FIGURE})", ""]
        lines += [
            "Probe score on the first metric, and in parentheses its difference from the "
            "in-distribution protocol (negative = worse on the probe). A *control* column "
            "(`blind`: each phrase swapped for one that does not describe the target) reads "
            "the other way: a method that follows the words should drop there, and a "
            "difference near 0 means its maps ignore the phrase.",
            "",
        ]
        for m in matrices:
            lines += [_matrix_markdown(m), ""]
    lines += render_studies_markdown(studies, {t.protocol_id: t.protocol_name for t in tables})
    return "\n".join(lines).rstrip("\n") + "\n"


def _matrix_markdown(m: RobustnessMatrix) -> str:
    lines = [
        f"### {md_text(m.dataset)} · pointing variant {md_code(m.variant)} · "
        f"{md_code(m.metric)} · in-distribution protocol {md_code(m.reference)}",
        "",
        "| method | in-distribution | "
        + " | ".join(md_text(p) + (" (control)" if p in m.controls else "") for p in m.probes)
        + " |",
        "|---|---:|" + "---:|" * len(m.probes),
    ]
    for fp, name in m.methods:
        base = m.reference_means.get(fp)
        cells = ["–" if base is None else f"{base:.3f}"]
        for p in m.probes:
            cell = m.cells.get((fp, p))
            if cell is None:
                cells.append("–")
            else:
                score = "n/a" if cell.mean is None else f"{cell.mean:.3f}"
                cells.append(score + ("" if cell.drop is None else f" ({cell.drop:+.3f})"))
        lines.append(f"| {md_text(name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


SUMMARY_WIDTH = 120


def render_summary(
    tables: list[ProtocolTable],
    matrices: list[RobustnessMatrix],
    *,
    n_entries: int,
    files: Sequence[Path] = (),
    width: int = SUMMARY_WIDTH,
) -> str:
    """Render a compact plain-text board for a terminal, no line wider than ``width``.

    One grid of headline means (each protocol's first metric; rows are protocols, columns
    methods), then per robustness matrix the signed difference of every probe from the
    in-distribution protocol, then the files that hold the rest (intervals, every metric).
    Grids too wide for ``width`` are split into column blocks.

    Args:
        tables: ranked protocol tables.
        matrices: robustness matrices.
        n_entries: entries the board was built from.
        files: the board files to point to.
        width: the widest line allowed, in characters.
    """
    methods = _method_columns(tables)
    lines = textwrap.wrap(
        f"Leaderboard: {n_entries} entries, {len(tables)} protocols. Each protocol's headline "
        "metric (the one it ranks by), mean over its samples:",
        width,
    )
    lines.append("")
    rows = []
    for t in tables:
        names = dict(display_names({e.method_fingerprint: e.method_name for e in t.entries}))
        means = {names[e.method_fingerprint]: _summary_mean(e, t.metrics[0]) for e in t.entries}
        label = [_clip(t.protocol_name, 32), _clip(t.metrics[0], 20)]
        rows.append((label, [means.get(m, "–") for m in methods]))
    lines += _grid(["protocol", "metric"], methods, rows, width)
    protocol_names = {t.protocol_id: t.protocol_name for t in tables}
    for m in matrices:
        lines.append("")
        lines += textwrap.wrap(
            f"Robustness ({m.dataset}, {m.metric}): each probe's score minus the score on the "
            f"in-distribution {protocol_names.get(m.reference, m.reference)}; negative = worse "
            "on the probe (on a control, negative = the method reads the phrase):",
            width,
        )
        lines.append("")
        rows = []
        for fp, name in m.methods:
            cells = []
            for p in m.probes:
                cell = m.cells.get((fp, p))
                cells.append("–" if cell is None or cell.drop is None else f"{cell.drop:+.3f}")
            rows.append(([_clip(name, 28)], cells))
        heads = [f"{p} (control)" if p in m.controls else p for p in m.probes]
        lines += _grid(["method"], heads, rows, width)
    if files:
        lines += ["", *textwrap.wrap("Intervals, every metric and per-tag scores:", width)]
        lines += [_clip(f"  {path}", width) for path in files]
    return "\n".join(lines) + "\n"


def _method_columns(tables: list[ProtocolTable]) -> list[str]:
    """Method display names in order of first appearance (the first table's ranking first)."""
    order: list[str] = []
    for t in tables:
        names = dict(display_names({e.method_fingerprint: e.method_name for e in t.entries}))
        for e in t.entries:
            if names[e.method_fingerprint] not in order:
                order.append(names[e.method_fingerprint])
    return order


def _summary_mean(entry, key: str) -> str:
    agg = entry.aggregate(key)
    if agg is None:
        return "–"
    return "n/a" if agg["mean"] is None else f"{agg['mean']:.3f}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _grid(
    heads: list[str], columns: list[str], rows: list[tuple[list[str], list[str]]], width: int
) -> list[str]:
    """Left-aligned label columns, then right-aligned value columns split into blocks."""
    label_w = [max(len(h), *(len(r[0][i]) for r in rows)) for i, h in enumerate(heads)]
    col_w = [max(len(c), *(len(r[1][j]) for r in rows)) for j, c in enumerate(columns)]
    lead = sum(w + 2 for w in label_w)
    blocks: list[list[int]] = [[]]
    used = lead
    for j, w in enumerate(col_w):
        if blocks[-1] and used + w + 2 > width:
            blocks.append([])
            used = lead
        blocks[-1].append(j)
        used += w + 2
    out: list[str] = []
    for b, block in enumerate(blocks):
        if b:
            out.append("")
        for labels, values in [(heads, columns), *rows]:
            left = "".join(f"{x:<{w}}  " for x, w in zip(labels, label_w, strict=True))
            right = "  ".join(f"{values[j]:>{col_w[j]}}" for j in block)
            out.append((left + right).rstrip())
    return out
