"""maxboxacc_hits.csv: round trip, malformed cells, and the numbers recomputed from it."""

from __future__ import annotations

import numpy as np
import pytest

from groundbench.errors import DataFormatError
from groundbench.report.split_metrics import (
    hits_to_csv,
    maxboxacc_numbers,
    parse_hits_csv,
    split_metric_lines,
)

THRESHOLDS = (0.0, 0.5)
DELTAS = (0.3, 0.5)


def test_round_trip_sorts_each_split_by_id():
    ev = np.array([[[1, 0], [1, 1]], [[0, 0], [1, 0]]], bool)  # N=2, T=2, D=2
    cal = np.array([[[0, 0], [1, 1]]], bool)
    data = hits_to_csv((["b", "a"], ev), (["c"], cal), DELTAS).decode()
    assert data.splitlines() == [
        "split,id,hits@0.3,hits@0.5",
        "evaluated,a,01,00",
        "evaluated,b,11,01",
        "calibration,c,01,01",
    ]
    parts = parse_hits_csv(data, DELTAS, 2, where="h.csv")
    assert parts["evaluated"][0] == ("a", "b")
    assert (parts["evaluated"][1] == ev[::-1]).all() and (parts["calibration"][1] == cal).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("split,id,hits@0.3\n", "h.csv: missing column(s) ['hits@0.5']; re-run groundbench evaluate to write it"),
        ("split,id,hits@0.3,hits@0.5\ntest,a,01,01\n", "h.csv, line 2: split 'test' is neither evaluated nor calibration"),
        ("split,id,hits@0.3,hits@0.5\nevaluated,a,012,01\n", "h.csv, line 2: each hits cell must be 2 characters of 0 or 1 (one per threshold)"),
        ("split,id,hits@0.3,hits@0.5\nevaluated,a,01,01\nevaluated,a,01,01\n", "h.csv: a sample id appears twice in split evaluated"),
    ],
)  # fmt: skip
def test_malformed_files_are_refused(text, message):
    with pytest.raises(DataFormatError) as err:
        parse_hits_csv(text, DELTAS, 2, where="h.csv")
    assert str(err.value) == message


def test_calibrated_and_uncalibrated_numbers_are_kept_apart():
    # test: τ = 0 hits both samples at δ 0.3; val prefers τ = 0.5 (its only hit)
    test = np.array([[[1, 1], [0, 0]], [[1, 0], [0, 0]]], bool)
    val = np.array([[[0, 0], [1, 1]]], bool)
    out = maxboxacc_numbers(test, val, DELTAS, THRESHOLDS)
    assert out["max_over_thresholds"] == {
        "value": 0.75,
        "per_delta": {"0.3": 1.0, "0.5": 0.5},
        "thresholds": {"0.3": 0.0, "0.5": 0.0},
    }
    assert out["calibrated"] == {
        "value": 0.0,
        "per_delta": {"0.3": 0.0, "0.5": 0.0},
        "thresholds": {"0.3": 0.5, "0.5": 0.5},
    }
    assert (out["n"], out["n_calibration"]) == (2, 1)
    assert maxboxacc_numbers(test, None, DELTAS, THRESHOLDS)["calibrated"] is None
    lines = split_metric_lines(
        {"maxboxacc": {**out, "calibration": {"split": "val", "fingerprint": "f"}}}
    )
    assert lines == [
        "maxboxacc  calibrated on val  n=2 (calibration n=1)  0.000  "
        "(δ 0.3 / 0.5: 0.000 / 0.000; τ 0.50 / 0.50)",
        "maxboxacc  max over τ on this split (uncalibrated)  n=2  0.750  "
        "(δ 0.3 / 0.5: 1.000 / 0.500; τ 0.00 / 0.00)",
    ]


def test_pxap_histograms_round_trip_and_refuse_bad_cells():
    from groundbench.report.split_metrics import parse_pxap_csv, pxap_numbers, pxap_to_csv

    # the top bin is empty, as wsolevaluation's [2, 3] always is (scores lie in [0, 1])
    pos, neg = np.array([[0, 2, 0], [1, 0, 0]]), np.array([[3, 0, 0], [0, 1, 0]])
    text = pxap_to_csv(["b", "a"], pos, neg).decode()
    assert text.splitlines() == ["id,positives,negatives", "a,1 0 0,0 1 0", "b,0 2 0,3 0 0"]
    ids, p, n = parse_pxap_csv(text, 3, where="p.csv")
    assert ids == ("a", "b") and (p == pos[::-1]).all() and (n == neg[::-1]).all()
    # pooled: the middle bin holds 2 positives and 1 negative, the lowest 1 and 3
    got = pxap_numbers(pos, neg)
    assert got["n"] == 2 and got["value"] == pytest.approx(4 / 9 + 1 / 7, abs=1e-15)
    assert pxap_numbers(0 * pos, neg)["value"] is None
    with pytest.raises(DataFormatError) as err:
        parse_pxap_csv("id,positives,negatives\na,1 -1 0,0 0 0\n", 3, where="p.csv")
    assert str(err.value) == (
        "p.csv, line 2: positives must be 3 non-negative integers separated by spaces"
    )
