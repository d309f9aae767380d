"""Parsing samples.csv into float64 columns, and its format errors."""

from __future__ import annotations

import math

import pytest

from groundbench.errors import DataFormatError
from groundbench.leaderboard.samples import parse_samples_csv

HEADER = "id,tags,m,m:undefined,m:tie_count\n"


def test_parses_values_tags_and_extras():
    t = parse_samples_csv(HEADER + "a,x;y,0.25,,1\nb,,,nan_input,0\n", ["m"], where="s.csv")
    assert t.ids == ("a", "b")
    assert t.tags == (frozenset({"x", "y"}), frozenset())
    assert t.column("m")[0][0] == 0.25 and math.isnan(t.column("m")[0][1])
    assert t.labels("m") == ("", "nan_input")
    assert len(t) == 2 and t.metric_keys == ("m",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("a,,0.5,\na,,0.5,\n", "s.csv: sample id 'a' appears more than once"),
        ("b,,0.5,\na,,0.5,\n", "s.csv: rows must be sorted by id"),
        ("a,,oops,\n", "s.csv, line 2, column 'm': 'oops' is not a number"),
        ("a,,nan,\n", "s.csv, line 2, column 'm': 'nan' is not finite"),
        ("a,,0.5,empty_region\n", "value '0.5' with undefined reason 'empty_region'"),
        ("a,,,\n", "value '' with undefined reason ''"),
        ("a,,0.5\n", "s.csv, line 2: the row does not have one cell per column"),
        (",,0.5,\n", "s.csv: a row has an empty id"),
    ],
)
def test_format_errors(body, message):
    with pytest.raises(DataFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_samples_csv("id,tags,m,m:undefined\n" + body, ["m"], where="s.csv")


def test_missing_metric_column():
    with pytest.raises(DataFormatError, match=r"s.csv: missing column\(s\) \['n', 'n:undefined'\]"):
        parse_samples_csv(HEADER + "a,,0.5,,1\n", ["m", "n"], where="s.csv")
