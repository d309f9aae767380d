import csv
import io
import json

import pytest

from groundbench.report import headline_lines, render_report_json, render_samples_csv


def test_samples_csv_columns_and_exact_floats():
    recs = [
        {
            "id": "a",
            "values": {"m": 0.1, "n": None},
            "undefined": {"m": "", "n": "empty_region"},
            "extras": {"m:tie_count": 2.0},
        },
        {
            "id": "b",
            "values": {"m": 1 / 3, "n": 0.5},
            "undefined": {"m": "", "n": ""},
            "extras": {},
        },
    ]
    text = render_samples_csv(
        ["m", "n"], recs, {"a": frozenset({"y", "x"}), "b": frozenset()}
    ).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["id", "tags", "m", "n", "m:undefined", "n:undefined", "m:tie_count"]
    assert rows[1] == ["a", "x;y", "0.1", "", "", "empty_region", "2.0"]
    assert float(rows[2][2]) == 1 / 3


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
