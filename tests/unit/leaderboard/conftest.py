"""A small board: two methods on a synth family (test, compositional, blind) plus an mg protocol."""

from __future__ import annotations

import pytest
from leaderboard_reports import populate_board


@pytest.fixture(scope="session")
def board(tmp_path_factory):
    return populate_board(tmp_path_factory.mktemp("lb"))
