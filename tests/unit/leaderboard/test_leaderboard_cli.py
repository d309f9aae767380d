"""`groundbench leaderboard add|build` and `groundbench compare` through the CLI."""

from __future__ import annotations

import json

from click.testing import CliRunner
from leaderboard_reports import write_report

from groundbench.cli import main


def test_add_build_compare(tmp_path):
    runner = CliRunner()
    a = write_report(tmp_path / "a", {"pointing": [1.0] * 30}, method="good")
    b = write_report(tmp_path / "b", {"pointing": [1.0, 0.0] * 15}, method="half")
    board = tmp_path / "board"
    result = runner.invoke(main, ["leaderboard", "add", str(a), str(b), "--board", str(board)])
    assert result.exit_code == 0, result.output
    assert result.output.count("added ") == 2
    result = runner.invoke(main, ["leaderboard", "add", str(a), "--board", str(board)])
    assert result.exit_code == 1 and "Error:" in result.output and "duplicate of" in result.output
    result = runner.invoke(main, ["leaderboard", "build", "--board", str(board)])
    assert result.exit_code == 0, result.output
    assert "built from 2 entries:" in result.output
    assert (board / "README.md").is_file() and (board / "leaderboard.html").is_file()
    entry = next((board / "entries").glob("*/good.json"))
    result = runner.invoke(
        main,
        [
            "compare",
            str(entry),
            str(b),
            "--metric",
            "pointing[albef]",
            "--json",
            "--permutations",
            "999",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    (row,) = payload["comparisons"]
    assert payload["same_protocol"] and row["difference"] == 0.5 and row["p_value"] == 0.001
    result = runner.invoke(main, ["compare", str(a), str(b)])
    assert result.exit_code == 0
    assert (
        "A = good" in result.output
        and "pointing[albef]" in result.output
        and "+0.500" in result.output
    )


def test_compare_unknown_metric_exits_1(tmp_path):
    a = write_report(tmp_path / "a", {"pointing": [1.0, 0.0]})
    result = CliRunner().invoke(main, ["compare", str(a), str(a), "--metric", "nss"])
    assert result.exit_code == 1 and "metric(s) ['nss'] not in both reports" in result.output


def test_compare_states_sample_counts_and_warns_when_it_narrows(tmp_path):
    full = write_report(tmp_path / "full", {"pointing": [1.0, 0.0] * 30}, method="full")
    part = write_report(
        tmp_path / "part",
        {"pointing": [1.0] * 10},
        method="part",
        dataset_fingerprint="e" * 64,
    )
    result = CliRunner().invoke(main, ["compare", str(full), str(part), "--permutations", "99"])
    assert result.exit_code == 0, result.output
    assert "samples: A 60, B 10, shared 10;" in result.stdout
    assert result.stderr.splitlines() == [
        "warning: only 10 samples are shared: A has 50 the comparison leaves out, B has 0",
        f"warning: the dataset fingerprints differ (A {'d' * 12}…, B {'e' * 12}…): the samples, "
        "their files or their selection are not the same (another split, select, control or "
        "--limit)",
        "note: A and B have no model card, so whether both saw the same training data is unknown",
    ]
    payload = json.loads(
        CliRunner()
        .invoke(main, ["compare", str(full), str(part), "--json", "--permutations", "99"])
        .stdout
    )
    assert payload["samples"] == {
        "n_a": 60,
        "n_b": 10,
        "n_shared": 10,
        "fingerprint_a": "d" * 64,
        "fingerprint_b": "e" * 64,
        "same_dataset": False,
    }
    assert len(payload["warnings"]) == 2
    same = CliRunner().invoke(main, ["compare", str(full), str(full), "--permutations", "99"])
    assert "samples: A 60, B 60, shared 60;" in same.stdout and "warning" not in same.stderr
