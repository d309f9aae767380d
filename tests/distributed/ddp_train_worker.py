"""One torchrun process of the DDP training test: train ``tiny`` and report what it saw."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from groundbench.model import load_config
from groundbench.model.train import train
from groundbench.types import CaptionRecord


def records(root: Path, n: int) -> list[CaptionRecord]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        image = np.full((32, 32, 3), 128, np.uint8)
        x, y = rng.integers(0, 16, 2)
        colour = ("red", "blue")[i % 2]
        image[y : y + 16, x : x + 16] = (220, 30, 30) if colour == "red" else (30, 30, 220)
        path = root / f"{i}.png"
        Image.fromarray(image).save(path)
        # one caption in four has a relation word, so some steps use the relation kernels
        text = f"a {colour} square" + (" left of a circle" if i % 4 == 0 else "")
        out.append(CaptionRecord(f"ddp/{i}", str(path), 32, 32, text))
    return out


def main(workdir: str) -> None:
    torch.set_num_threads(1)
    root = Path(workdir)
    images = root / "images" / os.environ["RANK"]  # each process writes its own copy
    images.mkdir(parents=True, exist_ok=True)
    cfg = load_config("tiny", overrides=["train.steps=8", "train.images_per_step=4"])
    result = train(cfg, records(images, 32), root / "run", progress=False)
    rank = torch.distributed.get_rank()
    log_rows = (root / "run" / "log.csv").read_text().count("\n") - 1 if rank == 0 else None
    (root / f"rank{rank}.json").write_text(
        json.dumps(
            {
                "steps": result.steps,
                "world": torch.distributed.get_world_size(),
                "log_rows": log_rows,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
