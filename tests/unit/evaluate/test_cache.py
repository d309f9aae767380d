"""The per-sample record cache: torn lines, rank files, configuration keys."""

import numpy as np

from groundbench.evaluation.cache import RecordWriter, cache_dir, cache_key, read_records
from groundbench.report.records import Records

KEYS = ("m", "n")


def _records(*ids: str) -> Records:
    n = len(ids)
    values = np.arange(2 * n, dtype=np.float64).reshape(n, 2) / 7
    codes = np.zeros((n, 2), np.int8)
    values[0, 1], codes[0, 1] = np.nan, 1
    return Records(KEYS, ids, values, codes, (frozenset({"t"}),) * n, {"m:tie_count": np.ones(n)})


def test_records_survive_a_cut_line_and_merge_ranks(tmp_path):
    key = cache_key("p", "m", "d")
    w0, w1 = RecordWriter(tmp_path, key, 0), RecordWriter(tmp_path, key, 1)
    w0.write(_records("a"))
    w1.write(_records("b"))
    w0.close(), w1.close()
    with (tmp_path / f"records.{key}.rank0.jsonl").open("a") as f:
        f.write('{"id": "c", "val')  # a crash mid-write
    got = read_records(tmp_path, key, KEYS)
    assert got.ids == ("a", "b")
    assert got.undefined[:, 1].tolist() == [1, 1] and np.isnan(got.values[:, 1]).all()
    assert got.tags == (frozenset({"t"}),) * 2 and got.extras["m:tie_count"].tolist() == [1, 1]
    assert len(read_records(tmp_path, cache_key("p", "m", "other"), KEYS)) == 0
    assert cache_dir(tmp_path / "out").name == "out.partial"


def test_a_torn_last_line_is_cut_before_the_next_run_appends(tmp_path):
    # A kill mid-write left half a line; the next run's first record used to be appended
    # to it, so neither parsed and that sample was lost.
    key = cache_key("p", "m", "d")
    w = RecordWriter(tmp_path, key, 0)
    w.write(_records("a", "b"))
    w.close()
    path = tmp_path / f"records.{key}.rank0.jsonl"
    path.write_bytes(path.read_bytes() + b'{"id":"c","tags":[],"val')
    w = RecordWriter(tmp_path, key, 0)
    w.write(_records("c", "d"))
    w.close()
    assert read_records(tmp_path, key, KEYS).ids == ("a", "b", "c", "d")
    assert path.read_bytes().count(b"\n") == 4


def test_records_round_trip_through_cache_lines_exactly():
    r = _records("a", "b", "c")
    back = Records.from_json_lines(KEYS, r.to_json_lines().splitlines(keepends=True))
    assert back.ids == r.ids and back.tags == r.tags
    np.testing.assert_array_equal(back.values, r.values)
    np.testing.assert_array_equal(back.undefined, r.undefined)
    assert back.to_csv() == r.to_csv()
