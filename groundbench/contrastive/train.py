"""Contrastive training of the small CLIP on captions: in-batch negatives, AdamW, cosine decay.

Each step takes ``batch_size`` images from a seeded per-epoch permutation and one of each
image's captions (seeded by step), and minimises ``CLIPModel``'s symmetric cross-entropy
over the batch's image–caption similarity matrix. Images go through the saved image
processor once, before training, so training sees exactly what evaluation will. The run
directory is a ``save_pretrained`` directory (``config.json``, ``model.safetensors``,
tokenizer and processor files) plus ``training.json`` (settings, data fingerprint, timing),
``log.csv`` and ``loss.png``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from groundbench.contrastive.config import ClipTrainConfig
from groundbench.contrastive.tokenizer import BOS_ID, EOS_ID, PAD_ID, build_tokenizer
from groundbench.errors import DataFormatError, GroundbenchError
from groundbench.model.data import captions_fingerprint
from groundbench.model.runlog import ScalarLog, plot_loss_curve
from groundbench.model.train import lr_factor, step_images
from groundbench.progress import progress_bar
from groundbench.types import CaptionRecord

TRAINING_NAME = "training.json"
LOG_EVERY = 10


@dataclass(frozen=True)
class ClipTrainResult:
    """Where the model went and how training went (``seconds``: optimiser steps only)."""

    out_dir: Path
    steps: int
    first_loss: float
    final_loss: float
    seconds: float
    threads: int


def require_transformers():
    """Import ``transformers`` or say how to install it.

    Raises:
        GroundbenchError: the ``vlm`` extra is not installed.
    """
    try:
        import transformers
    except ImportError:
        raise GroundbenchError(
            "the contrastive baseline needs transformers and tokenizers: "
            "pip install 'groundbench[vlm]'"
        ) from None
    return transformers


def build_model(config: ClipTrainConfig, vocab_size: int):
    """Return a randomly initialised ``CLIPModel`` of ``config``'s size (seeded by ``config.seed``)."""
    from transformers import CLIPConfig, CLIPModel

    w = config.width
    tower = {
        "hidden_size": w,
        "intermediate_size": 4 * w,
        "num_hidden_layers": config.layers,
        "num_attention_heads": config.heads,
    }
    cfg = CLIPConfig(
        text_config={
            **tower,
            "vocab_size": vocab_size,
            "max_position_embeddings": config.max_text_tokens,
            "pad_token_id": PAD_ID,
            "bos_token_id": BOS_ID,
            "eos_token_id": EOS_ID,
        },
        vision_config={**tower, "image_size": config.image_size, "patch_size": config.patch_size},
        projection_dim=w,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return CLIPModel(cfg)


def build_processor(config: ClipTrainConfig, texts: Sequence[str]):
    """Return a ``CLIPProcessor``: the captions' word-level tokenizer + a square-resize image processor."""
    from transformers import CLIPImageProcessor, CLIPProcessor

    side = config.image_size
    images = CLIPImageProcessor(size={"height": side, "width": side}, do_center_crop=False)
    tokenizer = build_tokenizer(texts, max_tokens=config.max_text_tokens)
    return CLIPProcessor(image_processor=images, tokenizer=tokenizer)


def _check_records(records: Sequence[CaptionRecord], config: ClipTrainConfig) -> None:
    for r in records:
        if type(r) is not CaptionRecord:
            raise DataFormatError(
                f"contrastive training takes CaptionRecords (image + caption, no boxes), got "
                f"{type(r).__name__} for {getattr(r, 'id', '?')!r}; load it with "
                "adapter.load_captions(split)"
            )
    if len({r.image_path for r in records}) < config.batch_size:
        raise DataFormatError(
            f"{len({r.image_path for r in records})} training images are too few for "
            f"batch_size {config.batch_size}; lower it with --set batch_size=N"
        )


def encode_data(records: Sequence[CaptionRecord], processor, config, *, progress=True):
    """Return ``pixels (I, 3, S, S)`` float32, ``ids (C, T)``, ``mask (C, T)`` and ``owner (C,)``.

    ``owner[c]`` is the image index of caption ``c``. Images are processed once, in order of
    first appearance.

    Raises:
        DataFormatError: a caption longer than ``max_text_tokens`` tokens.
    """
    index: dict[str, int] = {}
    owner = [index.setdefault(r.image_path, len(index)) for r in records]
    first = {}
    for r in records:
        first.setdefault(r.image_path, r)
    pixels = []
    chunk = list(first.values())
    for k in progress_bar(
        range(0, len(chunk), 256),
        desc="process images",
        unit="chunk",
        disable=not progress,
        leave=False,
    ):
        batch = [r.load_image() for r in chunk[k : k + 256]]
        pixels.append(processor.image_processor(images=batch, return_tensors="pt")["pixel_values"])
    tok = processor.tokenizer([r.text for r in records], padding="longest", return_tensors="pt")
    lengths = tok["attention_mask"].sum(1)
    if int(lengths.max()) > config.max_text_tokens:
        c = int(lengths.argmax())
        raise DataFormatError(
            f"caption {records[c].id!r} has {int(lengths[c])} tokens, more than max_text_tokens="
            f"{config.max_text_tokens}; raise it with --set max_text_tokens=N"
        )
    return torch.cat(pixels), tok["input_ids"], tok["attention_mask"], torch.tensor(owner)


def _optimizer(model: torch.nn.Module, config: ClipTrainConfig) -> torch.optim.AdamW:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), eps=1e-6)


def pick_captions(owner: torch.Tensor, images: torch.Tensor, seed: int, step: int) -> torch.Tensor:
    """Return one caption index per image in ``images``, drawn uniformly (seeded by step).

    Example:
        >>> pick_captions(torch.tensor([0, 0, 1]), torch.tensor([1, 0]), 0, 0)[0].item()
        2
    """
    g = np.random.default_rng([seed, step])
    by_image = [np.flatnonzero(owner.numpy() == i) for i in images.tolist()]
    return torch.tensor([int(c[g.integers(len(c))]) for c in by_image])


def train_clip(
    records: Sequence[CaptionRecord],
    out_dir: str | Path,
    config: ClipTrainConfig | None = None,
    *,
    device: str = "cpu",
    progress: bool = True,
) -> ClipTrainResult:
    """Train the small CLIP on ``records`` and write it to ``out_dir`` (``save_pretrained`` layout).

    Raises:
        GroundbenchError: ``transformers`` is not installed.
        DataFormatError: records that are not captions, too few images, or an over-long caption.
    """
    require_transformers()
    config = ClipTrainConfig() if config is None else config
    config.check()
    records = list(records)
    _check_records(records, config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    processor = build_processor(config, [r.text for r in records])
    pixels, ids, mask, owner = encode_data(records, processor, config, progress=progress)
    dev = torch.device(device)
    model = build_model(config, len(processor.tokenizer)).to(dev)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, config.steps, config.warmup_steps, 0.0)
    )
    scalar_log = ScalarLog(out)
    by_owner = owner.clone()
    model.train()
    losses: list[float] = []
    tic = time.perf_counter()
    for step in progress_bar(
        range(config.steps), desc="train clip", unit="step", disable=not progress
    ):
        images = step_images(step, pixels.shape[0], config.batch_size, 0, 1, config.seed)
        caps = pick_captions(by_owner, images, config.seed, step)
        width = int(mask[caps].sum(1).max())
        loss = model(
            input_ids=ids[caps, :width].to(dev),
            attention_mask=mask[caps, :width].to(dev),
            pixel_values=pixels[images].to(dev),
            return_loss=True,
        ).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        losses.append(float(loss.detach()))
        if (step + 1) % LOG_EVERY == 0 or step + 1 == config.steps:
            window = losses[-LOG_EVERY:]
            scalar_log.write(
                {
                    "step": step + 1,
                    "lr": scheduler.get_last_lr()[0],
                    "loss": sum(window) / len(window),
                }
            )
    seconds = time.perf_counter() - tic
    scalar_log.close()
    plot_loss_curve(scalar_log.path, out / "loss.png")
    model.eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    processor.image_processor.save_pretrained(out)  # preprocessor_config.json, read on its own
    result = ClipTrainResult(
        out, config.steps, losses[0], losses[-1], seconds, torch.get_num_threads()
    )
    _write_training(out, config, records, result)
    return result


def _write_training(out: Path, config, records, result: ClipTrainResult) -> None:
    info = {
        "config": config.to_dict(),
        "data_fingerprint": captions_fingerprint(records),
        "captions": len(records),
        "steps": result.steps,
        "first_loss": result.first_loss,
        "final_loss": result.final_loss,
        "seconds": round(result.seconds, 1),
        "threads": result.threads,
    }
    tmp = out / f".{TRAINING_NAME}.tmp"
    tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / TRAINING_NAME)


def read_training(out_dir: str | Path) -> dict | None:
    """Return the ``training.json`` of a finished run, or None when there is none (or unreadable)."""
    try:
        return json.loads((Path(out_dir) / TRAINING_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
