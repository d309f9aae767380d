"""The board's terminal summary: headline means, robustness differences, ≤ 120 columns."""

from __future__ import annotations

from groundbench.leaderboard import build_board, load_entries, robustness_matrices
from groundbench.leaderboard.build import render_summary
from groundbench.leaderboard.tables import protocol_tables


def test_summary_lists_headline_means_and_differences(board):
    summary = build_board(board).summary
    lines = summary.splitlines()
    assert lines[0].startswith("Leaderboard: 8 entries, 4 protocols.")
    head = next(line for line in lines if line.startswith("protocol"))
    assert head.split() == ["protocol", "metric", "model", "centre_prior"]  # best first
    entries = load_entries(board)
    model = next(
        e for e in entries if e.method_name == "model" and e.protocol_name == "synth_test.albef"
    )
    row = next(line for line in lines if line.startswith("synth_test.albef "))
    assert row.split()[1] == "pointing[albef]"
    assert row.split()[2] == f"{model.aggregate('pointing[albef]')['mean']:.3f}"
    assert any(line.startswith("Robustness (synth, pointing[albef])") for line in lines)
    probes = next(line for line in lines if line.startswith("method"))
    assert probes.split() == ["method", "compositional", "blind", "(control)"]
    model_row = [line for line in lines[lines.index(probes) :] if line.startswith("model ")][0]
    assert all(cell[0] in "+-" for cell in model_row.split()[1:])
    assert str(board / "leaderboard.html") in summary
    assert "|" not in summary and "![" not in summary
    assert all(len(line) <= 120 for line in lines)


def test_summary_splits_wide_grids_into_blocks(board):
    entries = load_entries(board)
    tables = protocol_tables(entries)
    matrices = robustness_matrices(entries)
    wide = render_summary(tables, matrices, n_entries=len(entries), width=1000)
    narrow = render_summary(tables, matrices, n_entries=len(entries), width=60)
    assert all(len(line) <= 60 for line in narrow.splitlines())
    assert sum(line.startswith("protocol ") for line in wide.splitlines()) == 1
    assert sum(line.startswith("protocol ") for line in narrow.splitlines()) == 2
    # every value is still there, in one block or another
    numbers = sorted(w for line in wide.splitlines() for w in line.split() if w[-4:-3] == ".")
    split = sorted(w for line in narrow.splitlines() for w in line.split() if w[-4:-3] == ".")
    assert numbers == split
