"""Ranking, interval formatting, Markdown/CSV rendering and determinism of the built board."""

from __future__ import annotations

import csv
import io
import shutil

import pytest

from groundbench.leaderboard import add_entry, build_board, load_entries
from groundbench.leaderboard.tables import (
    _competition_ranks,
    format_interval,
    protocol_tables,
    render_csv,
)
from groundbench.report.render import md_text


def test_competition_ranks():
    assert _competition_ranks([0.9, 0.9, 0.5, None]) == (1, 1, 3, None)
    assert _competition_ranks([]) == ()


@pytest.mark.parametrize(
    ("agg", "text"),
    [
        (
            {"mean": 0.73149, "ci_low": 0.71751, "ci_high": 0.7444, "n": 5, "n_defined": 5},
            "0.731 [0.718, 0.744]",
        ),
        (
            {"mean": 0.5, "ci_low": None, "ci_high": None, "n": 1, "n_defined": 1},
            "0.500 [n/a, n/a]",
        ),
        (
            {"mean": None, "ci_low": None, "ci_high": None, "n": 3, "n_defined": 0},
            "n/a (0/3 defined)",
        ),
        (None, "–"),
    ],
)
def test_format_interval(agg, text):
    assert format_interval(agg) == text


def test_tables_rank_by_first_metric_and_never_mix_variants(board):
    tables = protocol_tables(load_entries(board))
    assert [(t.protocol_name, t.probe) for t in tables] == [
        ("synth_test.albef", None),
        ("synth_compositional.albef", "compositional"),
        ("synth_test_blind.albef", "blind"),
        ("synth_test.mg", None),
    ]
    for t in tables:
        assert len({e.protocol_id for e in t.entries}) == 1
        means = [e.aggregate(t.metrics[0])["mean"] for e in t.entries]
        assert means == sorted(means, reverse=True)
        assert t.metrics[0] == f"pointing[{t.variant}]"
    assert tables[0].ranks == (1, 2)
    assert [e.method_name for e in tables[0].entries] == ["model", "centre_prior"]


def test_csv_is_long_format_and_complete(board):
    tables = protocol_tables(load_entries(board))
    rows = list(csv.DictReader(io.StringIO(render_csv(tables))))
    # 4 protocols × 2 methods × 3 metrics × (all + 2 tags)
    assert len(rows) == 4 * 2 * 3 * 3
    row = next(
        r
        for r in rows
        if r["protocol"] == "synth_test.albef"
        and r["method"] == "model"
        and r["metric"] == "pointing[albef]"
        and r["tag"] == "all"
    )
    entry = next(e for e in tables[0].entries if e.method_name == "model")
    assert float(row["mean"]) == entry.aggregate("pointing[albef]")["mean"]
    assert row["variant"] == "albef" and row["supervision"] == "box-free" and row["n"] == "40"
    keys = [
        [r[c] for c in ("protocol_id", "protocol", "dataset", "split", "variant", "method")]
        for r in rows
    ]
    assert keys == sorted(keys)


def test_markdown_names_protocol_id_and_variant(board):
    files = build_board(board)
    text = files.markdown.read_text()
    entries = load_entries(board)
    for e in entries:
        variant = e.canonical["metrics"][0]["variant"]
        assert (
            f"{md_text(e.protocol_name)} · protocol `{e.protocol_id}` · pointing variant "
            f"`{variant}`" in text
        )
    assert text.count("Generated from 8 entries.") == 1
    assert "| 1 | model | box-free | " in text
    assert "## Robustness" in text and "(robustness.png)" in text


def test_build_is_deterministic_and_self_contained(board, tmp_path):
    first = build_board(board)
    copy = tmp_path / "copy"
    shutil.copytree(board / "entries", copy / "entries")
    second = build_board(copy)
    for a, b in [
        (first.markdown, second.markdown),
        (first.csv, second.csv),
        (first.html, second.html),
        (first.figure, second.figure),
    ]:
        assert a.read_bytes() == b.read_bytes(), a.name
    html = first.html.read_text()
    assert (
        "<script src" not in html
        and "<link" not in html
        and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert html.count('<table class="sortable">') == 4 + 1  # 4 protocols + 1 robustness matrix
    assert html.count("<svg") == 4


def test_lower_is_better_metric_ranks_ascending(board, monkeypatch):
    from groundbench.leaderboard import tables

    monkeypatch.setattr(tables.METRICS, "meta", lambda name: {"higher_is_better": False})
    first = protocol_tables(load_entries(board))[0]
    assert [e.method_name for e in first.entries] == ["centre_prior", "model"]


HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "a|b`c\n## injected",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_markdown_board_escapes_names_from_reports(tmp_path, name):
    # Method and protocol names went raw into README.md (the HTML page escaped them).
    from leaderboard_reports import write_report

    values = {"pointing": [1.0, 0.0, 1.0, 1.0], "soft_iou": [0.5, 0.25, 0.5, 0.75]}
    run = write_report(tmp_path / "run", values, method=name, name=name)
    add_entry(run, tmp_path / "board")
    text = build_board(tmp_path / "board").markdown.read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text and "[click](" not in text
    assert "\n## injected" not in text
    assert md_text(name) in text


def test_board_files_follow_the_umask(board, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        files = build_board(board)
    finally:
        os.umask(old)
    for path in (files.markdown, files.csv, files.html):
        assert path.stat().st_mode & 0o777 == 0o644, path.name
    entry = next((board / "entries").glob("*/*.json"))
    assert entry.stat().st_mode & 0o777 == 0o644


def test_oracle_box_is_listed_as_a_check_and_never_ranked(tmp_path):
    from leaderboard_reports import write_report

    from groundbench.leaderboard.html import render_html

    board = tmp_path / "board"
    for method, hits in [
        ("oracle_box", [1.0] * 10),
        ("model", [1.0, 0.0] * 5),
        ("centre_prior", [0.0] * 10),
    ]:
        add_entry(write_report(tmp_path / method, {"pointing": hits}, method=method), board)
    (t,) = protocol_tables(load_entries(board))
    assert [e.method_name for e in t.entries] == ["model", "centre_prior", "oracle_box"]
    assert t.ranks == (1, 2, None)
    build_board(board)
    readme = (board / "README.md").read_text()
    assert "| 1 | model |" in readme and "| check | oracle_box |" in readme
    assert "`check` rows read the ground truth (a check of the metrics, not a method)" in readme
    rows = list(csv.DictReader(io.StringIO(render_csv([t]))))
    assert {r["method"]: r["rank"] for r in rows} == {
        "model": "1",
        "centre_prior": "2",
        "oracle_box": "check",
    }
    html = render_html([t], [], n_entries=3)
    assert '<td class="num" data-value="">check</td><td>oracle_box</td>' in html


def test_set_overrides_title_the_tables(tmp_path):
    import json

    from leaderboard_reports import canonical_protocol, rewrite_report, write_report

    run = write_report(
        tmp_path / "run", {"pointing": [1.0, 0.0]}, canonical=canonical_protocol("val")
    )

    def edit(report):
        report["protocol"]["name"] = "synth_test.albef"
        report["protocol"]["overrides"] = ["dataset.split=val"]

    rewrite_report(run, edit)
    add_entry(run, tmp_path / "board")
    (t,) = protocol_tables(load_entries(tmp_path / "board"))
    assert t.protocol_name == "synth_test.albef --set dataset.split=val" and t.split == "val"
    build_board(tmp_path / "board")
    readme = (tmp_path / "board" / "README.md").read_text()
    assert "### synth_test.albef --set dataset.split=val · protocol" in readme
    assert json.loads((run / "report.json").read_text())["protocol"]["overrides"]
