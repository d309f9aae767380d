"""Streaming JSON reader and the SQLite Visual Genome index: round trip, staleness, errors."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from adapter_files import vg_files, write_vg
from hypothesis import given, settings
from hypothesis import strategies as st

from dataset_adapters.index import build_vg_index, index_is_current
from dataset_adapters.json_stream import iter_json_array
from groundbench.errors import DataFormatError


@pytest.mark.parametrize("chunk_chars", [1, 3, 7, 64, 1 << 20])
def test_stream_equals_json_load(tmp_path, chunk_chars):
    data = [
        {"id": 1, "s": 'é ü \\ " ] } [ {', "n": [1.5, -2e-3, None, True], "d": {"a": []}},
        [1, [2, [3]]],
        {},
        {"unicode": "雪" * 30},
    ]
    path = tmp_path / "a.json"
    path.write_text(" \n" + json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert list(iter_json_array(path, chunk_chars=chunk_chars)) == data


def test_stream_reports_bytes(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[{"x": "é"}]', encoding="utf-8")
    seen = []
    list(iter_json_array(path, chunk_chars=4, on_progress=seen.append))
    assert sum(seen) == path.stat().st_size


def test_stream_empty_array(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("  [ ]  ")
    assert list(iter_json_array(path)) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"a": 1}', "expected a top-level JSON array '[' at character 0"),
        ('[{"a": 1}, {"b": ', "malformed element 1 (Expecting value) at character 17"),
        ('[{"a": 1} {"b": 2}]', "expected ',' or ']' after element 0 at character 10"),
        ("[1, 2]", "element 0 is not an object or array at character 1"),
        ('[{"a": 1}', "expected ',' or ']' after element 0 at character 9"),
    ],
)
def test_stream_malformed(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataFormatError) as err:
        list(iter_json_array(path, chunk_chars=4))
    assert str(err.value) == f"{path}: {message}; the file is truncated or corrupt: re-download it"


def test_stream_reports_malformed_element_without_reading_on(tmp_path):
    path = tmp_path / "big.json"
    good = json.dumps({"phrase": "x" * 100})
    path.write_text("[" + good + ', {"a": 1 "b": 2}, ' + ", ".join([good] * 5000) + "]")
    read = []
    with pytest.raises(DataFormatError) as err:
        list(iter_json_array(path, chunk_chars=256, on_progress=read.append))
    assert str(err.value) == (
        f"{path}: malformed element 1 (Expecting ',' delimiter) at character {len(good) + 11}; "
        "the file is truncated or corrupt: re-download it"
    )
    assert sum(read) <= 1024 < path.stat().st_size


def _rows(path, sql):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_index_round_trip(tmp_path):
    root = write_vg(tmp_path / "vg")
    index = tmp_path / "cache" / "vg.sqlite"
    counts = build_vg_index(root, index, progress=False)
    assert counts == {
        "images": 3,
        "regions": 4,
        "object_names": 4,
        "attribute_pairs": 1,
        "relation_triples": 1,
        "phrase_pairs": 1,
    }
    assert index_is_current(index, root)
    regions = [r for e in vg_files()["region_descriptions.json"] for r in e["regions"]]
    assert _rows(
        index,
        "SELECT region_id, image_id, phrase, x, y, width, height FROM regions ORDER BY region_id",
    ) == [
        (r["region_id"], r["image_id"], r["phrase"], r["x"], r["y"], r["width"], r["height"])
        for r in regions
    ]
    assert _rows(index, "SELECT * FROM images ORDER BY image_id") == [
        (1, 100, 80, "https://x/VG_100K/1.jpg", 5),
        (2, 60, 40, "https://x/VG_100K_2/2.jpg", None),
        (3, 50, 50, "https://x/VG_100K/3.jpg", 7),
    ]
    assert _rows(index, "SELECT * FROM object_names WHERE image_id = 1 ORDER BY name") == [
        (1, "fence", 2), (1, "horse", 1), (1, "man", 1)
    ]  # fmt: skip
    assert _rows(index, "SELECT * FROM relation_triples") == [(1, "man", "riding", "horse")]
    assert _rows(index, "SELECT * FROM attribute_pairs") == [(1, "white", "fence")]
    assert _rows(index, "SELECT * FROM phrase_pairs") == [(1, "white", "fence")]
    assert not list(index.parent.glob("*.tmp*"))


def test_index_goes_stale_when_a_source_changes(tmp_path):
    root = write_vg(tmp_path / "vg")
    index = tmp_path / "vg.sqlite"
    build_vg_index(root, index, progress=False)
    src = root / "region_descriptions.json"
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert not index_is_current(index, root)
    index.write_bytes(b"not a database")
    assert not index_is_current(index, root)


def test_malformed_source_leaves_no_index(tmp_path):
    root = write_vg(tmp_path / "vg")
    path = root / "region_descriptions.json"
    path.write_text(path.read_text()[:-200])
    index = tmp_path / "vg.sqlite"
    with pytest.raises(DataFormatError, match=r"region_descriptions.json: malformed element 1 "):
        build_vg_index(root, index, progress=False)
    assert not index.exists() and not list(tmp_path.glob("*.tmp*"))


def test_duplicate_region_id(tmp_path):
    root = write_vg(tmp_path / "vg")
    data = vg_files()["region_descriptions.json"]
    data[1]["regions"][0]["region_id"] = 11
    (root / "region_descriptions.json").write_text(json.dumps(data))
    with pytest.raises(DataFormatError) as err:
        build_vg_index(root, tmp_path / "vg.sqlite", progress=False)
    assert str(err.value) == (
        f"{root / 'region_descriptions.json'}: region id 11 occurs more than once; ids must be "
        "unique: re-download the file"
    )


def test_duplicate_id_is_named_past_the_first_batch(tmp_path, monkeypatch):
    import dataset_adapters.index as index

    monkeypatch.setattr(index, "_BATCH", 2)  # the duplicate sits in the second batch
    root = write_vg(tmp_path / "vg")
    data = vg_files()["image_data.json"]
    data.append({**data[0], "width": 7})
    (root / "image_data.json").write_text(json.dumps(data))
    with pytest.raises(DataFormatError) as err:
        build_vg_index(root, tmp_path / "vg.sqlite", progress=False)
    assert str(err.value) == (
        f"{root / 'image_data.json'}: image id 1 occurs more than once; ids must be unique: "
        "re-download the file"
    )


def test_missing_required_file(tmp_path):
    root = write_vg(tmp_path / "vg")
    (root / "image_data.json").unlink()
    with pytest.raises(DataFormatError) as err:
        build_vg_index(root, tmp_path / "vg.sqlite", progress=False)
    assert str(err.value) == (
        f"{root / 'image_data.json'} does not exist; download it from the Visual Genome site "
        "(see docs/adapters.md) into the dataset root"
    )


def test_region_missing_field_is_named(tmp_path):
    root = write_vg(tmp_path / "vg")
    data = vg_files()["region_descriptions.json"]
    del data[2]["regions"][0]["height"]
    (root / "region_descriptions.json").write_text(json.dumps(data))
    with pytest.raises(DataFormatError) as err:
        build_vg_index(root, tmp_path / "vg.sqlite", progress=False)
    assert str(err.value) == (
        f"{root / 'region_descriptions.json'} element 2 region 0: field 'height' must be a number, got None"
    )


_JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(
    elements=st.lists(
        st.dictionaries(st.text(), _JSON, max_size=4) | st.lists(_JSON, max_size=4), max_size=6
    ),
    chunk_chars=st.integers(1, 40),
    indent=st.sampled_from([None, 1]),
    ensure_ascii=st.booleans(),
)
def test_stream_matches_json_loads_for_any_array(
    tmp_path_factory, elements, chunk_chars, indent, ensure_ascii
):
    path = tmp_path_factory.mktemp("j") / "a.json"
    path.write_text(
        json.dumps(elements, indent=indent, ensure_ascii=ensure_ascii), encoding="utf-8"
    )
    assert list(iter_json_array(path, chunk_chars=chunk_chars)) == json.loads(
        path.read_text(encoding="utf-8")
    )
