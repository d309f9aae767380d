"""One torchrun process of the DDP photo test: train on cached backbone tokens."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from dataset_adapters import open_dataset
from groundbench.model import load_config
from groundbench.model.train import train


def main(workdir: str, flickr: str, backbone: str) -> None:
    torch.set_num_threads(1)
    root = Path(workdir)
    captions = open_dataset("flickr30k_entities", flickr).load_captions("test")
    cfg = load_config(
        "tiny",
        overrides=[
            f"model.backbone=hf:{backbone}",
            "model.token_stride=8",
            "train.steps=3",
            "train.images_per_step=1",
            "train.loader=stream",
            "train.workers=0",
        ],
    )
    result = train(cfg, captions, root / "run", progress=False)
    rank = torch.distributed.get_rank()
    (root / f"rank{rank}.json").write_text(json.dumps({"steps": result.steps}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
