"""A small board: two methods on a synth family (test, compositional, blind) plus an mg protocol."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The tests import their report writer as a plain module; with `--import-mode=importlib`
# that needs this folder on the path (conftest.py is imported before the test modules).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from leaderboard_reports import populate_board  # noqa: E402


@pytest.fixture(scope="session")
def board(tmp_path_factory):
    return populate_board(tmp_path_factory.mktemp("lb"))
