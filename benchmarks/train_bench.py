"""Reference-model benchmarks: training throughput, time to a val score, ablations.

Usage (from the repository root):

    python benchmarks/train_bench.py throughput --preset small-cpu [--device cuda]
    python benchmarks/train_bench.py quality --preset small-cpu --out runs/bench [--every 500]
    python benchmarks/train_bench.py ablate --preset small-cpu --out runs/ablate --set train.steps=2000

``quality`` trains a preset and scores the val split every ``--every`` steps with the
project's own read-out, ``Pipeline`` (the ``synth_val.albef`` protocol's settings) and
``pointing`` metric; the training clock stops while it scores. In the per-check rows
``train_s`` counts from the start of ``train()`` (decoding the data included, as a user
waits for it); in the final row it is the optimiser steps alone. ``ablate`` trains one run per variant (``ABLATIONS``) and scores val at the end
(the ``masked_passes`` row re-reads the baseline's checkpoint). Every result is one JSON line
on stdout, and appended to ``--record FILE`` when given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from groundbench.metrics.pointing import pointing
from groundbench.model import load_config
from groundbench.model.checkpoint import load_checkpoint
from groundbench.model.data import build_training_data
from groundbench.model.infer import read_out
from groundbench.model.network import GroundingModel
from groundbench.model.objective import compute_loss
from groundbench.model.train import _optimizer, autocast_dtype, step_images, train
from groundbench.postprocess.pipeline import Pipeline
from groundbench.protocol import load_protocol
from groundbench.types import pad_boxes

ABLATIONS: dict[str, list[str]] = {
    "baseline": [],
    "no_relation_term": ["model.relations=false"],
    "grid_8x8": ["model.token_stride=8"],
    "global_mixing": ["model.mixing_layers=2"],
    "vocabulary_head": ["model.head=vocabulary"],
    "no_grayscale": ["train.grayscale_prob=0"],
    "attention_sparsity": ["train.loss_entropy=0.01"],
    "image_contrast": ["train.loss_contrast=0.5"],
    "two_heads": ["model.heads=2"],
    "entropy_bonus": ["train.loss_entropy=-0.2"],
    "sigmoid_mask_wwbl": [
        "model.mask=sigmoid",
        "train.loss_foreground=1",
        "train.loss_background=1",
        "train.loss_area=0.5",
    ],
    "query_drop": ["train.query_drop=0.5"],
    "progressive_masking": ["train.query_drop=0.5", "train.query_drop_schedule=linear"],
    "consistency": ["train.loss_consistency=1"],
    "patch_masking": ["model.patch_decoder=1", "train.patch_mask=0.5", "train.loss_patch=1"],
    "joint_masking": [
        "model.patch_decoder=1",
        "train.patch_mask=0.5",
        "train.loss_patch=1",
        "train.patch_mask_joint=true",
    ],
}


def _dataset(root: str | None):
    from dataset_adapters import open_dataset
    from groundbench.synthetic import ensure_default_dataset

    return open_dataset("native", root or ensure_default_dataset())


class ValScorer:
    """Albef pointing on a split through the project's read-out, pipeline and metric."""

    def __init__(self, root: str | None, split: str = "val", protocol: str = "synth_val.albef"):
        self.samples = _dataset(root).load_samples(split)
        self.images = [s.load_image() for s in self.samples]
        self.pipeline = Pipeline.from_config(load_protocol(protocol).pipeline)

    def __call__(self, model, vocab, *, passes: str = "full", device="cpu") -> float:
        hits = []
        for i in range(0, len(self.samples), 128):
            chunk = self.samples[i : i + 128]
            raw = read_out(
                model, vocab, chunk, self.images[i : i + 128], passes=passes, device=device
            )
            out = self.pipeline.run(raw, [(s.height, s.width) for s in chunk], device="cpu")
            boxes, count = pad_boxes([s.boxes for s in chunk])
            scored = pointing(
                out.heatmap, valid=out.valid, boxes=boxes, box_count=count, variant="albef"
            )
            hits.append(scored.values)
        return float(torch.cat(hits).nanmean())


def _environment(device: str) -> dict:
    env = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": device,
        "cpu": platform.processor() or platform.machine(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def _emit(row: dict, record: str | None) -> None:
    line = json.dumps(row)
    print(line, flush=True)
    if record:
        with open(record, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def throughput(args) -> None:
    """Time optimiser steps of a preset on the synthetic training data (images/s)."""
    cfg = load_config(args.preset, overrides=args.set)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = torch.device(args.device)
    records = _dataset(args.data_root).load_captions("train")
    tic = time.perf_counter()
    data = build_training_data(records, cfg, progress=False).to(device)
    build_s = time.perf_counter() - tic
    model = GroundingModel(cfg.model, data.vocab.types).to(device)
    opt = _optimizer(model, cfg)
    step = model if not cfg.train.compile else torch.compile(model)
    dtype = autocast_dtype(cfg, device)
    n = cfg.train.images_per_step
    times = []
    for s in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        batch = data.batch(step_images(s, len(data), n, 0, 1, 0).to(device))
        loss, _ = compute_loss(step, batch, cfg, autocast_dtype=dtype)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if s >= args.warmup:
            times.append(time.perf_counter() - tic)
    times.sort()
    median = times[len(times) // 2]
    _emit(
        {
            "bench": "throughput",
            "preset": args.preset,
            "set": args.set,
            "images_per_step": n,
            "build_data_s": round(build_s, 2),
            "median_step_s": round(median, 5),
            "images_per_s": round(n / median, 1),
            "env": _environment(args.device),
        },
        args.record,
    )


def _train_scored(args, name: str, overrides: list[str], every: int) -> tuple[float, Path]:
    cfg = load_config(args.preset, overrides=[*args.set, *overrides])
    scorer = ValScorer(args.data_root)
    records = _dataset(args.data_root).load_captions("train")
    out = Path(args.out) / name
    clock = {"paused": 0.0, "start": time.perf_counter(), "reached": None}
    last = {"val": float("nan")}

    def on_step(step: int, model, data) -> None:
        if step % every and step != cfg.train.steps:
            return
        tic = time.perf_counter()
        train_s = tic - clock["start"] - clock["paused"]  # includes decoding the data once
        val = scorer(model, data.vocab, device=data.images.device)
        clock["paused"] += time.perf_counter() - tic
        if clock["reached"] is None and val >= args.target:
            clock["reached"] = round(train_s, 1)
        last["val"] = val
        _emit(
            {
                "bench": "quality",
                "run": name,
                "step": step,
                "train_s": round(train_s, 1),
                "val_pointing_albef": round(val, 4),
            },
            None,
        )

    result = train(
        cfg, records, out, device=args.device, on_step=on_step, progress=False, overwrite=True
    )
    _emit(
        {
            "bench": "quality",
            "run": name,
            "preset": args.preset,
            "set": [*args.set, *overrides],
            "steps": result.steps,
            "train_s": round(result.seconds - clock["paused"], 1),
            "images_per_s": round(
                result.steps
                * cfg.train.images_per_step
                / max(result.seconds - clock["paused"], 1e-9),
                1,
            ),
            "final_loss": round(result.final_loss, 4),
            "val_pointing_albef": round(last["val"], 4),
            f"train_s_to_val_{args.target}": clock["reached"],
            "env": _environment(args.device),
        },
        args.record,
    )
    return last["val"], result.checkpoint


def quality(args) -> None:
    """Train a preset, scoring val every ``--every`` steps."""
    _train_scored(args, "quality", [], args.every)


def ablate(args) -> None:
    """Train each ablation variant; score val at the end of each."""
    names = args.only or list(ABLATIONS)
    for name in names:
        if name == "masked_passes":
            continue
        _, ckpt = _train_scored(args, name, ABLATIONS[name], 10**9)
        if name == "baseline" and (not args.only or "masked_passes" in args.only):
            loaded = load_checkpoint(ckpt)
            val = ValScorer(args.data_root)(loaded.model, loaded.vocab, passes="masked")
            _emit(
                {"bench": "quality", "run": "masked_passes", "val_pointing_albef": round(val, 4)},
                args.record,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn in (("throughput", throughput), ("quality", quality), ("ablate", ablate)):
        p = sub.add_parser(name)
        p.set_defaults(fn=fn)
        p.add_argument("--preset", default="small-cpu")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
        p.add_argument("--device", default="cpu")
        p.add_argument("--data-root", default=None)
        p.add_argument("--record", default=None, help="append the result lines to this file")
        if name == "throughput":
            p.add_argument("--steps", type=int, default=30)
            p.add_argument("--warmup", type=int, default=5)
        else:
            p.add_argument("--out", required=True)
            p.add_argument("--target", type=float, default=0.95)
            p.add_argument("--every", type=int, default=500)
        if name == "ablate":
            p.add_argument(
                "--only",
                action="append",
                default=None,
                help=f"variants to run: {', '.join([*ABLATIONS, 'masked_passes'])}",
            )
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
