"""Aggregation: means, undefined counts, seeded bootstrap intervals, per-tag breakdown."""

from __future__ import annotations

import math

import numpy as np
import pytest

from groundbench.errors import DataFormatError
from groundbench.metrics import intervals as intervals_module
from groundbench.metrics.aggregate import Aggregate, aggregate, aggregate_by_tag
from groundbench.metrics.intervals import design_effect, wilson_interval
from groundbench.types import Undefined


def _codes(*codes):
    return np.array(codes, dtype=np.int8)


def test_mean_skips_undefined_and_counts_reasons():
    values = np.array([1.0, np.nan, 0.0, np.nan, 0.5])
    codes = _codes(0, Undefined.EMPTY_REGION, 0, Undefined.NAN_INPUT, 0)
    a = aggregate(values, codes, resamples=200)
    assert a.mean == 0.5 and a.n == 5 and a.n_defined == 3
    assert a.undefined == {"empty_region": 1, "nan_input": 1}
    assert a.ci_low <= a.mean <= a.ci_high


def test_interval_is_deterministic_for_a_seed_and_moves_with_it(rng):
    values = rng.random(300)
    codes = np.zeros(300, np.int8)
    a, b = aggregate(values, codes, seed=3), aggregate(values, codes, seed=3)
    c = aggregate(values, codes, seed=4)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


def test_interval_matches_a_plain_percentile_bootstrap(rng):
    values = rng.random(50)
    a = aggregate(values, np.zeros(50, np.int8), resamples=400, seed=7, confidence=0.9)
    idx = np.random.default_rng(7).integers(0, 50, size=(400, 50))
    means = values[idx].mean(axis=1)
    assert a.ci_low == pytest.approx(np.quantile(means, 0.05), abs=1e-15)
    assert a.ci_high == pytest.approx(np.quantile(means, 0.95), abs=1e-15)


def test_blocked_draws_equal_one_draw(rng, monkeypatch):
    values = rng.random(40)
    whole = aggregate(values, np.zeros(40, np.int8), resamples=100)
    monkeypatch.setattr(intervals_module, "_BLOCK", 40 * 7)  # 7 resamples per block
    blocked = aggregate(values, np.zeros(40, np.int8), resamples=100)
    assert (whole.ci_low, whole.ci_high) == (blocked.ci_low, blocked.ci_high)


def test_interval_covers_the_truth_for_a_known_distribution():
    values = np.random.default_rng(1).normal(2.0, 1.0, size=2000)
    a = aggregate(values, np.zeros(2000, np.int8))
    assert a.ci_low < 2.0 < a.ci_high
    assert a.ci_high - a.ci_low == pytest.approx(2 * 1.96 / math.sqrt(2000), rel=0.15)


def test_nothing_defined_gives_nan_and_json_null():
    a = aggregate(np.array([np.nan]), _codes(Undefined.CONSTANT_MAP))
    assert math.isnan(a.mean) and a.n_defined == 0
    d = a.to_dict()
    assert d == {
        "mean": None,
        "ci_low": None,
        "ci_high": None,
        "n": 1,
        "n_defined": 0,
        "undefined": {"constant_map": 1},
        "interval": None,
    }


def test_no_resamples_means_no_interval():
    a = aggregate(np.array([1.0, 2.0]), _codes(0, 0), resamples=0)
    assert a.mean == 1.5 and math.isnan(a.ci_low) and math.isnan(a.ci_high)


def test_bad_inputs_are_errors():
    with pytest.raises(DataFormatError, match="same length"):
        aggregate(np.zeros(2), _codes(0))
    with pytest.raises(DataFormatError, match="marked defined"):
        aggregate(np.array([np.nan]), _codes(0))
    with pytest.raises(DataFormatError, match=r"unknown undefined codes \[42\]"):
        aggregate(np.array([np.nan]), _codes(42))


def test_by_tag_has_all_and_each_tag():
    values = np.array([1.0, 0.0, 1.0, np.nan])
    codes = _codes(0, 0, 0, Undefined.EMPTY_REGION)
    tags = [
        frozenset({"small"}),
        frozenset({"relational"}),
        frozenset({"small", "relational"}),
        frozenset({"small"}),
    ]
    out = aggregate_by_tag(values, codes, tags, resamples=50)
    assert list(out) == ["all", "relational", "small"]
    assert out["all"].mean == pytest.approx(2 / 3)
    assert out["relational"].mean == 0.5
    assert (
        out["small"].mean == 1.0
        and out["small"].n == 3
        and out["small"].undefined == {"empty_region": 1}
    )
    assert isinstance(out["all"], Aggregate)


@pytest.mark.parametrize(("hits", "n"), [(0, 602), (602, 602), (1, 1), (0, 1), (3, 7)])
def test_a_0_1_metric_gets_a_wilson_interval_that_never_collapses(hits, n):
    values = np.array([1.0] * hits + [0.0] * (n - hits))
    a = aggregate(values, np.zeros(n, np.int8), resamples=200)
    assert a.interval == "wilson"
    assert 0.0 <= a.ci_low <= a.mean <= a.ci_high <= 1.0
    assert a.ci_high - a.ci_low > 0.0
    # the textbook formula (Wilson 1927), z for 95%
    z, p = 1.959963984540054, hits / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert a.ci_low == pytest.approx(max(0.0, (centre - half) / (1 + z * z / n)), abs=1e-12)
    assert a.ci_high == pytest.approx(min(1.0, (centre + half) / (1 + z * z / n)), abs=1e-12)


def test_wilson_at_zero_hits_reaches_z2_over_n_plus_z2():
    low, high = wilson_interval(0, 602, 0.95)
    z2 = 1.959963984540054**2
    assert low == 0.0 and high == pytest.approx(z2 / (602 + z2), rel=1e-12)


def test_values_between_0_and_1_keep_the_bootstrap():
    a = aggregate(np.array([0.25, 1.0, 0.0, 0.5]), np.zeros(4, np.int8), resamples=100)
    assert a.interval == "bootstrap"


def test_clustered_samples_widen_the_interval_only_when_they_move_together():
    # 40 images with 3 expressions each; all expressions of an image agree
    per_image = np.random.default_rng(0).random(40) < 0.5
    values = np.repeat(per_image.astype(np.float64), 3)
    clusters = np.repeat(np.arange(40), 3)
    iid = aggregate(values, np.zeros(120, np.int8))
    clustered = aggregate(values, np.zeros(120, np.int8), clusters=clusters)
    assert clustered.interval == "wilson_cluster" and clustered.mean == iid.mean
    assert design_effect(values, clusters) == pytest.approx(3 * 40 / 39)
    assert clustered.ci_high - clustered.ci_low > 1.6 * (iid.ci_high - iid.ci_low)
    # independent values grouped at random: no widening beyond sampling noise, never narrower
    shuffled = np.random.default_rng(1).permutation(values)
    loose = aggregate(shuffled, np.zeros(120, np.int8), clusters=clusters)
    assert loose.ci_high - loose.ci_low < 1.3 * (iid.ci_high - iid.ci_low)
    assert loose.ci_high - loose.ci_low >= iid.ci_high - iid.ci_low - 1e-12


def test_cluster_bootstrap_resamples_whole_clusters(rng):
    values = np.repeat(rng.random(30), 4)
    clusters = np.repeat(np.arange(30), 4)
    a = aggregate(values, np.zeros(120, np.int8), clusters=clusters, resamples=300, seed=5)
    assert a.interval == "cluster_bootstrap"
    idx = np.random.default_rng(5).integers(0, 30, size=(300, 30))
    means = values[::4][idx].mean(axis=1)  # equal cluster sizes: the mean of cluster means
    iid = aggregate(values, np.zeros(120, np.int8), resamples=300, seed=5)
    assert a.ci_low == pytest.approx(min(np.quantile(means, 0.025), iid.ci_low), abs=1e-12)
    assert a.ci_high == pytest.approx(max(np.quantile(means, 0.975), iid.ci_high), abs=1e-12)
    assert a.ci_high - a.ci_low > 1.5 * (iid.ci_high - iid.ci_low)  # 4 copies per cluster


def test_a_cluster_interval_is_never_narrower_than_the_iid_one():
    values = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.7, 0.15, 0.85])
    two = np.array([0, 1, 0, 1, 0, 1, 0, 1])  # two clusters: few distinct resamples
    iid = aggregate(values, np.zeros(8, np.int8), resamples=500)
    clustered = aggregate(values, np.zeros(8, np.int8), clusters=two, resamples=500)
    assert clustered.ci_low <= iid.ci_low and clustered.ci_high >= iid.ci_high


def test_by_tag_passes_each_tag_its_clusters():
    values = np.array([1.0, 1.0, 0.0, 0.0])
    tags = [frozenset({"a"}), frozenset({"a"}), frozenset(), frozenset({"a"})]
    out = aggregate_by_tag(values, np.zeros(4, np.int8), tags, np.array([0, 0, 1, 1]))
    assert out["all"].interval == out["a"].interval == "wilson_cluster"
