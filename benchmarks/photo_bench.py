"""Throughput of the photograph path: a ResNet-50-sized backbone, frozen with cached tokens
vs. run at every step (frozen) vs. trained.

Usage (from the repository root):

    python benchmarks/photo_bench.py --out runs/photo_bench [--device cuda] [--images 64]

No pretrained weights are read: the backbone is a random-init ``transformers`` ResNet-50
(``ResNetConfig()``'s defaults: bottleneck blocks 3-4-6-3, 2048 channels at stride 32) saved
with ImageNet's mean and std, and the photos are seeded noise-and-shape JPEGs at 640 × 480,
read and resized to 224 px by the streaming loader. Speed does not depend on the weights'
values, so these numbers hold for a pretrained ResNet-50; quality is not measured here.
Each variant trains a few steps through ``groundbench.model.train.train``; ``images_per_s``
is its optimiser steps' rate, and ``cache_s`` the one-off encoding of every image (wall
time of the call minus the steps). One JSON line per variant on stdout (and ``--record``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from groundbench.model import load_config
from groundbench.model.train import train
from groundbench.types import CaptionRecord

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
COLOURS = {"red": (200, 40, 40), "blue": (40, 60, 200), "green": (40, 170, 60)}
SHAPES = ("square", "disc")


def write_backbone(folder: Path) -> Path:
    """Save a random-init ResNet-50-sized ``transformers`` ResNetModel with a preprocessor config."""
    import transformers

    if (folder / "config.json").is_file():
        return folder
    torch.manual_seed(0)
    transformers.ResNetModel(transformers.ResNetConfig()).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD})
    )
    return folder


def write_photos(folder: Path, n: int, seed: int = 0) -> list[CaptionRecord]:
    """``n`` 640 × 480 JPEGs of noise with one coloured shape, captioned by its colour."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        colour, shape = list(COLOURS)[i % 3], SHAPES[i % 2]
        x, y = rng.integers(0, 480, 2)
        image[y // 2 : y // 2 + 160, x : x + 160] = COLOURS[colour]
        path = folder / f"{i:05d}.jpg"
        if not path.is_file():
            Image.fromarray(image).save(path, quality=90)
        records.append(CaptionRecord(f"photos/{i:05d}", str(path), 640, 480, f"a {colour} {shape}"))
    return records


VARIANTS = {
    "frozen_cached": ([], 30),
    "frozen_uncached": (["train.cache_tokens=false"], 3),
    "trainable": (["model.backbone_trainable=true"], 3),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--images-per-step", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--record", default=None)
    args = parser.parse_args()
    out = Path(args.out)
    backbone = write_backbone(out / "resnet50_random")
    records = write_photos(out / "photos", args.images)
    for name, (extra, steps) in VARIANTS.items():
        cfg = load_config(
            "small-cpu",
            overrides=[
                f"model.backbone=hf:{backbone}",
                "model.image_size=224",
                "model.token_stride=32",
                "train.grayscale_prob=0",
                "train.min_word_count=1",
                f"train.steps={steps}",
                "train.warmup_steps=1",
                f"train.images_per_step={args.images_per_step}",
                "train.loader=stream",
                f"train.workers={args.workers}",
                *extra,
            ],
        )
        tic = time.perf_counter()
        result = train(cfg, records, out / name, device=args.device, overwrite=True, progress=False)
        wall = time.perf_counter() - tic
        row = {
            "bench": "photo",
            "variant": name,
            "images": args.images,
            "images_per_step": args.images_per_step,
            "steps": steps,
            "images_per_s": round(result.images_per_s, 2),
            "steps_s": round(result.seconds, 2),
            "cache_s": round(wall - result.seconds, 2) if name == "frozen_cached" else None,
            "env": {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "device": args.device,
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
                "load_avg": [round(x, 2) for x in os.getloadavg()],
            },
        }
        line = json.dumps(row)
        print(line, flush=True)
        if args.record:
            with open(args.record, "a", encoding="utf-8") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
