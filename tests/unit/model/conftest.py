"""Fixtures for the model tests: a few dozen coloured-square images with captions."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from groundbench.types import CaptionRecord

_FIXTURES = str(Path(__file__).resolve().parents[2] / "fixtures")
if _FIXTURES not in sys.path:  # tiny_backbones, adapter_files
    sys.path.insert(0, _FIXTURES)

COLOURS = {
    "red": (220, 30, 30),
    "blue": (30, 30, 220),
    "green": (30, 190, 30),
    "yellow": (230, 220, 40),
}


def write_square_records(root: Path, n: int, size: int = 32, seed: int = 0) -> list[CaptionRecord]:
    """Write ``n`` images of one coloured square on grey, captioned ``a <colour> square``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    names = list(COLOURS)
    records = []
    for i in range(n):
        colour = names[i % len(names)]
        image = np.full((size, size, 3), 128, np.uint8)
        x, y = rng.integers(0, size // 2, 2)
        image[y : y + size // 2, x : x + size // 2] = COLOURS[colour]
        path = root / f"{i:04d}.png"
        Image.fromarray(image).save(path)
        records.append(
            CaptionRecord(f"squares/{i:04d}", str(path), size, size, f"a {colour} square")
        )
    return records


@pytest.fixture(scope="session")
def square_records(tmp_path_factory: pytest.TempPathFactory) -> list[CaptionRecord]:
    return write_square_records(tmp_path_factory.mktemp("squares"), 64)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Model tests run one intra-op thread: xdist already uses every core, and oversubscribed
    OpenMP threads slow small kernels down many times over."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
