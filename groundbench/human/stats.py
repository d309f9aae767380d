"""Statistics of human judgements (numpy/scipy only): Wilson intervals, Bradley–Terry with a
bootstrap over items, Krippendorff's α (nominal), Fleiss' κ and Cohen's κ.

Conventions: a tie counts as half a win; Bradley–Terry scores are natural-log odds, centred
to sum to zero (``P(i beats j) = 1 / (1 + exp(s_j - s_i))``); intervals are 95 %.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.stats import norm

Z95 = float(norm.ppf(0.975))


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` trials (``k`` may be fractional)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def bradley_terry(
    n_methods: int,
    first: np.ndarray,
    second: np.ndarray,
    score: np.ndarray,
    weight: np.ndarray | None = None,
    l2: float = 1e-3,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Fit Bradley–Terry scores by penalised maximum likelihood (L-BFGS).

    Args:
        n_methods: number of methods.
        first, second: ``(n,)`` method indices of each comparison.
        score: ``(n,)`` 1 when ``first`` won, 0 when ``second`` won, 0.5 for a tie.
        weight: ``(n,)`` multiplicity of each comparison (bootstrap counts); default 1.
        l2: ridge penalty ``l2/2·Σ s²`` that keeps scores finite when a method never loses.
        start: initial scores (a warm start for bootstrap refits); default zeros.

    Returns:
        ``(n_methods,)`` scores, centred to sum to zero.
    """
    first, second = np.asarray(first, int), np.asarray(second, int)
    score = np.asarray(score, float)
    w = np.ones_like(score) if weight is None else np.asarray(weight, float)

    def loss(s: np.ndarray) -> tuple[float, np.ndarray]:
        d = s[first] - s[second]
        # -[y log σ(d) + (1-y) log σ(-d)] = log(1 + e^d) - y d
        value = float(np.sum(w * (np.logaddexp(0.0, d) - score * d))) + 0.5 * l2 * float(s @ s)
        g = w * (1.0 / (1.0 + np.exp(-d)) - score)
        grad = np.bincount(first, g, n_methods) - np.bincount(second, g, n_methods) + l2 * s
        return value, grad

    x0 = np.zeros(n_methods) if start is None else np.asarray(start, float)
    res = minimize(loss, x0, jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-10, "ftol": 1e-14, "maxiter": 10000})  # fmt: skip
    return res.x - res.x.mean()


def bootstrap_bt(
    n_methods: int,
    first: np.ndarray,
    second: np.ndarray,
    score: np.ndarray,
    cluster: np.ndarray,
    resamples: int,
    seed: int,
    l2: float = 1e-3,
) -> np.ndarray:
    """``(resamples, n_methods)`` scores refitted on items drawn with replacement (a cluster
    bootstrap: every comparison of a drawn item comes along, as often as it was drawn)."""
    rng = np.random.default_rng(seed)
    units, inverse = np.unique(np.asarray(cluster), return_inverse=True)
    out = np.empty((resamples, n_methods))
    full = bradley_terry(n_methods, first, second, score, l2=l2)
    for b in range(resamples):
        counts = np.bincount(rng.integers(0, len(units), len(units)), minlength=len(units))
        out[b] = bradley_terry(n_methods, first, second, score, counts[inverse], l2, start=full)
    return out


def rank_by_intervals(low: Sequence[float], high: Sequence[float]) -> list[int]:
    """Rank = 1 + the number of methods whose lower bound lies above this one's upper bound."""
    return [1 + sum(lo > high[i] for lo in low) for i in range(len(low))]


def krippendorff_alpha_nominal(units: Sequence[Sequence[Hashable | None]]) -> float:
    """Krippendorff's α for nominal values; ``units`` lists each unit's values (None = missing).

    Units with fewer than two values are not pairable and are left out. NaN when fewer than
    two pairable values exist or every value is the same.
    """
    counts = []
    for values in units:
        kept = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if len(kept) >= 2:
            counts.append(kept)
    categories = sorted({v for u in counts for v in u}, key=repr)
    index = {c: i for i, c in enumerate(categories)}
    o = np.zeros((len(categories), len(categories)))
    for kept in counts:
        m = len(kept)
        n_u = np.bincount([index[v] for v in kept], minlength=len(categories)).astype(float)
        o += (np.outer(n_u, n_u) - np.diag(n_u)) / (m - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    expected = n * n - float(n_c @ n_c)
    if n < 2 or expected == 0:
        return math.nan
    return float(1.0 - (n - 1) * (n - np.trace(o)) / expected)


def fleiss_kappa(table: np.ndarray) -> float:
    """Fleiss' κ of an ``(items, categories)`` table of counts with equal row sums."""
    table = np.asarray(table, float)
    m = table.sum(axis=1)
    if len(table) == 0 or not np.all(m == m[0]) or m[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of raters on every item")
    r = m[0]
    p_item = ((table * table).sum(axis=1) - r) / (r * (r - 1))
    p_cat = table.sum(axis=0) / table.sum()
    p_e = float(p_cat @ p_cat)
    return math.nan if p_e == 1.0 else float((p_item.mean() - p_e) / (1.0 - p_e))


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's κ of two raters' labels on the same units (NaN when chance agreement is 1)."""
    if len(a) != len(b) or not a:
        return math.nan
    labels = sorted(set(a) | set(b), key=repr)
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    p_e = sum((list(a).count(c) / len(a)) * (list(b).count(c) / len(b)) for c in labels)
    return math.nan if p_e == 1.0 else (p_o - p_e) / (1.0 - p_e)


def mean_pairwise_cohen(ratings: dict[str, dict[str, Hashable]]) -> tuple[float, int]:
    """Mean Cohen's κ over annotator pairs sharing at least two units; ``(mean, pairs used)``."""
    kappas = []
    for x, y in itertools.combinations(sorted(ratings), 2):
        common = sorted(set(ratings[x]) & set(ratings[y]))
        if len(common) >= 2:
            k = cohen_kappa([ratings[x][u] for u in common], [ratings[y][u] for u in common])
            if not math.isnan(k):
                kappas.append(k)
    return (float(np.mean(kappas)) if kappas else math.nan, len(kappas))
