"""Render a report's files as bytes: deterministic, so the same inputs give the same bytes.

``report.json`` follows schema 1 (docs/reports.md); ``samples.csv`` is written by
:meth:`~groundbench.report.records.Records.to_csv`; ``report.md`` is the human summary with
COCOeval-style headline lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from groundbench.metrics.aggregate import SMALL_N
from groundbench.model_card import card_summary
from groundbench.report.split_metrics import split_metric_lines

REPORT_SCHEMA = 1

_MD_PUNCTUATION = str.maketrans(
    {c: "\\" + c for c in "\\`*[]|~"}
    | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
    | {"\n": " ", "\r": " "}
)


def md_text(text: object) -> str:
    """Escape ``text`` for Markdown prose or a table cell: never a link, image, HTML or new cell.

    Line breaks become spaces, so a name cannot start a heading; an underscore is kept (it
    can only italicise, and keeps ``synth_test.albef`` readable).

    Example:
        >>> print(md_text("<img onerror=x> [a](javascript:b) | c_d"))
        &lt;img onerror=x&gt; \\[a\\](javascript:b) \\| c_d
    """
    return str(text).translate(_MD_PUNCTUATION)


def md_code(text: object) -> str:
    """Quote ``text`` as a Markdown code span that no backtick, pipe or newline can leave.

    Example:
        >>> print(md_code("a`b|c"))
        `a'b\\|c`
    """
    s = str(text).replace("`", "'").replace("\n", " ").replace("\r", " ").replace("|", "\\|")
    return f"`{s}`"


def protocol_title(protocol: Mapping[str, Any]) -> str:
    """Name a report's protocol with the ``--set`` overrides it was run with.

    Args:
        protocol: the report's ``protocol`` section (``name``, optional ``overrides``).

    Example:
        >>> protocol_title({"name": "synth_test.albef", "overrides": ["dataset.split=val"]})
        'synth_test.albef --set dataset.split=val'
    """
    return " ".join(
        [str(protocol["name"]), *(f"--set {o}" for o in protocol.get("overrides") or ())]
    )


def render_report_json(report: Mapping[str, Any]) -> bytes:
    """Serialise a report dict: sorted keys, 2-space indent, UTF-8, no NaN."""
    return (
        json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    ).encode()


def _interval(agg: Mapping[str, Any]) -> str:
    if agg["mean"] is None:
        return "undefined"
    if agg["ci_low"] is None:
        return f"{agg['mean']:.3f}"
    return f"{agg['mean']:.3f} [{agg['ci_low']:.3f}, {agg['ci_high']:.3f}]"


def _undefined(agg: Mapping[str, Any]) -> str:
    reasons = agg.get("undefined") or {}
    total = sum(reasons.values())
    if not total:
        return "undefined=0"
    return f"undefined={total} ({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))})"


def _interval_rule(boot: Mapping[str, Any]) -> str:
    cluster = boot.get("cluster")
    rule = (
        "95%: Wilson score for 0/1 metrics, percentile bootstrap otherwise "
        f"({boot['resamples']} resamples, seed {boot['seed']})"
    )
    if cluster:
        rule += (
            f"; samples clustered by {md_text(cluster)} (Wilson with the design-effect "
            "sample size, bootstrap over whole clusters)"
        )
    return rule


def headline_lines(
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]], tag: str = "all"
) -> list[str]:
    """One line per metric for ``tag``: ``key  tag=all  n=600  undefined=0  0.412 [0.372, 0.451]``."""
    width = max((len(k) for k in metrics), default=0)
    lines = []
    for key, by_tag in metrics.items():
        if tag in by_tag:
            agg = by_tag[tag]
            few = f"  (n < {SMALL_N})" if agg["n"] < SMALL_N else ""
            lines.append(
                f"{key:<{width}}  tag={tag}  n={agg['n']}  {_undefined(agg)}  {_interval(agg)}{few}"
            )
    return lines


def _dataset_notes(dataset: Mapping[str, Any]) -> list[str]:
    """Sub-items of the dataset line: ``--limit``, the adapter's warnings, what it left out by rule."""
    lines = []
    if dataset.get("limit") is not None:
        lines.append(
            f"  - limited: `--limit {dataset['limit']}` scored only the first samples by id; "
            "not comparable with a full run (`leaderboard add` refuses it)"
        )
    control = dataset.get("control")
    if control and control.get("name") == "blind":
        k, n = control["donors_describing_target"], dataset["n_samples"]
        lines.append(
            f"  - blind control: {k} of {n} donor phrases ({k / n:.1%}) still describe their "
            "target (its shape, colour, category or a word of its phrase), tagged "
            "`blind:donor-describes-target`; the others name something else, so a method "
            "that reads the phrase should fall to what the image alone tells it"
        )
    lines += [f"  - warning: {md_text(w)}" for w in dataset.get("warnings") or ()]
    resized = dataset.get("size_mismatches")
    if resized and resized["count"]:
        first = ", ".join(md_code(sid) for sid in resized["examples"])
        more = ", …" if resized["count"] > len(resized["examples"]) else ""
        lines.append(
            f"  - warning: {resized['count']} samples not scored, undefined as "
            f"`image_size_mismatch`: their image's real size differs from their record's "
            f"(`dataset.on_size_mismatch: undefined`; first: {first}{more})"
        )
    skipped = dataset.get("skipped") or {}
    if skipped:
        counts = ", ".join(f"{md_text(reason)} {n}" for reason, n in sorted(skipped.items()))
        lines.append(f"  - left out by the adapter: {counts}")
    return lines


def _fingerprint_note(method: Mapping[str, Any]) -> str:
    if method.get("fingerprint_complete", True):
        return ""
    return (
        " — it covers the plugin's code only, not its weights (docs/plugins.md): this report "
        "cannot join a leaderboard"
    )


def _method_notes(m: Mapping[str, Any]) -> list[str]:
    """The recipe and its knobs, for methods that declare ``settings`` (``hf:``)."""
    settings = m.get("settings")
    if not settings or "recipe" not in settings:
        return []
    knobs = ", ".join(f"{k}={v}" for k, v in sorted(settings.get("knobs", {}).items()))
    return [
        f"  - {md_text(settings.get('model_class', ''))} read out by "
        f"{md_code(settings['recipe'])}: {md_text(knobs)} (every setting: report.json "
        "method.settings)"
    ]


def _notes_line(m: Mapping[str, Any]) -> list[str]:
    """The samples the method noted (``method.notes``), counted; scored per tag below."""
    notes = m.get("notes") or {}
    if not notes:
        return []
    counts = ", ".join(f"{md_code(tag)} {n}" for tag, n in sorted(notes.items()))
    return [f"- notes on samples: {counts} (scored per tag under By tag)"]


def render_markdown(report: Mapping[str, Any], figures: Sequence[str]) -> bytes:
    """The human summary: what was run, headline lines, the per-tag table, the figures."""
    p, d, m = report["protocol"], report["dataset"], report["method"]
    metrics = report["metrics"]
    out = [
        f"# {md_text(m['name'])} on {md_text(protocol_title(p))} (split {md_text(d['split'])})",
        "",
        f"- protocol: {md_code(p['name'])} id `{p['id']}` (sha256 `{p['hash']}`)",
        *(
            [f"  - overrides: {', '.join(md_code('--set ' + o) for o in p['overrides'])}"]
            if p.get("overrides")
            else []
        ),
        f"- dataset: {md_text(d['name'])} / {md_text(d['split'])} via {md_code(d['adapter'])}, "
        f"{d['n_samples']} samples, fingerprint `{d['fingerprint'][:16]}`",
        *_dataset_notes(d),
        f"- method: {md_code(m['spec'])} ({md_text(m['supervision'])}), fingerprint "
        f"`{m['fingerprint'][:16]}`" + _fingerprint_note(m),
        f"- model card: {md_text(card_summary(report.get('model_card')))}",
        *_method_notes(m),
        *_notes_line(m),
        f"- intervals: {_interval_rule(p['canonical']['bootstrap'])}",
        "",
        "## Headline",
        "",
        "```",
        *headline_lines(metrics),
        "```",
        "",
    ]
    split_lines = split_metric_lines(report.get("split_metrics") or {})
    if split_lines:
        out += [
            "## Split-level metrics",
            "",
            "```",
            *split_lines,
            "```",
            "",
            "Recomputable from "
            + ", ".join(md_code(sec["file"]) for sec in report["split_metrics"].values())
            + " (every sample's inputs to these numbers; docs/reports.md).",
            "",
        ]
    tags = sorted({t for by_tag in metrics.values() for t in by_tag if t != "all"})
    if tags:
        keys = list(metrics)
        out += [
            "## By tag",
            "",
            "| tag | n | " + " | ".join(md_text(k) for k in keys) + " |",
            "|---|---:|" + "---:|" * len(keys),
        ]
        few = False
        for t in tags:
            n = next((metrics[k][t]["n"] for k in keys if t in metrics[k]), 0)
            cells = [_interval(metrics[k][t]) if t in metrics[k] else "" for k in keys]
            mark = " \\*" if n < SMALL_N else ""
            few = few or bool(mark)
            out.append(f"| {md_text(t)}{mark} | {n} | " + " | ".join(cells) + " |")
        if few:
            out += ["", f"\\* fewer than {SMALL_N} samples: the mean is noisy, read the interval."]
        out.append("")
    if figures:
        out += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    return "\n".join(out).encode("utf-8")
