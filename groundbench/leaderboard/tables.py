"""Leaderboard tables: entries grouped by protocol, ranked, rendered as Markdown and CSV.

Columns are keyed by protocol id and metric display key, so two pointing variants (or any
two protocols) never share a column: each protocol gets its own table.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from groundbench.leaderboard.entries import Entry
from groundbench.leaderboard.robustness import (
    PROBE_ORDER,
    is_development,
    pointing_variant,
    probe_label,
)
from groundbench.leaderboard.studies import (
    HumanStudy,
    column_cells,
    column_heads,
    csv_rows,
    of_protocol,
    study_line,
)
from groundbench.metrics import METRICS
from groundbench.report.render import md_code, md_text


@dataclass(frozen=True)
class ProtocolTable:
    """The entries of one protocol, ranked by its first metric.

    Attributes:
        protocol_id: the protocol id (12 hex).
        protocol_name: e.g. ``synth_test.albef``.
        dataset: dataset name.
        split: dataset split.
        variant: pointing variant(s) (``-`` when none); ``rank:<proposals>`` for a
            region-ranking protocol (``rank:gt``, ``rank:refcoco+_dets_dict.json``), whose
            tables sort apart from the pointing ones.
        probe: probe label, or None for an in-distribution or development protocol.
        metrics: metric display keys; the first ranks.
        entries: methods best first, then the checks (:attr:`Entry.is_check`).
        ranks: competition rank per entry (``1, 1, 3`` on a tie) among the methods; None when
            unranked (a check, or no score).
    """

    protocol_id: str
    protocol_name: str
    dataset: str
    split: str
    variant: str
    probe: str | None
    metrics: tuple[str, ...]
    entries: tuple[Entry, ...]
    ranks: tuple[int | None, ...]
    development: bool = False

    @property
    def role(self) -> str:
        """``in-distribution``, ``probe: <label>`` or ``development split``."""
        if self.development:
            return "development split"
        return "in-distribution" if self.probe is None else f"probe: {self.probe}"


def protocol_tables(
    entries: Sequence[Entry], *, in_distribution_split: str = "test"
) -> list[ProtocolTable]:
    """Group entries by protocol id and rank each group by its first metric.

    The direction is the metric's registered ``higher_is_better`` (true for every built-in).

    Returns:
        Tables sorted by dataset, variant, in-distribution before probes, probe order, name.
    """
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(e.protocol_id, []).append(e)
    tables = []
    for pid, members in groups.items():
        first = members[0]
        metrics = first.metric_keys
        higher = METRICS.meta(first.canonical["metrics"][0]["name"]).get("higher_is_better", True)
        ranked = sorted(members, key=lambda e: (e.is_check, *_rank_key(e, metrics[0], higher)))
        methods = [e for e in ranked if not e.is_check]
        ranks = _competition_ranks([_mean(e, metrics[0]) for e in methods])
        tables.append(
            ProtocolTable(
                protocol_id=pid,
                protocol_name=first.protocol_title,
                dataset=first.report["dataset"]["name"],
                split=first.report["dataset"]["split"],
                variant=_variant(first.canonical),
                probe=probe_label(first.canonical, in_distribution_split),
                metrics=metrics,
                entries=tuple(ranked),
                ranks=ranks + (None,) * (len(ranked) - len(methods)),
                development=is_development(first.canonical, in_distribution_split),
            )
        )
    return sorted(tables, key=_table_order)


def _variant(canonical: Mapping[str, Any]) -> str:
    proposals = canonical.get("proposals")
    if proposals is None:
        return pointing_variant(canonical)
    return "rank:" + (proposals if isinstance(proposals, str) else proposals["file"])


def _what(variant: str) -> tuple[str, str]:
    if variant.startswith("rank:"):
        return "region ranking of", variant[len("rank:") :]
    return "pointing variant", variant


def _table_order(t: ProtocolTable) -> tuple[Any, ...]:
    probe_pos = (
        len(PROBE_ORDER) + 1
        if t.development
        else -1
        if t.probe is None
        else (PROBE_ORDER.index(t.probe) if t.probe in PROBE_ORDER else len(PROBE_ORDER))
    )
    return (t.dataset, t.variant, probe_pos, t.protocol_name, t.protocol_id)


def _mean(entry: Entry, key: str) -> float | None:
    agg = entry.aggregate(key)
    return None if agg is None else agg["mean"]


def _rank_key(entry: Entry, key: str, higher_is_better: bool) -> tuple[Any, ...]:
    mean = _mean(entry, key)
    score = (mean or 0.0) if not higher_is_better else -(mean or 0.0)
    return (mean is None, score, entry.method_name, entry.method_fingerprint)


def _competition_ranks(means: Sequence[float | None]) -> tuple[int | None, ...]:
    ranks: list[int | None] = []
    for i, m in enumerate(means):
        if m is None:
            ranks.append(None)
        elif i and means[i - 1] == m:
            ranks.append(ranks[-1])
        else:
            ranks.append(i + 1)
    return tuple(ranks)


def rank_text(rank: int | None, entry: Entry) -> str:
    """The rank cell: the rank, ``check`` for a check of the metrics, ``–`` without a score."""
    if entry.is_check:
        return "check"
    return "–" if rank is None else str(rank)


def format_interval(agg: Mapping[str, Any] | None) -> str:
    """Format an aggregate as ``0.731 [0.718, 0.744]``, noting undefined samples.

    Example:
        >>> format_interval({"mean": 0.7312, "ci_low": 0.718, "ci_high": 0.7444, "n": 10, "n_defined": 10})
        '0.731 [0.718, 0.744]'
        >>> format_interval({"mean": 0.5, "ci_low": 0.25, "ci_high": 0.75, "n": 10, "n_defined": 8})
        '0.500 [0.250, 0.750] (8/10 defined)'
    """
    if agg is None:
        return "–"
    if agg["mean"] is None:
        return f"n/a (0/{agg['n']} defined)"
    text = f"{agg['mean']:.3f} [{_fmt(agg['ci_low'])}, {_fmt(agg['ci_high'])}]"
    if agg["n_defined"] != agg["n"]:
        text += f" ({agg['n_defined']}/{agg['n']} defined)"
    return text


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.3f}"


def table_heading(t: ProtocolTable) -> str:
    """One-line heading naming the protocol, its id and pointing variant."""
    what = t.role
    kind, variant = _what(t.variant)
    return (
        f"{t.protocol_name} · protocol `{t.protocol_id}` · {kind} `{variant}` · "
        f"split `{t.split}` ({what})"
    )


def markdown_heading(t: ProtocolTable) -> str:
    """:func:`table_heading` for Markdown: every name escaped (names come from report files)."""
    what = md_text(t.role)
    kind, variant = _what(t.variant)
    return (
        f"{md_text(t.protocol_name)} · protocol {md_code(t.protocol_id)} · {kind} "
        f"{md_code(variant)} · split {md_code(t.split)} ({what})"
    )


def render_markdown_table(t: ProtocolTable, studies: Sequence[HumanStudy] = ()) -> str:
    """Render one ranked table as GitHub Markdown (methods × metrics with 95% intervals),
    with the human columns of the protocol's ``studies`` after the metrics."""
    n = t.entries[0].report["samples"]["n"]
    mine = of_protocol(studies, t.protocol_id)
    heads = column_heads(mine)
    lines = [
        f"### {markdown_heading(t)}",
        "",
        f"{n} samples; ranked by {md_code(t.metrics[0])}; mean [95% interval: Wilson for 0/1 metrics, else bootstrap]"
        + (
            "; `check` rows read the ground truth (a check of the metrics, not a method) and "
            "are not ranked."
            if any(e.is_check for e in t.entries)
            else "."
        ),
        "",
        "| rank | method | supervision | "
        + " | ".join([md_code(k) for k in t.metrics] + [md_text(h) for h in heads])
        + " |",
        "|---:|---|---|" + "---|" * (len(t.metrics) + len(heads)),
    ]
    for rank, e in zip(t.ranks, t.entries, strict=True):
        cells = [format_interval(e.aggregate(k)) for k in t.metrics]
        cells += [text for text, _ in column_cells(mine, e.method_fingerprint)]
        lines.append(
            f"| {rank_text(rank, e)} | {md_text(shown_name(e))} | {md_text(e.supervision)} | "
            + " | ".join(cells)
            + " |"
        )
    if mine:
        lines.append("")
        lines += [study_line(s) + " See *Human studies* below." for s in mine]
    return "\n".join(lines) + "\n"


def shown_name(entry: Entry) -> str:
    """The method name with its model-card marks: ``checkpoint (! selected on test)``."""
    return entry.method_name + "".join(f" (! {m})" for m in entry.marks)


CSV_COLUMNS = (
    "rank",
    "protocol_id",
    "protocol",
    "dataset",
    "split",
    "variant",
    "method",
    "method_fingerprint",
    "supervision",
    "metric",
    "tag",
    "mean",
    "ci_low",
    "ci_high",
    "n",
    "n_defined",
    "undefined",
    "model_card_marks",
)


def render_csv(tables: Sequence[ProtocolTable], studies: Sequence[HumanStudy] = ()) -> str:
    """Render every aggregate (each metric × tag of each entry) as a long-format CSV.

    ``rank`` is the entry's rank in its protocol's table (``check`` for a check of the
    metrics, empty without a score). Floats use ``repr`` precision; empty cells are
    undefined; ``undefined`` lists ``reason:count`` pairs joined by ``;``. Human scores
    (``studies``) are rows of metric ``human:<measure>@<study>`` and tag ``all``, ``rank``
    their Bradley–Terry rank.
    """
    rows = []
    for t in tables:
        for rank, e in zip(t.ranks, t.entries, strict=True):
            shown_rank = "" if rank is None and not e.is_check else rank_text(rank, e)
            for key in t.metrics:
                for tag, agg in sorted(e.report["metrics"][key].items()):
                    rows.append(
                        [
                            shown_rank,
                            t.protocol_id,
                            t.protocol_name,
                            t.dataset,
                            t.split,
                            t.variant,
                            e.method_name,
                            e.method_fingerprint,
                            e.supervision,
                            key,
                            tag,
                            *(_repr(agg[f]) for f in ("mean", "ci_low", "ci_high")),
                            agg["n"],
                            agg["n_defined"],
                            ";".join(f"{r}:{c}" for r, c in sorted(agg["undefined"].items())),
                            ";".join(e.marks),
                        ]
                    )
    titles = {t.protocol_id: (t.protocol_name, t.dataset, t.split, t.variant) for t in tables}
    rows += csv_rows(studies, titles)
    rows.sort(key=lambda r: [str(c) for c in r[1:11]])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return buf.getvalue()


def _repr(x: float | None) -> str:
    return "" if x is None else repr(float(x))
