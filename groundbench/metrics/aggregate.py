"""Aggregate per-sample metric values: mean, undefined counts, confidence interval, per tag.

Undefined samples (NaN values with a reason code) never enter the mean; they are counted by
reason. The confidence interval of the mean over the defined values is the Wilson score
interval when every value is 0 or 1, else the seeded percentile bootstrap; given cluster
ids (the image of each sample), both account for samples of one cluster moving together
(:mod:`groundbench.metrics.intervals`). ``interval`` names the kind used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from groundbench.errors import DataFormatError
from groundbench.metrics.intervals import mean_interval
from groundbench.types import Undefined

#: Aggregates over fewer defined samples than this are marked in reports: read the interval.
SMALL_N = 10


@dataclass(frozen=True)
class Aggregate:
    """Summary of one metric over a set of samples.

    Attributes:
        mean: mean over the defined values (NaN when none is defined).
        ci_low: lower bound of the confidence interval (NaN when none is defined or
            ``resamples == 0``).
        ci_high: upper bound of the interval.
        n: number of samples, defined or not.
        n_defined: number of samples with a defined value.
        undefined: reason label (``empty_region``, ...) → count, for the reasons that occur.
        interval: ``wilson``, ``wilson_cluster``, ``bootstrap`` or ``cluster_bootstrap``
            (:mod:`groundbench.metrics.intervals`); None without an interval.
    """

    mean: float
    ci_low: float
    ci_high: float
    n: int
    n_defined: int
    undefined: dict[str, int] = field(default_factory=dict)
    interval: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON: NaN floats become None (JSON has no NaN)."""
        out = asdict(self)
        for key in ("mean", "ci_low", "ci_high"):
            if math.isnan(out[key]):
                out[key] = None
        return out


def aggregate(
    values: np.ndarray,
    undefined: np.ndarray,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Aggregate:
    """Summarise one metric's per-sample values.

    Args:
        values: ``(N,)`` float64, NaN where undefined.
        undefined: ``(N,)`` int8 :class:`~groundbench.types.Undefined` codes, 0 = defined.
        resamples: bootstrap resamples (0 = no interval).
        seed: bootstrap seed; the same seed gives the same interval.
        confidence: interval coverage in ``(0, 1)``.
        clusters: ``(N,)`` cluster id per sample (e.g. its image index), or None when the
            samples are independent.

    Returns:
        An :class:`Aggregate`.

    Raises:
        DataFormatError: shapes differ, a defined value is not finite, or an unknown code.

    Example:
        >>> a = aggregate(np.array([1.0, 0.0, np.nan]), np.array([0, 0, 1], dtype=np.int8))
        >>> a.mean, a.n, a.n_defined, a.undefined
        (0.5, 3, 2, {'empty_region': 1})
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    codes = np.asarray(undefined).reshape(-1).astype(np.int64)
    if values.shape != codes.shape or (clusters is not None and len(clusters) != values.size):
        raise DataFormatError(
            f"aggregate: values {values.shape}, undefined {codes.shape} and clusters must have "
            "the same length"
        )
    if not 0 < confidence < 1:
        raise DataFormatError(f"aggregate: confidence must be in (0, 1), got {confidence}")
    if resamples < 0:
        raise DataFormatError(f"aggregate: resamples must be >= 0, got {resamples}")
    known = {int(u) for u in Undefined}
    bad = sorted(set(np.unique(codes).tolist()) - known)
    if bad:
        raise DataFormatError(
            f"aggregate: unknown undefined codes {bad}; valid codes are {sorted(known)}"
        )
    defined = values[codes == 0]
    if not np.isfinite(defined).all():
        raise DataFormatError(
            "aggregate: a sample marked defined (code 0) has a NaN or Inf value; "
            "metrics must give an undefined code with every NaN"
        )
    counts = np.bincount(codes, minlength=len(Undefined))
    reasons = {Undefined(c).label: int(counts[c]) for c in range(1, len(counts)) if counts[c]}
    if defined.size == 0:
        return Aggregate(math.nan, math.nan, math.nan, int(values.size), 0, reasons)
    mean = float(defined.mean())
    groups = None if clusters is None else np.asarray(clusters)[codes == 0]
    lo, hi, kind = mean_interval(
        defined, groups, resamples=resamples, seed=seed, confidence=confidence
    )
    return Aggregate(mean, lo, hi, int(values.size), int(defined.size), reasons, kind)


def aggregate_by_tag(
    values: np.ndarray,
    undefined: np.ndarray,
    tags: Sequence[frozenset[str]],
    clusters: np.ndarray | None = None,
    **kwargs: Any,
) -> dict[str, Aggregate]:
    """Aggregate over all samples (key ``"all"``) and over the samples carrying each tag.

    Args:
        values: ``(N,)`` float64 per-sample values.
        undefined: ``(N,)`` int8 reason codes.
        tags: ``N`` tag sets, aligned with ``values``.
        clusters: ``(N,)`` cluster ids (see :func:`aggregate`), or None.
        **kwargs: passed to :func:`aggregate` (``resamples``, ``seed``, ``confidence``).

    Returns:
        ``{"all": ..., tag: ...}`` with tags in sorted order.

    Example:
        >>> out = aggregate_by_tag(np.array([1.0, 0.0]), np.zeros(2, np.int8),
        ...                        [frozenset({"small"}), frozenset()], resamples=0)
        >>> {k: a.mean for k, a in out.items()}
        {'all': 0.5, 'small': 1.0}
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    undefined = np.asarray(undefined).reshape(-1)
    if len(tags) != values.size:
        raise DataFormatError(f"aggregate_by_tag: {len(tags)} tag sets for {values.size} values")
    groups = None if clusters is None else np.asarray(clusters).reshape(-1)
    out = {"all": aggregate(values, undefined, clusters=groups, **kwargs)}
    for tag in sorted(set().union(*tags)) if tags else []:
        pick = np.fromiter((tag in t for t in tags), dtype=bool, count=len(tags))
        picked = None if groups is None else groups[pick]
        out[tag] = aggregate(values[pick], undefined[pick], clusters=picked, **kwargs)
    return out
