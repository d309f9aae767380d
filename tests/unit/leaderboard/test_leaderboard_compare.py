"""Paired bootstrap and permutation test on constructed cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from groundbench.leaderboard.compare import (
    ComparisonError,
    compare_tables,
    paired_bootstrap_interval,
    sign_flip_p_value,
)
from groundbench.leaderboard.samples import SampleTable


def table(values, ids=None, key="m"):
    values = np.asarray(values, dtype=np.float64)
    ids = tuple(ids or (f"s{i:04d}" for i in range(len(values))))
    reasons = tuple("" if np.isfinite(v) else "empty_region" for v in values)
    return SampleTable(ids, (frozenset(),) * len(ids), {key: values}, {key: reasons})


def test_identical_methods_give_p_one_and_zero_interval(rng):
    x = rng.random(300)
    (r,) = compare_tables(table(x), table(x), permutations=2000, resamples=500)
    assert r.p_value == 1.0
    assert r.difference == 0.0 and r.ci_low == 0.0 and r.ci_high == 0.0
    assert r.n_paired == r.n_shared == 300


def test_rounding_level_differences_are_no_difference(rng):
    x = rng.random(300)
    noisy = x + rng.normal(0, 1e-9, 300)  # same maps, float32 metric, other batch order
    (r,) = compare_tables(table(x), table(noisy), permutations=2000, resamples=200)
    assert r.p_value == 1.0


def test_clearly_better_method_is_significant_and_interval_covers_truth(rng):
    b = rng.random(400)
    a = b + 0.1 + rng.normal(0, 0.2, 400)
    true_difference = float((a - b).mean())
    (r,) = compare_tables(table(a), table(b), permutations=2000, resamples=2000)
    assert r.p_value < 0.01
    assert r.p_value == 1 / 2001  # no sign flip comes close
    assert r.ci_low < true_difference < r.ci_high
    assert r.ci_low < 0.1 < r.ci_high  # the population difference
    assert r.difference == pytest.approx(true_difference)


def test_bootstrap_interval_coverage_under_known_difference(rng):
    hits = 0
    for trial in range(60):
        d = rng.normal(0.05, 0.3, 150)
        low, high = paired_bootstrap_interval(d, resamples=400, seed=trial, confidence=0.95)
        hits += low <= 0.05 <= high
    assert 51 <= hits <= 60  # nominal 57 of 60


def test_permutation_test_is_calibrated_under_the_null(rng):
    pvalues = [sign_flip_p_value(rng.normal(0, 1, 80), permutations=400, seed=s) for s in range(80)]
    assert 0 < np.mean(np.array(pvalues) < 0.05) <= 0.15
    assert 0.35 < np.mean(pvalues) < 0.65


def test_exact_small_case():
    # d = (1, 1, 1, 0): 2 of the 8 sign patterns reach |mean| = 0.75
    p = [sign_flip_p_value(np.array([1.0, 1, 1, 0]), permutations=20000, seed=s) for s in range(5)]
    assert np.mean(p) == pytest.approx(0.25, abs=0.006)  # 4 standard errors


def test_pairs_only_shared_defined_samples():
    a = table([1.0, 0.0, math.nan, 1.0], ids=["a", "b", "c", "d"])
    b = table([0.0, 0.0, 1.0, 0.0, 1.0], ids=["b", "c", "d", "e", "f"])
    (r,) = compare_tables(a, b, permutations=100, resamples=100)
    assert r.n_shared == 3  # b, c, d
    assert r.n_paired == 2  # c is undefined in a
    assert (r.mean_a, r.mean_b, r.difference) == (0.5, 0.5, 0.0)


def test_deterministic_for_a_seed(rng):
    a, b = table(rng.random(100)), table(rng.random(100))
    assert compare_tables(a, b, seed=3) == compare_tables(a, b, seed=3)
    assert compare_tables(a, b, seed=3)[0].ci_low != compare_tables(a, b, seed=4)[0].ci_low


def test_no_shared_samples_or_metric_is_an_error():
    with pytest.raises(ComparisonError, match="share no sample id"):
        compare_tables(table([1.0], ids=["a"]), table([1.0], ids=["b"]))
    with pytest.raises(
        ComparisonError,
        match=r"metric\(s\) \['x'\] not in both reports; metrics both have: \['m'\]",
    ):
        compare_tables(table([1.0]), table([1.0]), metrics=["x"])


def test_nothing_paired_gives_nan():
    (r,) = compare_tables(table([math.nan]), table([1.0]))
    assert r.n_paired == 0 and math.isnan(r.p_value) and math.isnan(r.ci_low)
    assert r.to_dict()["p_value"] is None


def test_bad_settings_are_errors():
    with pytest.raises(ComparisonError, match="confidence must be in"):
        paired_bootstrap_interval(np.ones(3), resamples=10, seed=0, confidence=1.5)
    with pytest.raises(ComparisonError, match="permutations must be >= 1"):
        sign_flip_p_value(np.ones(3), permutations=0, seed=0)
