"""A self-contained HTML leaderboard: inline CSS and JavaScript, inline SVG charts.

The page needs no network. Every table sits in a box that scrolls sideways when the window
is narrower than the table. Every column header is a button (reachable with Tab, pressed
with Enter or Space, state in ``aria-sort``): the first press sorts best rows first for a
metric (its registered direction) and A–Z for text, the next reverses. Each protocol gets
an SVG chart of its first metric with 95% intervals, and each robustness matrix is a table
of probe scores (sorted by score) coloured by the difference from in-distribution.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence

from groundbench.leaderboard.robustness import RobustnessMatrix, metric_higher_is_better
from groundbench.leaderboard.studies import (
    SECTION_NOTE,
    HumanStudy,
    column_cells,
    column_heads,
    of_protocol,
    section_columns,
    section_row,
    study_line,
)
from groundbench.leaderboard.tables import (
    ProtocolTable,
    format_interval,
    rank_text,
    shown_name,
    table_heading,
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#1b1f24}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #d0d7de}h3{font-size:1em;margin-top:1.6em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;white-space:nowrap}
th{background:#f6f8fa;white-space:nowrap;vertical-align:bottom}
th button{font:inherit;font-weight:600;color:inherit;background:none;border:0;padding:0;cursor:pointer;text-align:inherit}
th button:focus-visible{outline:2px solid #0969da;outline-offset:2px}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td .ci{display:block;color:#57606a;font-size:.8em}
.note{color:#57606a;font-size:.85em}svg.chart{display:block;margin:.4em 0 1.2em;max-width:100%;height:auto}
"""

# Sorting: a header's button sorts its column. The first press takes the header's
# data-first direction (best rows first for a metric), later presses reverse it.
_JS = """
function sortTable(th){
  const table=th.closest('table'),body=table.tBodies[0],col=th.cellIndex;
  const now=th.getAttribute('aria-sort');
  const dir=(now==='ascending'||now==='descending')?(now==='ascending'?'descending':'ascending')
    :(th.dataset.first||'ascending');
  const asc=dir==='ascending';
  for(const other of th.parentNode.children){other.removeAttribute('aria-sort');}
  th.setAttribute('aria-sort',dir);
  const numeric=th.dataset.type==='num';
  const key=r=>{const c=r.cells[col],v=c.dataset.value!==undefined?c.dataset.value:c.textContent;
    return numeric?(v===''?NaN:parseFloat(v)):v;};
  const rows=Array.from(body.rows);
  rows.sort((a,b)=>{const x=key(a),y=key(b);
    if(numeric){if(isNaN(x)&&isNaN(y))return 0;if(isNaN(x))return 1;if(isNaN(y))return -1;
      return asc?x-y:y-x;}
    return asc?x.localeCompare(y):y.localeCompare(x);});
  for(const r of rows){body.appendChild(r);}
}
document.querySelectorAll('table.sortable th button').forEach(
  b=>b.addEventListener('click',()=>sortTable(b.closest('th'))));
"""

_BAR = "#4c72b0"
_WHISKER = "#1b1f24"


def render_html(
    tables: Sequence[ProtocolTable],
    matrices: Sequence[RobustnessMatrix],
    *,
    n_entries: int,
    studies: Sequence[HumanStudy] = (),
) -> str:
    """Render the whole board as one HTML document (deterministic for the same entries).

    Args:
        tables: ranked protocol tables.
        matrices: robustness matrices.
        n_entries: the number of entries the board was generated from.
        studies: verified human studies, shown beside their protocol's metrics and in a
            section of their own.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>groundbench leaderboard</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>groundbench leaderboard</h1>",
        f'<p class="note">Generated from {n_entries} entries by <code>groundbench leaderboard build</code>. '
        "Rows in one table share a protocol hash; values are means with 95% intervals (Wilson score for 0/1 metrics, else bootstrap) "
        "below them. Click a column header (or Tab to it and press Enter) to sort: the first "
        "press puts the best rows first.</p>",
    ]
    dataset = None
    for t in tables:
        if t.dataset != dataset:
            dataset = t.dataset
            parts.append(f"<h2>{_e(dataset)}</h2>")
        parts.append(_protocol_section(t, of_protocol(studies, t.protocol_id)))
    if matrices:
        parts.append("<h2>Robustness</h2>")
        parts.append(
            '<p class="note">Probe score on the family\'s first metric and, below it, its '
            "difference from the in-distribution protocol (negative = worse on the probe; red "
            "worse, blue better). A control column (the blind control: each phrase swapped for "
            "one that does not describe the target) reads the other way: a method that follows "
            "the words should drop there (green); near 0 or above (purple), its maps ignore "
            "the phrase. Probe columns sort by the score.</p>"
        )
        parts.extend(_matrix_section(m) for m in matrices)
    if studies:
        titles = {t.protocol_id: t.protocol_name for t in tables}
        parts.append(f'<h2>Human studies</h2><p class="note">{_e(SECTION_NOTE)}</p>')
        parts.extend(_study_section(s, titles.get(s.protocol_id, s.protocol_id)) for s in studies)
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"


def _protocol_section(t: ProtocolTable, studies: Sequence[HumanStudy] = ()) -> str:
    canonical = t.entries[0].canonical
    head = (
        "<tr>"
        + _th("rank", "num", "ascending", sort="ascending")
        + _th("method", "text", "ascending")
        + _th("supervision", "text", "ascending")
        + "".join(
            _th(k, "num", _best_first(metric_higher_is_better(canonical, i)))
            for i, k in enumerate(t.metrics)
        )
        + "".join(_th(h, "num", "descending") for h in column_heads(studies))
        + "</tr>"
    )
    rows = []
    for rank, e in zip(t.ranks, t.entries, strict=True):
        cells = "".join(
            f'<td class="num" data-value="{_value(e.aggregate(k))}">{_interval_cell(e.aggregate(k))}</td>'
            for k in t.metrics
        )
        cells += "".join(
            f'<td class="num" data-value="{_num(v)}">{_split_interval(text)}</td>'
            for text, v in column_cells(studies, e.method_fingerprint)
        )
        rows.append(
            f'<tr><td class="num" data-value="{"" if rank is None else rank}">{rank_text(rank, e)}</td>'
            f"<td>{_e(shown_name(e))}</td><td>{_e(e.supervision)}</td>{cells}</tr>"
        )
    bars = [(e.method_name, e.aggregate(t.metrics[0])) for e in t.entries]
    return (
        f'<section id="p-{_e(t.protocol_id)}"><h3>{_code(table_heading(t))}</h3>'
        f"{_scroll(t.protocol_name, head, rows)}"
        + "".join(f'<p class="note">{_e(study_line(s))}</p>' for s in studies)
        + f"{_bar_chart(bars, title=t.metrics[0])}</section>"
    )


def _study_section(s: HumanStudy, title: str) -> str:
    """One human study: its line, then a sortable table of its methods' scores."""
    heads = section_columns(s)
    head = (
        "<tr>"
        + "".join(
            _th(
                h,
                "text" if h == "method" else "num",
                "ascending" if h in ("method", "rank") else "descending",
            )
            for h in heads
        )
        + "</tr>"
    )
    rows = []
    for r in s.scores:
        cells = []
        for h, text in zip(heads, section_row(s, r), strict=True):
            if h == "method":
                cells.append(f"<td>{_e(text)}</td>")
            else:
                value = text.partition(" ")[0].lstrip("+")
                cells.append(
                    f'<td class="num" data-value="{_e(value if value not in ("–", "n/a") else "")}">{_split_interval(text)}</td>'
                )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table = _scroll(f"human study {s.short_id}", head, rows) if rows else ""
    return (
        f'<section id="h-{_e(s.short_id)}"><h3>{_e(title)} · protocol <code>{_e(s.protocol_id)}</code> · '
        f"study <code>{_e(s.short_id)}</code> ({_e(s.type)})</h3>"
        f'<p class="note">{_e(study_line(s))} Analysis <code>{_e(s.analysis_hash[:12])}</code>, '
        f"judgements sha256 <code>{_e(s.judgements_sha256[:12])}</code>.</p>{table}</section>"
    )


def _split_interval(text: str) -> str:
    """``0.5 [0.2, 0.8]`` → the value, with its interval smaller below it."""
    mean, sep, rest = text.partition(" ")
    return _e(text) if not sep else f'{_e(mean)}<span class="ci">{_e(rest)}</span>'


def _th(label: str, kind: str, first: str, *, sort: str | None = None) -> str:
    """A sortable header: a button (keyboard-reachable) inside ``th``; ``first`` = first press."""
    aria = f' aria-sort="{sort}"' if sort else ""
    return (
        f'<th scope="col" data-type="{kind}" data-first="{first}"{aria}>'
        f'<button type="button">{_e(label)}</button></th>'
    )


def _best_first(higher_is_better: bool) -> str:
    return "descending" if higher_is_better else "ascending"


def _scroll(name: str, head: str, rows: Sequence[str]) -> str:
    """The table in a box that scrolls sideways when the page is narrower than the table."""
    return (
        f'<div class="scroll" role="region" tabindex="0" aria-label="{_e(name)} table">'
        f'<table class="sortable"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def _interval_cell(agg: dict | None) -> str:
    """Mean on the first line, the interval (and undefined count) smaller below it."""
    text = format_interval(agg)
    mean, sep, rest = text.partition(" ")
    if not sep:
        return _e(text)
    if mean == "n/a":  # "n/a (0/602 defined)"
        rest = rest.strip("()")
    return f'{_e(mean)}<span class="ci">{_e(rest)}</span>'


def _value(agg: dict | None) -> str:
    return "" if agg is None or agg["mean"] is None else repr(float(agg["mean"]))


def _bar_chart(bars: Sequence[tuple[str, dict | None]], *, title: str) -> str:
    """Horizontal bars (mean) with whiskers (interval), on a 0..max(1, values) axis."""
    label_w, plot_w, row_h, top = 180, 360, 22, 26
    values = [v for _, agg in bars if agg for v in (agg["mean"], agg["ci_high"]) if v is not None]
    scale_max = max([1.0, *values])
    scale_min = min(
        [0.0, *[v for _, agg in bars if agg for v in (agg["mean"], agg["ci_low"]) if v is not None]]
    )

    def x(v: float) -> float:
        return label_w + plot_w * (v - scale_min) / (scale_max - scale_min)

    height = top + row_h * len(bars) + 8
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{label_w + plot_w + 60}" '
        f'height="{height}" viewBox="0 0 {label_w + plot_w + 60} {height}" role="img" '
        f'aria-label="{_e(title)} by method">',
        f'<text x="{label_w}" y="16" font-size="12">{_e(title)} (bars: mean, whiskers: 95% interval)</text>',
        f'<line x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" y2="{height - 6}" stroke="#8c959f"/>',
    ]
    for i, (name, agg) in enumerate(bars):
        y = top + i * row_h
        out.append(
            f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">{_e(name)}</text>'
        )
        if agg is None or agg["mean"] is None:
            continue
        x0, x1 = sorted((x(0.0), x(agg["mean"])))
        out.append(
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" height="{row_h - 8}" fill="{_BAR}"/>'
        )
        label_x = x1
        if agg["ci_low"] is not None and agg["ci_high"] is not None:
            lo, hi, mid = x(agg["ci_low"]), x(agg["ci_high"]), y + row_h / 2 - 1
            out.append(
                f'<line x1="{lo:.1f}" y1="{mid}" x2="{hi:.1f}" y2="{mid}" stroke="{_WHISKER}"/>'
            )
            label_x = max(x1, hi)
        out.append(
            f'<text x="{label_x + 4:.1f}" y="{y + 14}" font-size="10">{agg["mean"]:.3f}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _matrix_section(m: RobustnessMatrix) -> str:
    first = _best_first(m.higher_is_better)
    head = (
        "<tr>"
        + _th("method", "text", "ascending", sort="ascending")
        + _th("in-distribution", "num", first)
        + "".join(_th(f"{p} (control)" if p in m.controls else p, "num", first) for p in m.probes)
        + "</tr>"
    )
    rows = []
    for fp, name in m.methods:
        base = m.reference_means.get(fp)
        cells = [
            f"<td>{_e(name)}</td>",
            f'<td class="num" data-value="{_num(base)}">{_score(base)}</td>',
        ]
        for p in m.probes:
            cell = m.cells.get((fp, p))
            if cell is None:
                cells.append('<td class="num" data-value="">–</td>')
                continue
            difference = "" if cell.drop is None else f'<span class="ci">{cell.drop:+.3f}</span>'
            cells.append(
                f'<td class="num" data-value="{_num(cell.mean)}" style="background:{_drop_colour(cell.drop, control=p in m.controls)}">'
                f"{_e(_score(cell.mean))}{difference}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<section id="r-{_e(m.reference)}"><h3>{_e(m.dataset)} · pointing variant <code>{_e(m.variant)}</code> · '
        f"{_e(m.metric)} · in-distribution protocol {_e(m.reference)}</h3>"
        f"{_scroll(f'robustness {m.dataset} {m.metric}', head, rows)}</section>"
    )


def _drop_colour(drop: float | None, *, control: bool = False) -> str:
    """White at 0, red for drops, blue for gains; saturates at ±0.3.

    On a control a drop is the expected outcome: green for drops, purple for gains.
    """
    if drop is None or math.isnan(drop):
        return "#ffffff"
    t = min(abs(drop) / 0.3, 1.0)
    fade = round(255 - 120 * t)
    if control:
        return f"rgb({fade},255,{fade})" if drop < 0 else f"rgb(255,{fade},255)"
    return f"rgb(255,{fade},{fade})" if drop < 0 else f"rgb({fade},{fade},255)"


def _num(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def _score(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _code(text: str) -> str:
    """Escape ``text`` and turn Markdown code spans (backticks) into ``<code>``."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", _e(text))


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
