"""``groundbench human export`` and ``analyze``: judgements → canonical JSONL, and the
statistics of a pairwise study → ``report.json``, ``report.md`` and ``bradley_terry.png``.

Scoring: ``A``/``B`` name a screen side, mapped back to the method through the order stored
with the answer; ``both_good`` and ``both_wrong`` are ties (half a win each); ``ambiguous``
is left out of win rates and Bradley–Terry and counted on its own. Gold items are only used
for each annotator's gold accuracy. Exclusions come from the folder's ``study.yaml``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from groundbench.human.prepare import MANIFEST, STUDY_COPY
from groundbench.human.report import plot_scores, render_markdown
from groundbench.human.stats import (
    bootstrap_bt,
    bradley_terry,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    mean_pairwise_cohen,
    rank_by_intervals,
    wilson,
)
from groundbench.human.store import Store
from groundbench.human.study import StudyError, read_analysis_settings

REPORT_SCHEMA = 1
RESAMPLES = 1000
TIES = ("both_good", "both_wrong")
FIGURE = {"pairwise": "bradley_terry.png", "choose": "accuracy.png", "click": "pointing.png"}
FIGURE_LABEL = {
    "pairwise": "Bradley–Terry score (log-odds, 95 % item-bootstrap CI)",
    "choose": "share of items where the phrase's own map was picked (95 % Wilson CI)",
    "click": "human clicks in a GT box (95 % Wilson CI) and each method's pointing mean",
}


def export_jsonl(folder: str | Path) -> tuple[bytes, str]:
    """Every judgement (current, then superseded ones) as sorted canonical JSONL, and its sha256."""
    store = Store(folder)
    try:
        rows = [{**asdict(j), "status": "current"} for j in store.answers()]
        rows += [{**asdict(j), "status": "superseded"} for j in store.history()]
    finally:
        store.close()
    lines = sorted(
        json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for r in rows
    )
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    return data, hashlib.sha256(data).hexdigest()


def _outcomes(manifest: dict, judgements: list[dict], excluded: set[str]) -> list[dict]:
    """One record per kept judgement: sample, the pair of methods, the chosen canonical slot."""
    items = {it["id"]: it for it in manifest["items"]}
    out = []
    for j in judgements:
        item = items.get(j["item"])
        if item is None or j["annotator"] in excluded or j["item"] in excluded:
            continue
        order = json.loads(j["order_json"])
        answer = j["answer"]
        pos = {"A": 0, "B": 1}.get(answer) if manifest["type"] == "pairwise" else None
        if manifest["type"] == "choose" and answer.isdigit():
            pos = int(answer) - 1
        slot = None if pos is None else order[pos]
        out.append({
            **j, "sample": item["sample"], "gold": item["gold"], "slot": slot, "position": pos, "target": item.get("target"), "hit": _hit(j, item.get("boxes")), "methods": [s["source"] for s in item["slots"]],
        })  # fmt: skip
    return sorted(out, key=lambda r: (r["item"], r["annotator"]))


def analyze(folder: str | Path, out: str | Path, resamples: int = RESAMPLES) -> Path:
    """Write ``report.json``, ``report.md`` and the figure to ``out``; return it."""
    folder, out = Path(folder), Path(out)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    settings = read_analysis_settings(folder / STUDY_COPY)
    data, _ = export_jsonl(folder)
    report, rows = compute_report(manifest, settings, data, resamples, where=str(folder))
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, sort_keys=True, indent=1, allow_nan=False) + "\n"
    (out / "report.json").write_text(text, encoding="utf-8")
    plot_scores(out / FIGURE[report["type"]], rows, FIGURE_LABEL[report["type"]])
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return out


def analysis_hash(settings: dict) -> str:
    """sha256 of the canonical analysis settings (``min_response_ms`` and ``exclude``)."""
    return hashlib.sha256(
        json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def compute_report(
    manifest: dict, settings: dict, judgements: bytes, resamples: int, *, where: str
) -> tuple[dict, list[dict]]:
    """The statistics of a study from its manifest, analysis settings and exported JSONL.

    A pure function of its inputs (the leaderboard recomputes a stored study with it).

    Returns:
        ``(report, figure rows)``: the report as written to ``report.json`` (NaN → None,
        floats rounded to 12 digits) and the rows the figure plots.

    Raises:
        StudyError: no study item has a judgement (``where`` names the study).
    """
    digest = hashlib.sha256(judgements).hexdigest()
    current = [
        r for r in map(json.loads, judgements.decode().splitlines()) if r["status"] == "current"
    ]
    excluded = set(settings["exclude"]["annotators"]) | set(settings["exclude"]["items"])
    records = _outcomes(manifest, current, excluded)
    if not any(r["gold"] is None for r in records):
        raise StudyError(f"{where}: no judgement of a study item yet; nothing to analyse")
    seed = int(manifest["design"]["seed"])
    scored = [r for r in records if r["gold"] is None]
    report = {
        "schema": REPORT_SCHEMA,
        "study_id": manifest["study_id"],
        "analysis_hash": analysis_hash(settings),
        "analysis": settings,
        "judgements_sha256": digest,
        "bootstrap": {"resamples": resamples, "seed": seed, "unit": "sample"},
        "type": manifest["type"],
        "counts": _counts(records, scored, settings),
        "position_bias": _position(scored, int(manifest["design"]["k"])),
        "agreement": _agreement(scored, resamples, seed),
        "annotators": _annotators(records, settings["min_response_ms"], manifest["type"]),
    }
    if manifest["type"] == "pairwise":
        report["pairs"] = _pairs(manifest["methods"], scored)
        report["bradley_terry"], boot = _bt(manifest["methods"], scored, resamples, seed)
        scores = {m["method"]: m["score"] for m in report["bradley_terry"]["methods"]}
        rows = report["bradley_terry"]["methods"]
    elif manifest["type"] == "choose":
        report["choose"] = _choose(manifest, scored)
        scores = {m["method"]: m["accuracy"] for m in report["choose"]["methods"]}
        boot = _bootstrap_choose(manifest["methods"], scored, resamples, seed)
        rows = [m | {"score": m["accuracy"]} for m in report["choose"]["methods"]]
    else:
        report["click"] = _click(manifest, scored)
        scores, rows, boot = {}, report["click"]["rows"], None
    report["automatic_metrics"] = _vs_metrics(manifest, scored, scores, boot)
    return _clean(report), _clean(rows)


def _clean(obj: Any) -> Any:
    """NaN → None and floats rounded to 12 digits, so the JSON is strict and stable."""
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else round(obj, 12)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _counts(records: list[dict], scored: list[dict], settings: dict) -> dict[str, int]:
    return {
        "judgements": len(records),
        "study_items": len({r["item"] for r in scored}),
        "gold_judgements": sum(r["gold"] is not None for r in records),
        "ambiguous": sum(r["answer"] == "ambiguous" for r in scored),
        "ties": sum(r["answer"] in TIES for r in scored),
        "excluded_annotators": len(settings["exclude"]["annotators"]),
        "excluded_items": len(settings["exclude"]["items"]),
    }


def _battles(methods: list[str], scored: list[dict]):
    index = {m: i for i, m in enumerate(methods)}
    rows = [r for r in scored if r["answer"] != "ambiguous"]
    first = np.array([index[r["methods"][0]] for r in rows], int)
    second = np.array([index[r["methods"][1]] for r in rows], int)
    score = np.array([0.5 if r["slot"] is None else 1.0 - r["slot"] for r in rows], float)
    return first, second, score, [r["sample"] for r in rows]


def _pairs(methods: list[str], scored: list[dict]) -> list[dict]:
    first, second, score, _ = _battles(methods, scored)
    out = []
    for a in range(len(methods)):
        for b in range(a + 1, len(methods)):
            sel = (first == a) & (second == b)
            n, wins = int(sel.sum()), float(score[sel].sum())
            lo, hi = wilson(wins, n)
            out.append({
                "a": methods[a], "b": methods[b], "n": n,
                "a_wins": int((score[sel] == 1).sum()), "b_wins": int((score[sel] == 0).sum()),
                "ties": int((score[sel] == 0.5).sum()),
                "a_win_rate": wins / n if n else math.nan, "ci_low": lo, "ci_high": hi,
            })  # fmt: skip
    return out


def _bt(
    methods: list[str], scored: list[dict], resamples: int, seed: int
) -> tuple[dict, np.ndarray]:
    """The Bradley–Terry section, and the ``(resamples, methods)`` bootstrap refits."""
    first, second, score, cluster = _battles(methods, scored)
    fit = bradley_terry(len(methods), first, second, score)
    boot = bootstrap_bt(len(methods), first, second, score, np.array(cluster), resamples, seed)
    low, high = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
    ranks = rank_by_intervals(list(low), list(high))
    section = {
        "scale": "natural-log odds, centred to sum 0",
        "l2": 1e-3,
        "methods": [
            {
                "method": m,
                "score": float(fit[i]),
                "ci_low": float(low[i]),
                "ci_high": float(high[i]),
                "rank": ranks[i],
            }
            for i, m in enumerate(methods)
        ],
    }
    return section, boot


def _position(scored: list[dict], k: int) -> dict:
    """Share of picks per screen position (position 1 is the left one), Wilson intervals."""
    sided = [r for r in scored if r["position"] is not None]
    n = len(sided)
    shares = []
    for p in range(k):
        hits = sum(r["position"] == p for r in sided)
        lo, hi = wilson(hits, n)
        shares.append(
            {"position": p + 1, "share": hits / n if n else math.nan, "ci_low": lo, "ci_high": hi}
        )
    first = shares[0]
    return {
        "n": n,
        "p_left": first["share"],
        "ci_low": first["ci_low"],
        "ci_high": first["ci_high"],
        "positions": shares,
    }


def _choose(manifest: dict, scored: list[dict]) -> dict:
    """Per method: how often its map of the phrase was picked among its ``k`` maps."""
    k = int(manifest["design"]["k"])
    rows = []
    for m in manifest["methods"]:
        mine = [r for r in scored if r["methods"][0] == m and r["answer"] != "ambiguous"]
        right = sum(r["slot"] == r["target"] for r in mine)
        lo, hi = wilson(right, len(mine))
        rows.append({
            "method": m, "n": len(mine), "correct": right, "none": sum(r["answer"] == "none" for r in mine),
            "accuracy": right / len(mine) if mine else math.nan, "ci_low": lo, "ci_high": hi,
        })  # fmt: skip
    return {"k": k, "chance": 1.0 / k, "methods": rows}


def _bootstrap_choose(
    methods: list[str], scored: list[dict], resamples: int, seed: int
) -> np.ndarray:
    """``(resamples, methods)`` shares of own maps picked, on samples drawn with replacement
    (every judgement of a drawn sample comes along, as in the Bradley–Terry bootstrap)."""
    rows = [r for r in scored if r["answer"] != "ambiguous"]
    units, inverse = np.unique([r["sample"] for r in rows], return_inverse=True)
    method = np.array([methods.index(r["methods"][0]) for r in rows], int)
    right = np.array([r["slot"] == r["target"] for r in rows], float)
    rng = np.random.default_rng(seed)
    out = np.full((resamples, len(methods)), math.nan)
    for b in range(resamples):
        w = np.bincount(rng.integers(0, len(units), len(units)), minlength=len(units))[inverse]
        n = np.bincount(method, w, len(methods))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b] = np.bincount(method, w * right, len(methods)) / n
    return out


def _hit(j: dict, boxes: list | None) -> bool | None:
    """Whether a click falls in one of the item's boxes (edges included); None if no click."""
    if boxes is None or j["click_x"] is None:
        return None
    x, y = j["click_x"], j["click_y"]
    return any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)


def _click(manifest: dict, scored: list[dict]) -> dict:
    """The human pointing game: clicks inside a GT box, over all non-ambiguous answers (a 'no
    single object' answer is a miss), beside each method's pointing means over the same items."""
    rows = [r for r in scored if r["answer"] != "ambiguous"]
    hits = sum(bool(r["hit"]) for r in rows)
    lo, hi = wilson(hits, len(rows))
    human = {"method": "human", "n": len(rows), "hits": hits, "score": hits / len(rows) if rows else math.nan,
             "ci_low": lo, "ci_high": hi, "no_single_object": sum(r["answer"] == "no_single_object" for r in rows)}  # fmt: skip
    samples = sorted({r["sample"] for r in rows})
    metrics, out = manifest["metrics"], [human]
    for key in sorted(k for k in metrics["keys"] if k.startswith("pointing")):
        for m in manifest["methods"]:
            values = [metrics[m][key]["samples"].get(s) for s in samples]
            values = [v for v in values if v is not None]
            mean = float(np.mean(values)) if values else math.nan
            out.append(
                {
                    "method": f"{m} {key}",
                    "n": len(values),
                    "score": mean,
                    "ci_low": None,
                    "ci_high": None,
                }
            )
    return {"rows": out}


def _value(r: dict) -> str:
    """The answer in method identity (pairwise) or canonical slot (choose), never screen side."""
    if r["hit"] is not None:
        return "hit" if r["hit"] else "miss"
    if r["slot"] is None:
        return r["answer"]
    return f"slot {r['slot']}" if r["target"] is not None else r["methods"][r["slot"]]


def _agreement(scored: list[dict], resamples: int, seed: int) -> dict:
    by_item: dict[str, list[str]] = defaultdict(list)
    ratings: dict[str, dict[str, str]] = defaultdict(dict)
    for r in scored:
        by_item[r["item"]].append(_value(r))
        ratings[r["annotator"]][r["item"]] = _value(r)
    items = sorted(by_item)
    alpha = krippendorff_alpha_nominal([by_item[i] for i in items])
    rng = np.random.default_rng(seed)
    boot = [
        krippendorff_alpha_nominal(
            [by_item[items[k]] for k in rng.integers(0, len(items), len(items))]
        )
        for _ in range(resamples)
    ]
    boot = [b for b in boot if not math.isnan(b)]
    cats = sorted({v for vs in by_item.values() for v in vs})
    sizes = {len(by_item[i]) for i in items}
    fleiss, note = math.nan, "raters per item differ"
    if len(sizes) == 1 and min(sizes) >= 2:
        fleiss, note = (
            fleiss_kappa(np.array([[by_item[i].count(c) for c in cats] for i in items])),
            "",
        )
    pairs = [(a, b) for vs in by_item.values() for k, a in enumerate(vs) for b in vs[k + 1 :]]
    cohen, n_pairs = mean_pairwise_cohen(ratings)
    return {
        "values": "method identity or the answer (both_good, both_wrong, ambiguous)",
        "krippendorff_alpha": alpha,
        "alpha_ci_low": float(np.percentile(boot, 2.5)) if boot else math.nan,
        "alpha_ci_high": float(np.percentile(boot, 97.5)) if boot else math.nan,
        "percent_agreement": sum(a == b for a, b in pairs) / len(pairs) if pairs else math.nan,
        "fleiss_kappa": fleiss,
        "fleiss_note": note,
        "mean_pairwise_cohen_kappa": cohen,
        "cohen_pairs": n_pairs,
    }


def _annotators(records: list[dict], min_ms: int, kind: str) -> list[dict]:
    """Per annotator: gold accuracy (the known slot picked; in a click study, a click inside
    the box), answers faster than ``min_ms`` and the median response time."""
    out = []
    for a in sorted({r["annotator"] for r in records}):
        mine = [r for r in records if r["annotator"] == a]
        gold = [r for r in mine if r["gold"] is not None]
        right = sum(bool(r["hit"]) if kind == "click" else r["slot"] == r["gold"] for r in gold)
        out.append({
            "annotator": a, "judgements": len(mine), "gold_n": len(gold),
            "gold_accuracy": right / len(gold) if gold else math.nan,
            "fast": sum(r["rt_ms"] < min_ms for r in mine),
            "median_rt_ms": float(np.median([r["rt_ms"] for r in mine])),
        })  # fmt: skip
    return out


def _vs_metrics(
    manifest: dict, scored: list[dict], scores: dict[str, float], boot: np.ndarray | None
) -> dict:
    """Kendall τ of the human scores against each metric's mean across methods, with a 95 %
    percentile interval from the human scores' bootstrap over samples ``boot`` (``(resamples,
    methods)``; the metric means stay fixed); per pairwise item, how often the human majority
    winner has the better per-sample metric value."""
    metrics = manifest["metrics"]
    methods = manifest["methods"]
    wins: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    pair_of = {}
    for r in scored:
        if r["answer"] != "ambiguous" and manifest["type"] == "pairwise":
            pair_of[r["item"]] = (r["sample"], r["methods"])
            for k, m in enumerate(r["methods"]):
                wins[r["item"]][m] += 0.5 if r["slot"] is None else float(r["slot"] == k)
    out = {}
    for key, info in sorted(metrics["keys"].items()):
        means = [metrics[m][key]["mean"] for m in methods]
        defined = [m for m, v in zip(methods, means, strict=True) if v is not None]
        tau = low = high = math.nan
        if len(defined) >= 2 and scores:
            got = [metrics[m][key]["mean"] for m in defined]
            tau = float(kendalltau([scores[m] for m in defined], got).statistic)
            if boot is not None:
                cols = [methods.index(m) for m in defined]
                taus = np.array([kendalltau(row[cols], got).statistic for row in boot])
                taus = taus[~np.isnan(taus)]
                if len(taus):
                    low, high = np.percentile(taus, [2.5, 97.5])
        sign = 1.0 if info["higher_is_better"] else -1.0
        agree = n = 0
        for item, (sample, (a, b)) in sorted(pair_of.items()):
            va, vb = metrics[a][key]["samples"].get(sample), metrics[b][key]["samples"].get(sample)
            human = wins[item][a] - wins[item][b]
            if va is None or vb is None or va == vb or human == 0:
                continue
            n += 1
            agree += (sign * (va - vb) > 0) == (human > 0)
        out[key] = {
            "kendall_tau": tau, "tau_ci_low": low, "tau_ci_high": high, "n_methods": len(defined), "means": dict(zip(methods, means, strict=True)),
            "item_agreement": agree / n if n else math.nan, "items_compared": n,
        }  # fmt: skip
    return out
