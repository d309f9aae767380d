"""The human study report as Markdown, and its figure (same input, same bytes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_PNG_META = {"Software": None}


def _f(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def render_markdown(r: dict[str, Any]) -> str:
    """``report.md`` from the cleaned ``report.json`` mapping."""
    c, pos, ag = r["counts"], r["position_bias"], r["agreement"]
    lines = [
        "# Human study report",
        "",
        f"Study `{r['study_id'][:12]}` · judgements sha256 `{r['judgements_sha256'][:16]}` · "
        f"bootstrap {r['bootstrap']['resamples']} resamples over samples, seed {r['bootstrap']['seed']}.",
        "",
        f"{c['judgements']} judgements kept ({c['gold_judgements']} on gold items), "
        f"{c['study_items']} study items; {c['ties']} ties, {c['ambiguous']} 'phrase ambiguous'; "
        f"excluded: {c['excluded_annotators']} annotators, {c['excluded_items']} items.",
        "",
    ]
    lines += {"pairwise": _pairwise_lines, "choose": _choose_lines, "click": _click_lines}[
        r["type"]
    ](r)
    shares = ", ".join(f"{p['position']}: {_f(p['share'])}" for p in pos["positions"])
    lines += [
        "",
        "## Position bias and agreement",
        "",
        f"P(left chosen) = {_f(pos['p_left'])} [{_f(pos['ci_low'])}, {_f(pos['ci_high'])}] over {pos['n']} "
        f"one-sided answers; share of picks by screen position {shares} (equal shares = no bias).",
        "",
        f"Krippendorff's α (nominal, on method identity or, for choose, the picked map) = {_f(ag['krippendorff_alpha'])} "
        f"[{_f(ag['alpha_ci_low'])}, {_f(ag['alpha_ci_high'])}]; raw agreement {_f(ag['percent_agreement'])}; "
        f"Fleiss' κ = {_f(ag['fleiss_kappa'])}{' (' + ag['fleiss_note'] + ')' if ag['fleiss_note'] else ''}; "
        f"mean pairwise Cohen's κ = {_f(ag['mean_pairwise_cohen_kappa'])} over {ag['cohen_pairs']} annotator pairs. "
        "α ≥ 0.8 is reliable, ≥ 0.667 tentative (Krippendorff); – means undefined (fewer "
        "than two ratings per item, or every answer the same).",
        "",
        "## Human judgement against the automatic metrics",
        "",
        "Kendall τ between the human scores and each metric's mean, across methods; its 95 % "
        "interval comes from the human scores' bootstrap over samples (the metric means stay "
        "fixed). With two methods τ can only be ±1.",
        "",
        "| metric | Kendall τ (human score vs mean, across methods) | 95 % interval | methods | items where the human winner has the better value | items |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, m in r["automatic_metrics"].items():
        lines.append(
            f"| {key} | {_f(m['kendall_tau'])} | [{_f(m['tau_ci_low'])}, {_f(m['tau_ci_high'])}] | "
            f"{m['n_methods']} | {_f(m['item_agreement'])} | {m['items_compared']} |"
        )
    lines += [
        "",
        "## Annotators",
        "",
        f"Answers faster than {r['analysis']['min_response_ms']} ms are flagged, never dropped; "
        "exclusions are written into the study folder's study.yaml.",
        "",
        "| annotator | judgements | gold items | gold accuracy | fast answers | median time (ms) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for a in r["annotators"]:
        lines.append(
            f"| {a['annotator']} | {a['judgements']} | {a['gold_n']} | {_f(a['gold_accuracy'])} | "
            f"{a['fast']} | {_f(a['median_rt_ms'], 0)} |"
        )
    return "\n".join(lines) + "\n"


def _pairwise_lines(r: dict[str, Any]) -> list[str]:
    lines = [
        "## Bradley–Terry scores",
        "",
        "Log-odds, centred to sum 0; 95 % intervals from the item bootstrap; rank = 1 + methods "
        "whose interval lies wholly above.",
        "",
        "| rank | method | score | 95 % CI |",
        "|---:|---|---:|---|",
    ]
    for m in sorted(
        r["bradley_terry"]["methods"], key=lambda m: (m["rank"], -m["score"], m["method"])
    ):
        lines.append(
            f"| {m['rank']} | {m['method']} | {_f(m['score'])} | [{_f(m['ci_low'])}, {_f(m['ci_high'])}] |"
        )
    lines += [
        "",
        "## Win rates (ties count half)",
        "",
        "| A | B | n | A wins | B wins | ties | A's win rate | Wilson 95 % |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for p in r["pairs"]:
        lines.append(
            f"| {p['a']} | {p['b']} | {p['n']} | {p['a_wins']} | {p['b_wins']} | {p['ties']} | "
            f"{_f(p['a_win_rate'])} | [{_f(p['ci_low'])}, {_f(p['ci_high'])}] |"
        )
    return lines


def _choose_lines(r: dict[str, Any]) -> list[str]:
    c = r["choose"]
    lines = [
        f"## Which map shows the phrase (k = {c['k']}, chance {_f(c['chance'])})",
        "",
        "| method | n | picked its own map | none | share | Wilson 95 % |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for m in c["methods"]:
        lines.append(
            f"| {m['method']} | {m['n']} | {m['correct']} | {m['none']} | {_f(m['accuracy'])} | "
            f"[{_f(m['ci_low'])}, {_f(m['ci_high'])}] |"
        )
    return lines


def _click_lines(r: dict[str, Any]) -> list[str]:
    lines = [
        "## Human pointing game",
        "",
        "A click inside a GT box is a hit; 'no single object' is a miss. The methods' pointing "
        "means are over the same samples.",
        "",
        "| who | n | hit rate | Wilson 95 % |",
        "|---|---:|---:|---|",
    ]
    for m in r["click"]["rows"]:
        ci = f"[{_f(m['ci_low'])}, {_f(m['ci_high'])}]" if m["ci_low"] is not None else ""
        lines.append(f"| {m['method']} | {m['n']} | {_f(m['score'])} | {ci} |")
    return lines


def plot_scores(path: Path, rows: list[dict[str, Any]], xlabel: str) -> Path:
    """A dot-and-interval plot of one score per method (``score``, ``ci_low``, ``ci_high``)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    methods = sorted(rows, key=lambda m: (m["score"] or 0.0, m["method"]))
    fig, ax = plt.subplots(figsize=(6, 0.6 * len(methods) + 1.2), dpi=100)
    for y, m in enumerate(methods):
        if m["ci_low"] is not None and m["ci_high"] is not None:
            ax.plot([m["ci_low"], m["ci_high"]], [y, y], color="0.4", lw=2)
        if m["score"] is not None:
            ax.plot([m["score"]], [y], "o", color="C0")
    ax.set_yticks(range(len(methods)), [m["method"] for m in methods])
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    fig.savefig(path, metadata=_PNG_META)
    plt.close(fig)
    return path
