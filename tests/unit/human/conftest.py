"""A prepared tiny study, built once per session and copied per test (fresh database)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

# the helpers are imported as plain modules (see tests/unit/leaderboard/conftest.py)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from human_study import build_study  # noqa: E402


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_study(tmp_path_factory.mktemp("human"))


@pytest.fixture
def study(prepared: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(prepared, tmp_path / "S"))
