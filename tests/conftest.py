"""Shared fixtures: seeded generators, the --update-golden switch, Hypothesis profiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import settings

# The suite's property tests draw the same examples on every run, so a red CI always
# reproduces; `pytest --hypothesis-profile=explore` draws new ones to look for bugs.
settings.register_profile("deterministic", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile("deterministic")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the pinned golden files under tests/golden/ instead of comparing to them",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def torch_gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA; none is available on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
