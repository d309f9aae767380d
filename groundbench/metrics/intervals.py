"""Confidence intervals of a mean: Wilson score for 0/1 values, percentile bootstrap otherwise.

Which interval a set of values gets (:func:`mean_interval`):

- ``wilson``: every value is 0 or 1 (pointing hits, ``box_acc``). The Wilson score interval
  ``(p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n)`` never collapses to a point,
  also at ``p = 0`` or ``1`` (where the percentile bootstrap gives ``[0, 0]``) or for one
  sample, and stays inside ``[0, 1]``.
- ``wilson_cluster``: the same with ``clusters`` given (one id per value, e.g. its image):
  ``n`` is replaced by the effective sample size ``n / deff`` (Kish), where the design
  effect ``deff = max(1, V_cluster / (p(1−p)/n))`` compares the cluster-robust variance of
  the mean ``V_cluster = C/(C−1) · Σ_c (S_c − p·m_c)² / n²`` (``C`` clusters, ``S_c`` the
  sum and ``m_c`` the count of cluster ``c``) with the binomial one. Values that move
  together in a cluster widen the interval; ``deff`` is never below 1.
- ``bootstrap``: other values; percentile bootstrap of the mean, ``resamples`` resamples
  of the values with replacement from ``numpy.random.default_rng(seed)``, the
  ``(1 ∓ confidence)/2`` quantiles (linear interpolation).
- ``cluster_bootstrap``: the same, resampling whole clusters: each resample draws ``C``
  clusters with replacement and takes the mean over every value they hold. The interval
  reported is the union of this one and the plain bootstrap's: with few clusters the
  cluster bootstrap has few distinct resamples and can come out narrower, and grouping
  samples must never claim more certainty than treating them as independent.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

# Bootstrap indices drawn per block, to bound memory (~80 MB of int64).
_BLOCK = 10_000_000


def is_binary(values: np.ndarray) -> bool:
    """Whether every value is exactly 0 or 1 (and there is at least one)."""
    return values.size > 0 and bool(np.all((values == 0.0) | (values == 1.0)))


def wilson_interval(successes: float, n: float, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion; ``n`` may be fractional (an effective size).

    Example:
        >>> [round(x, 4) for x in wilson_interval(0, 602, 0.95)]
        [0.0, 0.0063]
        >>> [round(x, 4) for x in wilson_interval(1, 1, 0.95)]
        [0.2065, 1.0]
    """
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0))
    scale = 1 + z * z / n
    # the interval holds p in exact arithmetic; clamping keeps it so after rounding
    return max(0.0, min((centre - half) / scale, p)), min(1.0, max((centre + half) / scale, p))


def design_effect(values: np.ndarray, clusters: np.ndarray) -> float:
    """Kish design effect of the mean of 0/1 ``values`` grouped by ``clusters`` (≥ 1).

    1 when the binomial variance is 0 (``p`` is 0 or 1) or there is one cluster.

    Example:
        >>> pairs = np.array([0, 0, 1, 1, 2, 2])
        >>> round(design_effect(np.array([1.0, 1, 0, 0, 1, 1]), pairs), 6)  # pairs agree
        3.0
        >>> design_effect(np.array([1.0, 0, 1, 0, 1, 0]), pairs)  # pairs split evenly
        1.0
    """
    n = values.size
    p = float(values.mean())
    _, index, counts = np.unique(clusters, return_inverse=True, return_counts=True)
    n_clusters = counts.size
    if n_clusters < 2 or p in (0.0, 1.0):
        return 1.0
    sums = np.bincount(index, weights=values, minlength=n_clusters)
    v_cluster = n_clusters / (n_clusters - 1) * float(((sums - p * counts) ** 2).sum()) / (n * n)
    return max(1.0, v_cluster / (p * (1 - p) / n))


def bootstrap_interval(
    values: np.ndarray,
    clusters: np.ndarray | None,
    *,
    resamples: int,
    seed: int,
    confidence: float,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling values or whole clusters."""
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    if clusters is None:
        sums, counts = values, None
    else:
        _, index = np.unique(clusters, return_inverse=True)
        sums = np.bincount(index, weights=values)
        counts = np.bincount(index).astype(np.float64)
    size = sums.size
    rows = max(1, _BLOCK // size)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        # one stream read in order: the same draws whatever the block size
        idx = rng.integers(0, size, size=(stop - start, size))
        if counts is None:
            means[start:stop] = sums[idx].mean(axis=1)
        else:
            means[start:stop] = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def mean_interval(
    values: np.ndarray,
    clusters: np.ndarray | None = None,
    *,
    resamples: int,
    seed: int,
    confidence: float,
) -> tuple[float, float, str | None]:
    """Return ``(low, high, kind)`` for the mean of ``values`` (defined values only).

    Args:
        values: ``(n,)`` float64, n ≥ 1, all finite.
        clusters: ``(n,)`` cluster ids (e.g. the image index), or None for independent values.
        resamples: bootstrap resamples; 0 = no interval (NaN, NaN, None).
        seed: bootstrap seed.
        confidence: coverage in (0, 1).

    Returns:
        The interval and its kind: ``wilson``, ``wilson_cluster``, ``bootstrap`` or
        ``cluster_bootstrap`` (see the module docstring).
    """
    if not resamples:
        return math.nan, math.nan, None
    if is_binary(values):
        n = float(values.size)
        if clusters is None:
            return (*wilson_interval(float(values.sum()), n, confidence), "wilson")
        n_eff = n / design_effect(values, clusters)
        p = float(values.mean())
        return (*wilson_interval(p * n_eff, n_eff, confidence), "wilson_cluster")
    low, high = bootstrap_interval(
        values, None, resamples=resamples, seed=seed, confidence=confidence
    )
    if clusters is None:
        return low, high, "bootstrap"
    c_low, c_high = bootstrap_interval(
        values, clusters, resamples=resamples, seed=seed, confidence=confidence
    )
    return min(low, c_low), max(high, c_high), "cluster_bootstrap"
