"""One training step's objective: draw the masks, run the model, weigh the losses."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from groundbench.model import losses
from groundbench.model.config import Config
from groundbench.model.masking import anneal, mask_patches, mask_words
from groundbench.model.text import MASK_ID, phrase_groups, word_class

LOSS_NAMES: tuple[str, ...] = (
    "word",
    "gate",
    "patch",
    "entropy",
    "head_consistency",
    "mask_consistency",
    "distractor",
    "contrast",
)


def word_tensors(words: Sequence[Sequence[str]], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(B, T)`` bool content-word flags and ``(B, T)`` long phrase-group indices."""
    content = torch.zeros(len(words), length, dtype=torch.bool)
    groups = torch.zeros(len(words), length, dtype=torch.long)
    for b, caption in enumerate(words):
        caption = list(caption[:length])
        content[b, : len(caption)] = torch.tensor(
            [word_class(w) == "content" for w in caption], dtype=torch.bool
        )
        groups[b, : len(caption)] = torch.tensor(phrase_groups(caption), dtype=torch.long)
    return content, groups


def draw_masks(
    batch: dict, cfg: Config, progress: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``(B, T)`` word and ``(B, N)`` patch masks for the configured strategy at ``progress``."""
    t, m = cfg.train, cfg.model
    B, T = batch["ids"].shape
    word_mask = torch.zeros(B, T, dtype=torch.bool)
    if t.masking in ("joint", "language"):
        word_mask = mask_words(
            batch["words"],
            T,
            rate=anneal(t.word_rate, progress, t.curriculum),
            class_weights=t.target_weights,
            group_prob=t.group_prob,
            generator=generator,
        )
    rate = anneal(t.patch_rate, progress, t.curriculum) if t.masking in ("joint", "visual") else 0.0
    return word_mask, mask_patches(B, m.grid * m.grid, rate=rate, generator=generator)


def compute_loss(
    model: torch.nn.Module,
    batch: dict,
    cfg: Config,
    *,
    progress: float,
    generator: torch.Generator,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Return the weighted total loss and each term's value (floats, for logging).

    Args:
        model: the (possibly DDP-wrapped) :class:`~groundbench.model.network.GroundingModel`.
        batch: a :func:`~groundbench.model.data.collate` batch.
        cfg: the run configuration (loss weights, masking).
        progress: fraction of training done, in [0, 1] (drives the curriculum).
        generator: mask randomness.
        device: where to compute.
        autocast_dtype: ``torch.bfloat16`` for mixed precision, None for fp32.
    """
    t = cfg.train
    word_mask, patch_mask = draw_masks(batch, cfg, progress, generator)
    content, groups = word_tensors(batch["words"], batch["ids"].shape[1])
    images = batch["images"].to(device, non_blocking=True)
    ids = batch["ids"].to(device)
    pad = batch["pad"].to(device)
    word_mask, patch_mask = word_mask.to(device), patch_mask.to(device)
    content, groups = content.to(device), groups.to(device)
    gate_select = word_mask | (content & ~pad) if t.gate_on_visible else word_mask

    def forward(p_mask: torch.Tensor, pixels: torch.Tensor = images):
        with torch.autocast(
            device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
        ):
            return model(
                pixels, ids.masked_fill(word_mask, MASK_ID), pad, p_mask, need_weights=True
            )

    out = forward(patch_mask)
    terms = {
        "word": losses.masked_word_loss(out.word_logits, ids, word_mask),
        "gate": losses.masked_word_loss(out.gate_logits, ids, gate_select),
        "patch": losses.masked_patch_loss(out.patch_pred, images, patch_mask, cfg.model.patch_size),
        "entropy": losses.attention_entropy(out.gated, gate_select),
        "head_consistency": losses.head_consistency(out.attention, gate_select),
        "distractor": losses.distractor_overlap(out.gated, gate_select & content, groups),
    }
    if t.loss_mask_consistency > 0:
        other = mask_patches(
            patch_mask.shape[0],
            patch_mask.shape[1],
            rate=float(patch_mask.float().mean()),
            generator=generator,
        ).to(device)
        terms["mask_consistency"] = losses.mask_consistency(
            out.gated, forward(other).gated, word_mask
        )
    else:
        terms["mask_consistency"] = out.gated.sum() * 0.0
    if t.loss_contrast > 0:
        # the batch's images shifted by one: each caption meets another caption's image
        other = forward(patch_mask, images.roll(1, dims=0))
        terms["contrast"] = losses.image_contrast(
            out.gate_logits, other.gate_logits, ids, gate_select
        )
    else:
        terms["contrast"] = out.gated.sum() * 0.0
    total = sum(getattr(t, f"loss_{name}") * terms[name] for name in LOSS_NAMES)
    logged = {name: float(v.detach()) for name, v in terms.items()}
    logged["loss"] = float(total.detach())
    return total, logged
