"""Paired comparison of two methods on the samples they share.

For each metric both reports carry, the per-sample differences ``d_i = a_i − b_i`` are
taken over the sample ids present in both tables where both values are defined. Then:

- ``difference`` is ``mean(d)``;
- ``[ci_low, ci_high]`` is the seeded percentile bootstrap interval of ``mean(d)``
  (resampling samples, so the pairing is kept);
- ``p_value`` is the two-sided paired permutation (sign-flip) test of "no difference":
  ``(1 + #{|mean(s·d)| ≥ |mean(d)|}) / (1 + permutations)`` over random signs ``s``.
  Identical methods give ``p = 1``; the smallest possible p is ``1 / (1 + permutations)``.
  Permuted means within float32 rounding (``1e-7`` relative) of the observed mean count as
  "as extreme", so per-sample differences at rounding level (same maps, another batch
  order) read as no difference.

Everything is deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from groundbench.errors import GroundbenchError
from groundbench.report.records import Records

# relative size of float32 rounding in per-sample metric values
FLOAT_NOISE = 1e-7
# rows of the (permutations, samples) sign matrix drawn at once; bounds memory to ~64 MB
_CHUNK_ELEMENTS = 8_000_000


class ComparisonError(GroundbenchError):
    """Two reports cannot be compared (no shared samples or no shared metric)."""


@dataclass(frozen=True)
class PairedComparison:
    """Result of comparing method A with method B on one metric.

    Attributes:
        metric: metric display key.
        n_shared: sample ids present in both tables.
        n_paired: shared ids where both values are defined (the samples compared).
        mean_a: mean of A over the paired samples.
        mean_b: mean of B over the paired samples.
        difference: ``mean_a − mean_b``.
        ci_low: lower end of the bootstrap interval of the difference.
        ci_high: upper end of the bootstrap interval of the difference.
        p_value: two-sided paired permutation p-value (NaN when nothing is paired).
        confidence: interval level, e.g. 0.95.
        resamples: bootstrap resamples.
        permutations: random sign flips.
        seed: seed of both procedures.
    """

    metric: str
    n_shared: int
    n_paired: int
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    confidence: float
    resamples: int
    permutations: int
    seed: int

    def to_dict(self) -> dict[str, float | int | str | None]:
        """Return a JSON-ready dict (NaN becomes None)."""
        return {
            k: None if isinstance(v, float) and math.isnan(v) else v
            for k, v in asdict(self).items()
        }


@dataclass(frozen=True)
class SampleCoverage:
    """Which samples two reports cover, and whether their data is certified the same.

    Attributes:
        n_a: sample ids in A.
        n_b: sample ids in B.
        n_shared: ids in both (what a paired comparison can use).
        fingerprint_a: A's dataset fingerprint (sha256 hex).
        fingerprint_b: B's dataset fingerprint.
    """

    n_a: int
    n_b: int
    n_shared: int
    fingerprint_a: str
    fingerprint_b: str

    @property
    def same_dataset(self) -> bool:
        """Whether both reports carry the same dataset fingerprint."""
        return self.fingerprint_a == self.fingerprint_b

    def warnings(self) -> list[str]:
        """One line per reason the comparison covers less, or other data, than the reports.

        Example:
            >>> SampleCoverage(602, 50, 50, "a" * 64, "b" * 64).warnings()[0]
            'only 50 samples are shared: A has 552 the comparison leaves out, B has 0'
        """
        out = []
        if self.n_shared < max(self.n_a, self.n_b):
            out.append(
                f"only {self.n_shared} samples are shared: A has {self.n_a - self.n_shared} "
                f"the comparison leaves out, B has {self.n_b - self.n_shared}"
            )
        if not self.same_dataset:
            out.append(
                f"the dataset fingerprints differ (A {self.fingerprint_a[:12]}…, B "
                f"{self.fingerprint_b[:12]}…): the samples, their files or their selection are "
                "not the same (another split, select, control or --limit)"
            )
        return out

    def to_dict(self) -> dict[str, int | bool | str]:
        """JSON-ready fields, ``same_dataset`` included."""
        return {**asdict(self), "same_dataset": self.same_dataset}


def sample_coverage(
    a: Records, b: Records, fingerprint_a: str, fingerprint_b: str
) -> SampleCoverage:
    """Count the ids of ``a``, of ``b`` and of both, beside their dataset fingerprints."""
    return SampleCoverage(
        len(a.ids), len(b.ids), len(set(a.ids) & set(b.ids)), fingerprint_a, fingerprint_b
    )


def compare_tables(
    a: Records,
    b: Records,
    *,
    metrics: Sequence[str] | None = None,
    resamples: int = 2000,
    permutations: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> list[PairedComparison]:
    """Compare two per-sample tables metric by metric on their shared sample ids.

    Args:
        a: the first method's table.
        b: the second method's table.
        metrics: metric display keys to compare; default every key both tables have, in
            ``a``'s order.
        resamples: bootstrap resamples for the interval.
        permutations: random sign flips for the p-value.
        seed: seed of the bootstrap and the permutation test.
        confidence: level of the interval, in (0, 1).

    Returns:
        One :class:`PairedComparison` per metric.

    Raises:
        ComparisonError: the tables share no sample id, or a requested metric is missing.

    Example:
        >>> ids = tuple(f"s{i}" for i in range(4))
        >>> t = lambda v: Records.from_columns(ids, (frozenset(),) * 4, {"m": np.array(v)},
        ...                                    {"m": ("",) * 4})
        >>> r = compare_tables(t([1.0, 1, 1, 0]), t([0.0, 0, 0, 0]), permutations=999)[0]
        >>> r.difference, r.n_paired
        (0.75, 4)
        >>> round(r.p_value, 1)  # exactly 0.25: 2 of the 8 sign patterns are as extreme
        0.3
    """
    shared_keys = [k for k in a.metric_keys if k in b.metric_keys]
    if metrics is None:
        metrics = shared_keys
    missing = [m for m in metrics if m not in shared_keys]
    if missing or not metrics:
        raise ComparisonError(
            f"metric(s) {missing or '(none)'} not in both reports; metrics both have: {shared_keys}"
        )
    shared = sorted(set(a.ids) & set(b.ids))
    if not shared:
        raise ComparisonError(
            "the two reports share no sample id: they were evaluated on different data, so a "
            "paired comparison is impossible"
        )
    index_a = {s: i for i, s in enumerate(a.ids)}
    index_b = {s: i for i, s in enumerate(b.ids)}
    rows_a = np.array([index_a[s] for s in shared])
    rows_b = np.array([index_b[s] for s in shared])
    out = []
    for key in metrics:
        va, vb = a.column(key)[0][rows_a], b.column(key)[0][rows_b]
        both = ~np.isnan(va) & ~np.isnan(vb)
        va, vb = va[both], vb[both]
        diff = va - vb
        low, high = paired_bootstrap_interval(
            diff, resamples=resamples, seed=seed, confidence=confidence
        )
        out.append(
            PairedComparison(
                metric=key,
                n_shared=len(shared),
                n_paired=int(both.sum()),
                mean_a=_mean(va),
                mean_b=_mean(vb),
                difference=_mean(diff),
                ci_low=low,
                ci_high=high,
                p_value=sign_flip_p_value(diff, permutations=permutations, seed=seed),
                confidence=confidence,
                resamples=resamples,
                permutations=permutations,
                seed=seed,
            )
        )
    return out


def paired_bootstrap_interval(
    diff: np.ndarray, *, resamples: int, seed: int, confidence: float
) -> tuple[float, float]:
    """Return the percentile bootstrap interval of ``mean(diff)`` (NaNs if ``diff`` is empty).

    Args:
        diff: ``(n,)`` float64 paired differences.
        resamples: number of resamples (≥ 1).
        seed: seed of ``numpy.random.default_rng``.
        confidence: interval level in (0, 1).
    """
    if not 0 < confidence < 1 or resamples < 1:
        raise ComparisonError(
            f"confidence must be in (0, 1) and resamples >= 1, got {confidence} and {resamples}"
        )
    n = len(diff)
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.int32 if n < 2**31 else np.int64)
        means[start:stop] = diff[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def sign_flip_p_value(diff: np.ndarray, *, permutations: int, seed: int) -> float:
    """Return the two-sided paired permutation p-value of ``mean(diff) == 0`` (NaN if empty).

    Args:
        diff: ``(n,)`` float64 paired differences.
        permutations: number of random sign vectors (≥ 1).
        seed: seed of ``numpy.random.default_rng``.
    """
    if permutations < 1:
        raise ComparisonError(f"permutations must be >= 1, got {permutations}")
    n = len(diff)
    if n == 0:
        return math.nan
    observed = abs(diff.mean())
    # Metrics are computed in float32 (relative rounding ~1e-7), so permuted means within
    # FLOAT_NOISE of the observed one count as "as extreme": identical methods evaluated in
    # another batch order (differences ~1e-9) get p = 1, not a spurious small p.
    tol = FLOAT_NOISE * max(1.0, float(np.abs(diff).max()))
    # Each random byte flips the signs of 8 samples at once: table[v, g] is the sum of the
    # group-g differences whose bit is set in byte v, so sum(s·d) = 2·Σ_g table[B_g, g] − Σd
    # with one lookup per 8 samples instead of 8 multiply-adds (exact float64 sums).
    groups = np.zeros(((n + 7) // 8, 8), dtype=np.float64)
    groups.reshape(-1)[:n] = diff
    bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float64)
    table = np.ascontiguousarray((bits @ groups.T).T).reshape(-1)  # G·256, row g = group g
    offsets = np.arange(len(groups), dtype=np.int64) * 256
    total = diff.sum()
    rng = np.random.default_rng(seed)
    extreme = 0
    step = max(1, _CHUNK_ELEMENTS // len(groups))
    for start in range(0, permutations, step):
        stop = min(permutations, start + step)
        draws = rng.integers(0, 256, size=(stop - start, len(groups)), dtype=np.uint8)  # P G
        flipped = 2 * np.take(table, draws + offsets).sum(axis=1) - total
        extreme += int((np.abs(flipped / n) >= observed - tol).sum())
    return (1 + extreme) / (1 + permutations)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else math.nan
