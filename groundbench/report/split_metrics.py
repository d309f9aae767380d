"""Split-level metrics of a report: MaxBoxAccV2 and PxAP, and the files they come from.

A maximum over thresholds, or a precision-recall curve pooled over a split, is a number of
the whole split, not a mean of per-sample values, so it cannot come from ``samples.csv``.
A report instead keeps what each is computed from, and ``report.json`` ``split_metrics``
holds the numbers and each file's sha256. Anyone (the leaderboard's validator included)
recomputes the numbers from the files.

``maxboxacc_hits.csv`` columns: ``split`` (``evaluated`` or ``calibration``), ``id``, then per
IoU level ``δ`` a column ``hits@δ``: a string of ``T`` characters, the ``t``-th ``1`` when
the sample hits at ``τ_t`` (the thresholds listed in the section, ``0, 0.01, …, 0.99``)
and ``0`` otherwise. Rows are sorted by split (evaluated first) and id.

``pxap_histograms.csv`` columns: ``id``, ``positives``, ``negatives``: per sample, the counts
of its mask's and its other valid pixels' normalised scores in each bin of
:data:`~groundbench.metrics.maxboxacc.PXAP_EDGES` (space-separated, ascending).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from groundbench.errors import DataFormatError
from groundbench.metrics.maxboxacc import binned_pxap, calibrated_box_acc, max_box_acc

HITS_FILE = "maxboxacc_hits.csv"
PXAP_FILE = "pxap_histograms.csv"
EVALUATED, CALIBRATION = "evaluated", "calibration"


def delta_key(delta: float) -> str:
    """The JSON key and column suffix of an IoU level (``0.5`` → ``"0.5"``)."""
    return f"{delta:g}"


def hits_to_csv(
    evaluated: tuple[Sequence[str], np.ndarray],
    calibration: tuple[Sequence[str], np.ndarray] | None,
    deltas: Sequence[float],
) -> bytes:
    """``maxboxacc_hits.csv`` bytes from ``(ids, hits (N, T, D) bool)`` of each split."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["split", "id", *(f"hits@{delta_key(d)}" for d in deltas)])
    for split, part in ((EVALUATED, evaluated), (CALIBRATION, calibration)):
        if part is None:
            continue
        ids, hits = part
        for i in np.argsort(np.asarray(ids, dtype=object), kind="stable"):
            row = ["".join("1" if h else "0" for h in hits[i, :, j]) for j in range(len(deltas))]
            w.writerow([split, ids[i], *row])
    return buf.getvalue().encode("utf-8")


def parse_hits_csv(
    text: str, deltas: Sequence[float], n_thresholds: int, *, where: str
) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """``{split: (ids, hits (N, T, D) bool)}`` from the text of a ``maxboxacc_hits.csv``.

    Raises:
        DataFormatError: a column is missing, a split is unknown, an id repeats within its
            split, or a hits cell is not ``T`` characters of ``0``/``1``.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [f"hits@{delta_key(d)}" for d in deltas]
    missing = [c for c in ("split", "id", *columns) if c not in (reader.fieldnames or [])]
    if missing:
        raise DataFormatError(
            f"{where}: missing column(s) {missing}; re-run groundbench evaluate to write it"
        )
    rows: dict[str, tuple[list[str], list[list[list[bool]]]]] = {}
    for line, row in enumerate(reader, start=2):
        split = row["split"]
        if split not in (EVALUATED, CALIBRATION):
            raise DataFormatError(
                f"{where}, line {line}: split {split!r} is neither {EVALUATED} nor {CALIBRATION}"
            )
        cells = [row[c] or "" for c in columns]
        if any(len(c) != n_thresholds or set(c) - {"0", "1"} for c in cells):
            raise DataFormatError(
                f"{where}, line {line}: each hits cell must be {n_thresholds} characters of 0 "
                "or 1 (one per threshold)"
            )
        ids, hits = rows.setdefault(split, ([], []))
        ids.append(row["id"])
        hits.append([[c[t] == "1" for c in cells] for t in range(n_thresholds)])
    out = {}
    for split, (ids, hits) in rows.items():
        if len(set(ids)) != len(ids):
            raise DataFormatError(f"{where}: a sample id appears twice in split {split}")
        arr = np.array(hits, dtype=bool).reshape(len(ids), n_thresholds, len(deltas))
        out[split] = (tuple(ids), arr)
    return out


def _summary(acc: Any, deltas: Sequence[float]) -> dict[str, Any]:
    return {
        "value": acc.value,
        "per_delta": {delta_key(d): acc.per_delta[float(d)] for d in deltas},
        "thresholds": {delta_key(d): acc.best_threshold[float(d)] for d in deltas},
    }


def maxboxacc_numbers(
    evaluated: np.ndarray,
    calibration: np.ndarray | None,
    deltas: Sequence[float],
    thresholds: Sequence[float],
) -> dict[str, Any]:
    """The numbers of ``split_metrics.maxboxacc`` from the hits of each split.

    Returns:
        ``calibrated`` (τ*_δ chosen on the calibration split, the accuracy read on the
        evaluated one; None without a calibration split) and ``max_over_thresholds`` (each
        δ's best τ on the evaluated split itself: MaxBoxAccV2 as Choe et al. report it),
        each as ``{value, per_delta, thresholds}``, and ``n`` / ``n_calibration``.
    """
    own = max_box_acc(evaluated, thresholds, deltas)
    cal = None
    if calibration is not None:
        cal = _summary(calibrated_box_acc(calibration, evaluated, thresholds, deltas), deltas)
    return {
        "n": int(evaluated.shape[0]),
        "n_calibration": None if calibration is None else int(calibration.shape[0]),
        "calibrated": cal,
        "max_over_thresholds": _summary(own, deltas),
    }


def pxap_to_csv(ids: Sequence[str], positives: np.ndarray, negatives: np.ndarray) -> bytes:
    """``pxap_histograms.csv``: ``id``, then the mask's and the other pixels' score counts per
    bin (space-separated, bins ascending), one row per sample sorted by id."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "positives", "negatives"])
    for i in np.argsort(np.asarray(ids, dtype=object), kind="stable"):
        w.writerow([ids[i], " ".join(map(str, positives[i])), " ".join(map(str, negatives[i]))])
    return buf.getvalue().encode("utf-8")


def parse_pxap_csv(
    text: str, n_bins: int, *, where: str
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """``(ids, positives (N, bins), negatives (N, bins))`` from a ``pxap_histograms.csv``.

    Raises:
        DataFormatError: a column is missing, an id repeats, or a cell is not ``bins``
            non-negative integers.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames != ["id", "positives", "negatives"]:
        raise DataFormatError(
            f"{where}: the header must be id,positives,negatives; re-run groundbench evaluate"
        )
    ids, pos, neg = [], [], []
    for line, row in enumerate(reader, start=2):
        counts = []
        for column in ("positives", "negatives"):
            cells = (row[column] or "").split(" ")
            if len(cells) != n_bins or not all(c.isdigit() for c in cells):
                raise DataFormatError(
                    f"{where}, line {line}: {column} must be {n_bins} non-negative integers "
                    "separated by spaces"
                )
            counts.append([int(c) for c in cells])
        ids.append(row["id"])
        pos.append(counts[0])
        neg.append(counts[1])
    if len(set(ids)) != len(ids):
        raise DataFormatError(f"{where}: a sample id appears twice")
    shape = (len(ids), n_bins)
    return (
        tuple(ids),
        np.array(pos, np.int64).reshape(shape),
        np.array(neg, np.int64).reshape(shape),
    )


def pxap_numbers(positives: np.ndarray, negatives: np.ndarray) -> dict[str, Any]:
    """The numbers of ``split_metrics.pxap``: ``value`` (None without a positive pixel), ``n``."""
    value = binned_pxap(positives, negatives)
    return {"value": None if np.isnan(value) else value, "n": int(positives.shape[0])}


def split_metric_lines(split_metrics: Mapping[str, Any]) -> list[str]:
    """Headline-style lines of a report's ``split_metrics`` section (empty when none)."""
    px = split_metrics.get("pxap")
    out = []
    if px:
        shown = "undefined (no mask pixel)" if px["value"] is None else f"{px['value']:.3f}"
        out.append(f"pxap  n={px['n']}  {shown}")
    mb = split_metrics.get("maxboxacc")
    if not mb:
        return out

    def detail(s: Mapping[str, Any]) -> str:
        per = " / ".join(f"{v:.3f}" for v in s["per_delta"].values())
        taus = " / ".join(f"{v:.2f}" for v in s["thresholds"].values())
        return f"δ {' / '.join(s['per_delta'])}: {per}; τ {taus}"

    cal = mb["calibrated"]
    if cal is not None:
        out.append(
            f"maxboxacc  calibrated on {mb['calibration']['split']}  n={mb['n']} "
            f"(calibration n={mb['n_calibration']})  {cal['value']:.3f}  ({detail(cal)})"
        )
    own = mb["max_over_thresholds"]
    out.append(
        f"maxboxacc  max over τ on this split (uncalibrated)  n={mb['n']}  "
        f"{own['value']:.3f}  ({detail(own)})"
    )
    return out


__all__ = [
    "CALIBRATION",
    "EVALUATED",
    "HITS_FILE",
    "PXAP_FILE",
    "delta_key",
    "hits_to_csv",
    "maxboxacc_numbers",
    "parse_hits_csv",
    "parse_pxap_csv",
    "pxap_numbers",
    "pxap_to_csv",
    "split_metric_lines",
]
