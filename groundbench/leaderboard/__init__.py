"""The leaderboard: validated report entries, ranked tables, paired comparisons, robustness.

Typical use (the CLI does the same)::

    from groundbench.leaderboard import add_entry, build_board, compare_tables, read_any
    add_entry("runs/centre_prior", "leaderboard")
    build_board("leaderboard")
    a, b = read_any("runs/model"), read_any("runs/centre_prior")
    for row in compare_tables(a.table, b.table):
        print(row.metric, row.difference, row.p_value)
"""

from __future__ import annotations

from groundbench.leaderboard.build import BoardFiles, build_board
from groundbench.leaderboard.compare import (
    ComparisonError,
    PairedComparison,
    SampleCoverage,
    compare_tables,
    sample_coverage,
)
from groundbench.leaderboard.entries import Entry, add_entry, load_entries, read_any, read_entry
from groundbench.leaderboard.robustness import RobustnessMatrix, robustness_matrices
from groundbench.leaderboard.samples import SampleTable, parse_samples_csv
from groundbench.leaderboard.validate import Submission, SubmissionError, validate_report_dir

__all__ = [
    "BoardFiles",
    "ComparisonError",
    "Entry",
    "PairedComparison",
    "RobustnessMatrix",
    "SampleCoverage",
    "SampleTable",
    "Submission",
    "SubmissionError",
    "add_entry",
    "build_board",
    "compare_tables",
    "load_entries",
    "parse_samples_csv",
    "read_any",
    "read_entry",
    "robustness_matrices",
    "sample_coverage",
    "validate_report_dir",
]
