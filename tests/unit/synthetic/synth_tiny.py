"""A tiny synthetic dataset for the synthetic tests (a helper module rather than a conftest,
whose name would clash with other test folders' conftest modules under --doctest-modules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from groundbench.synthetic import PROBE_SPLITS, generate

TINY = {"scenes": {"train": 30, "val": 10, "test": 10} | {s: 8 for s in PROBE_SPLITS}}


def make_tiny(factory: pytest.TempPathFactory) -> Path:
    """Generate the tiny dataset (seed 3) into a fresh temporary folder."""
    return generate(factory.mktemp("synth") / "tiny", TINY, seed=3, progress=False)
