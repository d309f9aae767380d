import csv
import io
import json

import numpy as np
import pytest

from groundbench.report import Records, headline_lines, parse_samples_csv, render_report_json


def test_samples_csv_columns_and_exact_floats():
    recs = Records(
        ("m", "n"),
        ("a", "b"),
        np.array([[0.1, np.nan], [1 / 3, 0.5]]),
        np.array([[0, 1], [0, 0]], np.int8),
        (frozenset({"y", "x"}), frozenset()),
        {"m:tie_count": np.array([2.0, np.nan])},
    )
    text = recs.to_csv().decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["id", "tags", "m", "n", "m:undefined", "n:undefined", "m:tie_count"]
    assert rows[1] == ["a", "x;y", "0.1", "", "", "empty_region", "2.0"]
    assert rows[2][-1] == ""
    assert float(rows[2][2]) == 1 / 3
    back = parse_samples_csv(text, ["m", "n"], where="samples.csv")
    assert back.ids == recs.ids and back.tags == recs.tags
    np.testing.assert_array_equal(back.values, recs.values)
    np.testing.assert_array_equal(back.undefined, recs.undefined)


def test_report_json_refuses_nan_and_is_sorted():
    assert render_report_json({"b": 1, "a": None}).decode().index('"a"') < render_report_json(
        {"b": 1, "a": None}
    ).decode().index('"b"')
    with pytest.raises(ValueError):
        render_report_json({"a": float("nan")})
    assert json.loads(render_report_json({"a": [1, 2]})) == {"a": [1, 2]}


def test_headline_line_format():
    metrics = {
        "pointing[albef]": {
            "all": {
                "mean": 0.4123,
                "ci_low": 0.372,
                "ci_high": 0.451,
                "n": 600,
                "n_defined": 583,
                "undefined": {"empty_region": 17},
            }
        }
    }
    assert headline_lines(metrics) == [
        "pointing[albef]  tag=all  n=600  undefined=17 (empty_region: 17)  0.412 [0.372, 0.451]"
    ]


def test_tags_under_ten_samples_are_marked_and_the_interval_rule_is_named():
    from groundbench.metrics.aggregate import aggregate_by_tag
    from groundbench.report import render_markdown
    from groundbench.report.records import aggregates_to_dict

    values = np.array([1.0] * 12)
    tags = [frozenset({"rare"}) if i < 2 else frozenset({"common"}) for i in range(12)]
    metrics = aggregates_to_dict(
        {"pointing[albef]": aggregate_by_tag(values, np.zeros(12, np.int8), tags, resamples=100)}
    )
    assert metrics["pointing[albef]"]["all"]["ci_low"] < 1.0  # never [1.000, 1.000]
    report = {
        "protocol": {
            "name": "p",
            "id": "0" * 12,
            "hash": "0" * 64,
            "canonical": {"bootstrap": {"resamples": 100, "seed": 0, "cluster": None}},
            "overrides": [],
        },
        "dataset": {"name": "d", "split": "test", "adapter": "native", "n_samples": 12,
                    "fingerprint": "f" * 64},
        "method": {"name": "m", "spec": "m", "supervision": "box-free", "fingerprint": "e" * 64},
        "metrics": metrics,
    }  # fmt: skip
    md = render_markdown(report, []).decode()
    assert "| rare \\* | 2 | 1.000 [0.342, 1.000] |" in md
    assert "| common | 10 |" in md
    assert "\\* fewer than 10 samples: the mean is noisy, read the interval." in md
    assert "- intervals: 95%: Wilson score for 0/1 metrics, percentile bootstrap otherwise" in md
    few = headline_lines({"k": {"all": {**metrics["pointing[albef]"]["rare"]}}})
    assert few[0].endswith("1.000 [0.342, 1.000]  (n < 10)")
