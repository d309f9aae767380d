"""Speed of every attribution recipe on base-size random-init checkpoints (samples/s).

Run (a markdown table on stdout, progress on stderr)::

    nice -n 10 python benchmarks/attribution_bench.py --samples 8 --rise-masks 500
    python benchmarks/attribution_bench.py --device cuda --dtype bfloat16 --samples 256 --rise-masks 8000

Two models are built with ``transformers``' default base sizes and random weights, saved
with ``save_pretrained`` (plus a word-piece tokenizer and a processor config) and loaded back
through ``hf:DIR:RECIPE`` exactly as a user's checkpoint is:

* ``clip-vit-b16``: ``CLIPModel``, ViT-B/16 at 224 px (12 + 12 layers, width 768 / 512);
* ``blip-itm-base``: ``BlipForImageTextRetrieval``, ViT-B/16 at 384 px + BERT-base fusion.

Each recipe predicts ``--samples`` (image, phrase) pairs, ``--phrases`` per image (images
are encoded once per batch for all their phrases), after one warm-up call on other pairs;
the table gives wall seconds and samples/s. ``rise`` uses ``--rise-masks`` masks per sample
(TorchRay's default 8000; the cost is linear in it) and ``occlusion`` one window per patch.
The machine's load average is printed so a shared machine's numbers can be read as such.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from groundbench.methods import resolve_method
from groundbench.types import GroundingSample

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[ENC]", "a", "the", "red", "blue", "green"]
WORDS += ["square", "circle", "triangle", "left", "of", "big", "small", "dog", "man", "shirt"]
PHRASES = ["the red square", "a big blue circle", "the man", "a small dog", "the green shirt"]
RECIPES = {
    "clip-vit-b16": ["relevance", "gradcam", "patchsim", "rise", "occlusion"],
    "blip-itm-base": ["itm-gradcam", "gradcam", "rise", "occlusion"],
}


def build(kind: str):
    """A base-size random-init model and its input side in pixels."""
    import transformers

    torch.manual_seed(0)
    if kind == "clip-vit-b16":
        cfg = transformers.CLIPConfig(
            text_config={"vocab_size": len(WORDS), "eos_token_id": 3, "bos_token_id": 2, "pad_token_id": 0},
            vision_config={"image_size": 224, "patch_size": 16},
        )
        return transformers.CLIPModel(cfg), 224
    cfg = transformers.BlipConfig(
        text_config={"vocab_size": len(WORDS), "bos_token_id": 2, "sep_token_id": 3, "pad_token_id": 0},
        vision_config={"image_size": 384, "patch_size": 16},
    )
    return transformers.BlipForImageTextRetrieval(cfg), 384


def save(kind: str, root: Path) -> Path:
    """save_pretrained the model, a word-piece tokenizer and a processor config."""
    import transformers

    model, size = build(kind)
    out = root / kind
    out.mkdir(parents=True)
    (out / "vocab.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    transformers.BertTokenizer(str(out / "vocab.txt")).save_pretrained(out)
    model.save_pretrained(out)
    proc = {
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"height": size, "width": size},
    }
    (out / "preprocessor_config.json").write_text(json.dumps(proc), encoding="utf-8")
    return out


def pairs(n: int, per_image: int, offset: int = 0):
    """``n`` (sample, image) pairs over random 480×640 images, ``per_image`` phrases each."""
    rng = np.random.default_rng(offset)
    samples, images, image = [], [], None
    for i in range(n):
        if i % per_image == 0:
            image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        phrase = PHRASES[i % len(PHRASES)]
        samples.append(
            GroundingSample(
                id=f"bench/{offset}/{i}",
                image_path=f"/bench/{offset}/{i // per_image}.png",
                width=640,
                height=480,
                text=phrase,
                phrase=phrase,
                span=(0, len(phrase)),
                boxes=np.array([[10.0, 10.0, 100.0, 100.0]]),
            )
        )
        images.append(image)
    return samples, images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=8, help="pairs timed per recipe")
    ap.add_argument("--phrases", type=int, default=4, help="phrases per image")
    ap.add_argument("--rise-masks", type=int, default=500, help="RISE masks per sample")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                    help="the hf: dtype knob (autocast compute dtype)")
    ap.add_argument("--models", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; torch threads {torch.get_num_threads()}; device {device}; dtype {args.dtype}", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.models:
            path = save(kind, Path(tmp))
            for recipe in RECIPES[kind]:
                knobs = [f"dtype={args.dtype}"] + ([f"num_masks={args.rise_masks}"] if recipe == "rise" else [])
                spec = f"hf:{path}:{recipe}?" + "&".join(knobs)
                method = resolve_method(spec)
                warm = pairs(min(2, args.samples), args.phrases, offset=1)
                method.predict(*warm, device=device)
                samples, images = pairs(args.samples, args.phrases)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                tic = time.perf_counter()
                method.predict(samples, images, device=device)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - tic
                label = recipe + (f" ({args.rise_masks} masks)" if recipe == "rise" else "")
                rows.append((kind, label, args.samples, seconds, args.samples / seconds))
                print(f"{kind} {label}: {args.samples / seconds:.3f} samples/s", file=sys.stderr)
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", file=sys.stderr)
    print("| model | recipe | samples | wall s | samples/s |")
    print("|---|---|---:|---:|---:|")
    for kind, label, n, seconds, rate in rows:
        print(f"| {kind} | {label} | {n} | {seconds:.1f} | {rate:.3f} |")


if __name__ == "__main__":
    main()
