"""The compiled rank kernels against scipy's ranks and the sort-based float64 path."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata

from groundbench.metrics._radix import (
    EXACT_TIE_PIXELS,
    flagged_twice_ranks,
    rank_sums,
    twice_ranks,
)
from groundbench.metrics._ranks import rank_stats


def _maps(rng: np.random.Generator):
    """float32 arrays: ties, signed zeros, one-ulp neighbours, narrow and very wide spans."""
    for _ in range(150):
        n = int(rng.integers(0, 700))
        kind = rng.integers(0, 5)
        if kind == 0:
            x = rng.integers(-3, 4, n).astype(np.float32)  # many ties
        elif kind == 1:
            x = rng.random(n).astype(np.float32)  # narrow span, 3 radix passes
        elif kind == 2:
            x = (rng.standard_normal(n) * 1e30).astype(np.float32)  # span over 2³¹: 64-bit keys
        elif kind == 3:
            base = np.float32(0.75)
            near = [base, np.nextafter(base, np.float32(1)), np.nextafter(base, np.float32(0))]
            x = rng.choice(np.array(near, dtype=np.float32), n)
        else:
            x = np.full(n, 2.5, dtype=np.float32)  # flat: no pass moves anything
        x[rng.random(n) < 0.1] = -0.0
        x[rng.random(n) < 0.1] = 0.0
        yield x, rng.random(n) < rng.random()


def test_rank_sums_equal_the_sorted_float64_path():
    for x, flag in _maps(np.random.default_rng(0)):
        ref = rank_stats(x.astype(np.float64), flag, ties=True)
        twice_u, tie_sum, tie_sum_f, n_flag = rank_sums(x, flag)
        assert (twice_u, tie_sum, tie_sum_f, n_flag) == (
            2 * ref.u,
            ref.tie_sum,
            ref.tie_sum,
            ref.n_pos,
        )


def test_flagged_twice_ranks_equal_scipy_rankdata():
    for x, flag in _maps(np.random.default_rng(1)):
        ranks, tie_sum, _ = flagged_twice_ranks(x, flag)
        expected = rankdata(x.astype(np.float64))[flag] * 2
        assert ranks.dtype == np.int64 and np.array_equal(ranks, expected)
        _, groups = np.unique(x.astype(np.float64), return_counts=True)
        assert tie_sum == int((groups.astype(np.int64) ** 3 - groups).sum())


@pytest.mark.parametrize("n", [0, 1])
def test_kernels_take_tiny_maps(n):
    x, flag = np.ones(n, dtype=np.float32), np.ones(n, dtype=bool)
    assert rank_sums(x, flag) == (0, 0, 0.0, n)
    ranks, tie_sum, _ = flagged_twice_ranks(x, flag)
    assert ranks.tolist() == [2] * n and tie_sum == 0


def test_tie_sums_of_maps_past_the_int64_bound_come_in_float64():
    n = EXACT_TIE_PIXELS + 7  # Σ (t³ - t) of one group of n would pass 2⁶³
    x = np.zeros(n, dtype=np.float32)
    x[: n // 3] = 1.0
    flag = np.arange(n) % 5 == 0
    stats = rank_stats(x, flag, ties=True)
    t = np.array([n // 3, n - n // 3], dtype=np.float64)
    assert stats.tie_sum == pytest.approx(float(np.sum(t**3 - t)), rel=1e-15)
    exact = rank_stats(x.astype(np.float64), flag, ties=True)
    assert (stats.u, stats.n_pos) == (exact.u, exact.n_pos)
    assert math.isclose(stats.tie_sum, exact.tie_sum, rel_tol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_twice_ranks_equal_scipy_rankdata(dtype):
    rng = np.random.default_rng(3)
    for x, _ in _maps(rng):
        x = x.astype(dtype)
        if dtype == np.float64 and x.size:
            x[rng.random(x.size) < 0.3] *= 1e250  # a span of 64-bit keys
        ranks, tie_sum, tie_sum_f = twice_ranks(x)
        assert np.array_equal(ranks, rankdata(x) * 2)
        _, groups = np.unique(x, return_counts=True)
        assert tie_sum == tie_sum_f == int((groups.astype(np.int64) ** 3 - groups).sum())
