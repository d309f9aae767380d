"""Reference-model benchmarks: training throughput, quick pointing quality, ablations.

Usage (from the repository root):

    python benchmarks/train_bench.py throughput --preset small-cpu
    python benchmarks/train_bench.py quality --preset small-cpu --out runs/small --splits val
    python benchmarks/train_bench.py ablate --preset small-cpu --out runs/ablate --splits val
    python benchmarks/train_bench.py words --out runs/small --splits val

``quality`` trains (unless the run directory already holds a checkpoint) and scores the
albef pointing rule (bicubic upsampling to image size, argmax strictly inside a GT box)
directly on the read-out, so it runs without the evaluate command; final numbers come from
``groundbench evaluate``. ``words`` reads an existing run's referent words one at a time
(nothing hidden, mean over layers and heads) and prints, per word and per kind (the
sample's ``colour=`` / ``shape=`` tag value, else ``other``), how often the visual token at
the word's attention peak overlaps a GT box (``chance``: a uniformly random token). Results print as one JSON line per
measurement on stdout.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from groundbench.model import load_config
from groundbench.model.checkpoint import load_checkpoint
from groundbench.model.infer import read_out
from groundbench.model.network import GroundingModel
from groundbench.model.objective import compute_loss
from groundbench.model.train import train


def pointing_albef(model, vocab, samples, *, passes=4, heads="gate", batch=64) -> float:
    """Fraction of samples whose upsampled map's argmax pixel centre lies strictly inside a GT box."""
    hits = 0.0
    for i in range(0, len(samples), batch):
        chunk = samples[i : i + batch]
        raw = read_out(
            model,
            vocab,
            chunk,
            [s.load_image() for s in chunk],
            passes=passes,
        )
        for s, m in zip(chunk, raw.maps, strict=True):
            m = m.float().mean(0)  # L H h w, mean over passes
            if heads == "gate":
                m = torch.einsum("lhyx,lh->yx", m, raw.head_weights)
            else:
                m = m.mean((0, 1))
            up = F.interpolate(
                m[None, None], size=(s.height, s.width), mode="bicubic", align_corners=False
            )[0, 0]
            flat = int(up.argmax())
            cy, cx = flat // s.width + 0.5, flat % s.width + 0.5
            b = s.boxes
            inside = (b[:, 0] < cx) & (cx < b[:, 2]) & (b[:, 1] < cy) & (cy < b[:, 3])
            hits += float(inside.any())
    return hits / max(1, len(samples))


def _data(root: str | None):
    from dataset_adapters import open_dataset
    from groundbench.synthetic import ensure_default_dataset

    return open_dataset("native", root or ensure_default_dataset())


def throughput(args) -> None:
    """Time optimiser steps of a preset on random inputs (images/s)."""
    torch.set_num_threads(args.threads)
    cfg = load_config(args.preset, overrides=args.set)
    model = GroundingModel(cfg.model, 64)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    B, T = cfg.train.batch_size, 12
    words = [
        "a",
        "small",
        "red",
        "circle",
        "left",
        "of",
        "the",
        "big",
        "blue",
        "square",
        "and",
        "star",
    ]
    gen = torch.Generator().manual_seed(0)
    batch = {
        "images": torch.rand(B, 3, cfg.model.image_size, cfg.model.image_size, generator=gen),
        "ids": torch.randint(3, 64, (B, T), generator=gen),
        "words": [words] * B,
    }
    batch["pad"] = batch["ids"] == 0
    times = []
    for i in range(args.steps + 1):
        tic = time.perf_counter()
        loss, _ = compute_loss(
            model,
            batch,
            cfg,
            progress=0.5,
            generator=torch.Generator().manual_seed(i),
            device=torch.device("cpu"),
            autocast_dtype=None,
        )
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - tic)
    per_step = sorted(times[1:])[len(times[1:]) // 2]
    print(
        json.dumps(
            {
                "preset": args.preset,
                "threads": args.threads,
                "batch": B,
                "median_step_s": per_step,
                "images_per_s": B / per_step,
            }
        )
    )


def quality(args, overrides=(), name="main", readouts=(("gate", 4),)) -> None:
    """Train (or reuse) a run and print quick pointing on the requested splits."""
    torch.set_num_threads(args.threads)
    cfg = load_config(args.preset, overrides=[*args.set, *overrides])
    out = Path(args.out) / name
    adapter = _data(args.data)
    tic = time.perf_counter()
    if not (out / "model.safetensors").exists():
        train(cfg, adapter.load_captions("train"), out, progress=False)
    seconds = time.perf_counter() - tic
    ckpt = load_checkpoint(out / "model.safetensors")
    for split in args.splits:
        samples = adapter.load_samples(split)[: args.limit or None]
        for heads, passes in readouts:
            score = pointing_albef(ckpt.model, ckpt.vocab, samples, passes=passes, heads=heads)
            print(
                json.dumps(
                    {
                        "run": name,
                        "split": split,
                        "heads": heads,
                        "passes": passes,
                        "n": len(samples),
                        "pointing_albef": round(score, 4),
                        "train_s": round(seconds, 1),
                    }
                ),
                flush=True,
            )


@torch.no_grad()
def words(args) -> None:
    """Per-word grounding of a trained run: does each referent word's attention peak hit?"""
    from collections import defaultdict

    from groundbench.model.data import image_to_tensor
    from groundbench.model.infer import _encode, referent_tokens
    from groundbench.model.text import PAD_ID

    torch.set_num_threads(args.threads)
    ckpt = load_checkpoint(Path(args.out) / "model.safetensors")
    model, vocab, cfg = ckpt.model, ckpt.vocab, ckpt.model.cfg
    adapter = _data(args.data)
    g = cfg.grid
    for split in args.splits:
        samples = adapter.load_samples(split)[: args.limit or None]
        hits = defaultdict(list)
        for i in range(0, len(samples), 64):
            chunk = samples[i : i + 64]
            encoded = [_encode(s, vocab, cfg.max_words) for s in chunk]
            ids = torch.full((len(chunk), max(len(e[0]) for e in encoded)), PAD_ID)
            for b, e in enumerate(encoded):
                ids[b, : len(e[0])] = torch.tensor(e[0])
            images = torch.stack([image_to_tensor(s.load_image(), cfg.image_size) for s in chunk])
            att = model(images, ids, ids == PAD_ID, None).attention.mean((1, 2))  # B T N
            for b, (s, (_, phrase, tokens)) in enumerate(zip(chunk, encoded, strict=True)):
                kinds = {t.split("=", 1)[1]: t.split("=", 1)[0] for t in s.tags if "=" in t}
                bx = torch.tensor(s.boxes)
                ys, xs = torch.arange(g) * s.height / g, torch.arange(g) * s.width / g
                rows = (bx[:, None, 1] < ys + s.height / g) & (bx[:, None, 3] > ys)  # K g
                cols = (bx[:, None, 0] < xs + s.width / g) & (bx[:, None, 2] > xs)  # K g
                # a uniformly random token's chance of overlapping a box
                hits["chance"].append(
                    float((rows[:, :, None] & cols[:, None, :]).any(0).float().mean())
                )
                for t in referent_tokens(tokens, phrase):
                    n = int(att[b, t].argmax())
                    y0, x0 = (n // g) * s.height / g, (n % g) * s.width / g
                    y1, x1 = y0 + s.height / g, x0 + s.width / g
                    hit = float(
                        (
                            (bx[:, 0] < x1) & (bx[:, 2] > x0) & (bx[:, 1] < y1) & (bx[:, 3] > y0)
                        ).any()
                    )
                    hits["kind:" + kinds.get(tokens[t], "other")].append(hit)
                    hits["word:" + tokens[t]].append(hit)
        for key in sorted(hits):
            print(
                json.dumps(
                    {
                        "split": split,
                        "key": key,
                        "n": len(hits[key]),
                        "peak_overlaps_box": round(sum(hits[key]) / len(hits[key]), 3),
                    }
                )
            )


ABLATIONS = {
    "attention_losses_off": [
        "train.loss_entropy=0",
        "train.loss_distractor=0",
        "train.loss_head_consistency=0",
    ],
    "language_only_masking": ["train.masking=language"],
    "curriculum_off": ["train.curriculum=false"],
}


def ablate(args) -> None:
    """The reference run read out four ways, then one training per ablated setting."""
    quality(args, readouts=(("gate", 4), ("gate", 1), ("mean", 4)))
    for name, overrides in ABLATIONS.items():
        quality(args, overrides=overrides, name=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["throughput", "quality", "ablate", "words"])
    parser.add_argument("--preset", default="small-cpu")
    parser.add_argument(
        "--set", action="append", default=[], help="config override section.key=value"
    )
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument(
        "--data", default=None, help="native dataset root (default: the synthetic set)"
    )
    parser.add_argument("--splits", nargs="+", default=["val"])
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    {"throughput": throughput, "quality": quality, "ablate": ablate, "words": words}[args.command](
        args
    )


if __name__ == "__main__":
    main()
