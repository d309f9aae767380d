"""Human-study statistics against independent implementations and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groundbench.human.stats import (
    bootstrap_bt,
    bradley_terry,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    mean_pairwise_cohen,
    rank_by_intervals,
    wilson,
)

# Krippendorff's canonical reliability data (coders x units), as in the krippendorff package
_CANON = [
    [np.nan, np.nan, np.nan, np.nan, np.nan, 3, 4, 1, 2, 1, 1, 3, 3, np.nan, 3],
    [1, np.nan, 2, 1, 3, 3, 4, 3, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
    [np.nan, np.nan, 2, 1, 3, 4, 4, np.nan, 2, 1, 1, 3, 3, np.nan, 4],
]


def _units(coders_by_units):
    return [
        [None if (isinstance(v, float) and math.isnan(v)) else v for v in col]
        for col in zip(*coders_by_units, strict=True)
    ]


def test_alpha_on_krippendorffs_worked_example() -> None:
    assert krippendorff_alpha_nominal(_units(_CANON)) == pytest.approx(0.691358, abs=1e-6)


def test_alpha_matches_the_krippendorff_package_with_missing_values(rng) -> None:
    krippendorff = pytest.importorskip("krippendorff")
    for _ in range(20):
        data = rng.integers(0, 4, size=(4, 25)).astype(float)
        data[rng.random(data.shape) < 0.3] = np.nan
        ours = krippendorff_alpha_nominal(_units(data.tolist()))
        ref = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        assert ours == pytest.approx(ref, abs=1e-9)


def test_fleiss_matches_statsmodels(rng) -> None:
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    for _ in range(20):
        ratings = rng.integers(0, 3, size=(30, 4))
        table, _ = inter_rater.aggregate_raters(ratings)
        assert fleiss_kappa(table) == pytest.approx(inter_rater.fleiss_kappa(table), abs=1e-12)
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa(np.array([[2, 1], [1, 1]]))


def test_cohen_matches_scikit_learn(rng) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    for _ in range(20):
        a, b = rng.integers(0, 3, 40).tolist(), rng.integers(0, 3, 40).tolist()
        assert cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b), abs=1e-12)


def test_mean_pairwise_cohen_skips_pairs_without_two_common_units() -> None:
    ratings = {"x": {"u1": "a", "u2": "b"}, "y": {"u1": "a", "u2": "b"}, "z": {"u3": "a"}}
    assert mean_pairwise_cohen(ratings) == (1.0, 1)


def test_wilson_matches_statsmodels() -> None:
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    for k, n in [(0, 10), (3, 10), (57, 90), (10, 10), (45.5, 90)]:
        ref = proportion.proportion_confint(k, n, alpha=0.05, method="wilson")
        assert wilson(k, n) == pytest.approx(ref, abs=1e-12)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_bradley_terry_two_methods_closed_form() -> None:
    # 7 wins, 2 losses, 2 ties -> 8 vs 3 half-counted; unpenalised logit gap is log(8/3)
    score = np.array([1.0] * 7 + [0.0] * 2 + [0.5] * 2)
    first, second = np.zeros(11, int), np.ones(11, int)
    s = bradley_terry(2, first, second, score, l2=0.0)
    assert s[0] - s[1] == pytest.approx(math.log(8 / 3), abs=1e-6)
    assert s.sum() == pytest.approx(0.0, abs=1e-12)


def test_bradley_terry_matches_choix_on_tie_free_data(rng) -> None:
    choix = pytest.importorskip("choix")
    n = 5
    strength = np.linspace(-1, 1, n)
    pairs = []
    for _ in range(400):
        i, j = rng.choice(n, 2, replace=False)
        win = rng.random() < 1 / (1 + math.exp(strength[j] - strength[i]))
        pairs.append((i, j) if win else (j, i))
    ref = choix.opt_pairwise(n, pairs, alpha=0.01)
    w, lo = np.array(pairs).T
    ours = bradley_terry(n, w, lo, np.ones(len(pairs)), l2=0.02)
    np.testing.assert_allclose(ours, ref - ref.mean(), atol=1e-5)


def test_a_method_that_never_loses_stays_finite() -> None:
    s = bradley_terry(2, np.zeros(5, int), np.ones(5, int), np.ones(5))
    assert np.isfinite(s).all() and s[0] > s[1]


def test_bootstrap_is_seeded_and_resamples_whole_items() -> None:
    first, second = np.zeros(6, int), np.ones(6, int)
    score = np.array([1.0, 1.0, 0.0, 0.0, 1.0, 0.5])
    cluster = np.array(["s1", "s1", "s2", "s2", "s3", "s3"])
    a = bootstrap_bt(2, first, second, score, cluster, 50, seed=3)
    b = bootstrap_bt(2, first, second, score, cluster, 50, seed=3)
    np.testing.assert_array_equal(a, b)
    # whole items move together: only sums of item-level outcomes can appear
    gaps = np.round(a[:, 0] - a[:, 1], 6)
    assert len(set(gaps)) <= 10


def test_rank_by_intervals() -> None:
    assert rank_by_intervals([1.0, 0.8, -2.0], [2.0, 1.5, -1.0]) == [1, 1, 3]
    assert rank_by_intervals([1.0, -0.2], [2.0, 0.5]) == [1, 2]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["m1", "m2", "tie", None]), min_size=3, max_size=3),
        min_size=2,
        max_size=12,
    ),
    st.permutations(range(3)),
)
def test_alpha_does_not_depend_on_annotator_order(units, perm) -> None:
    permuted = [[u[p] for p in perm] for u in units]
    a, b = krippendorff_alpha_nominal(units), krippendorff_alpha_nominal(permuted)
    assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)
