"""Storing entries: layout, round trip, refusals (duplicate, other data, name clash, tampering)."""

from __future__ import annotations

import base64
import gzip
import json
import re

import numpy as np
import pytest
from leaderboard_reports import write_report

from groundbench.leaderboard import (
    SubmissionError,
    add_entry,
    build_board,
    load_entries,
    read_entry,
)
from groundbench.leaderboard.entries import read_any

VALUES = {"pointing": [1.0, 0.0, 1.0, 1.0, 0.0], "soft_iou": [0.5, 0.25, float("nan"), 0.75, 0.1]}


def test_add_stores_under_protocol_id_and_round_trips(tmp_path):
    run = write_report(tmp_path / "run", VALUES)
    path = add_entry(run, tmp_path / "board")
    report = json.loads((run / "report.json").read_text())
    assert path == tmp_path / "board" / "entries" / report["protocol"]["id"] / "centre_prior.json"
    entry = read_entry(path)
    assert entry.report == report
    assert entry.path == path
    direct = read_any(run)
    assert entry.table.ids == direct.table.ids
    np.testing.assert_array_equal(
        entry.table.column("soft_iou")[0], direct.table.column("soft_iou")[0]
    )
    assert entry.metric_keys == ("pointing[albef]", "box_acc@0.5", "soft_iou")
    assert entry.table.metric_keys == entry.metric_keys  # protocol order, not the file's key order
    assert entry.supervision == "training-free" and entry.protocol_name == "synth_test.albef"


def test_entry_bytes_are_deterministic(tmp_path):
    run = write_report(tmp_path / "run", VALUES)
    a = add_entry(run, tmp_path / "a").read_bytes()
    b = add_entry(run, tmp_path / "b").read_bytes()
    assert a == b
    blob = json.loads(a)["samples_csv"]
    assert gzip.decompress(base64.b64decode(blob["data"])) == (run / "samples.csv").read_bytes()


def test_duplicate_is_refused(tmp_path):
    run = write_report(tmp_path / "run", VALUES)
    first = add_entry(run, tmp_path / "board")
    again = write_report(
        tmp_path / "again",
        VALUES,
        method="renamed",
        fingerprint=read_entry(first).method_fingerprint,
    )
    with pytest.raises(SubmissionError, match=re.escape(f"duplicate of {first}: protocol")):
        add_entry(again, tmp_path / "board")
    with pytest.raises(SubmissionError, match="duplicate of"):
        add_entry(again, tmp_path / "board", replace=True)


def test_same_name_other_fingerprint_needs_replace(tmp_path):
    add_entry(write_report(tmp_path / "v1", VALUES, fingerprint="1" * 64), tmp_path / "board")
    v2 = write_report(tmp_path / "v2", {"pointing": [1.0] * 5}, fingerprint="2" * 64)
    with pytest.raises(
        SubmissionError,
        match="already holds method 'centre_prior' with another fingerprint .*pass --replace",
    ):
        add_entry(v2, tmp_path / "board")
    path = add_entry(v2, tmp_path / "board", replace=True)
    assert read_entry(path).method_fingerprint == "2" * 64
    assert len(load_entries(tmp_path / "board")) == 1


def test_other_dataset_fingerprint_is_refused(tmp_path):
    add_entry(write_report(tmp_path / "a", VALUES, method="a"), tmp_path / "board")
    b = write_report(tmp_path / "b", VALUES, method="b", dataset_fingerprint="e" * 64)
    with pytest.raises(
        SubmissionError, match="the samples differ, so the rows would not be comparable"
    ):
        add_entry(b, tmp_path / "board")


def test_method_name_is_made_file_safe(tmp_path):
    run = write_report(tmp_path / "run", VALUES, method="plugin:pkg/mod x")
    assert add_entry(run, tmp_path / "board").name == "plugin-pkg-mod-x.json"


def test_tampered_entry_is_refused_on_read(tmp_path):
    path = add_entry(write_report(tmp_path / "run", VALUES), tmp_path / "board")
    payload = json.loads(path.read_text())
    csv_bytes = gzip.decompress(base64.b64decode(payload["samples_csv"]["data"]))
    payload["samples_csv"]["data"] = base64.b64encode(
        gzip.compress(csv_bytes.replace(b"0.75", b"0.95"))
    ).decode()
    path.write_text(json.dumps(payload))
    with pytest.raises(
        SubmissionError, match=r"\(samples_csv\): sha256 is .* the file was changed"
    ):
        read_entry(path)


def test_not_an_entry(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"report": {}}')
    with pytest.raises(
        SubmissionError, match=re.escape(f"{path}: not a leaderboard entry (schema 1)")
    ):
        read_entry(path)


def test_build_without_entries_is_refused(tmp_path):
    with pytest.raises(
        SubmissionError,
        match="no entries; add reports with `groundbench leaderboard add REPORT_DIR`",
    ):
        build_board(tmp_path / "board")


@pytest.mark.parametrize("complete", [False, None])
def test_a_plugin_whose_fingerprint_ignores_its_weights_is_refused(tmp_path, complete):
    # Two checkpoints behind one wrapper module had one fingerprint: the second was refused
    # as a duplicate even with --replace. None: a report written before the field existed.
    run = write_report(tmp_path / "run", VALUES, method="plugin:wrap:fn",
                       fingerprint_complete=complete)  # fmt: skip
    with pytest.raises(SubmissionError) as exc:
        add_entry(run, tmp_path / "board")
    assert str(exc.value) == (
        f"{run / 'report.json'}: method 'plugin:wrap:fn' has a fingerprint that covers its code "
        "only, not its weights, so two different models would look like one entry; declare "
        "what the plugin's maps depend on (fn.depends_on = [paths] and/or fn.fingerprint = a "
        "function returning a string; docs/plugins.md) and evaluate again"
    )
    assert not (tmp_path / "board").exists()
    declared = write_report(tmp_path / "ok", VALUES, method="plugin:wrap:fn")
    assert add_entry(declared, tmp_path / "board").is_file()
    old_builtin = write_report(
        tmp_path / "old", VALUES, method="uniform", fingerprint_complete=None
    )
    assert add_entry(old_builtin, tmp_path / "board").is_file()
