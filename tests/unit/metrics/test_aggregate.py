"""Aggregation: means, undefined counts, seeded bootstrap intervals, per-tag breakdown."""

from __future__ import annotations

import math

import numpy as np
import pytest

from groundbench.errors import DataFormatError
from groundbench.metrics import aggregate as agg_module
from groundbench.metrics.aggregate import Aggregate, aggregate, aggregate_by_tag
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
    monkeypatch.setattr(agg_module, "_BLOCK", 40 * 7)  # 7 resamples per block
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
