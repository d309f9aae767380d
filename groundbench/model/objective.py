"""One training step's objective: reconstruct each hidden word through the grounding attention.

``word`` is the cross-entropy of the hidden word, over the real (non-padding) pairs (0 for a
batch without any: nothing to learn, and no NaN). Two
optional terms exist for ablations (``docs/model.md`` has their measurements):
``entropy`` (attention sparsity with a positive weight, an entropy bonus that spreads the
attention over the object with a negative one) and ``contrast`` (the hidden word must be less likely
through the same query on another image: ``softplus(log p_other − log p_own)``).
Under ``model.mask: sigmoid`` three extent terms are computed (and weighted by
``loss_foreground``, ``loss_background``, ``loss_area``): the hidden word's cross-entropy from
the mask's foreground value, ``−log(1 − p)`` of its probability from the background value
(the rest of the image must not tell the word), and the mask's mean (its area, as a fraction
of the tokens). ``consistency`` is the Jensen–Shannon divergence among the attention maps of
one phrase's pairs (the mean over pairs of ``KL(a_i ‖ ā)``, ``ā`` their mean map; pairs of a
phrase with one known word take no part), and ``patch`` the hidden visual tokens'
reconstruction error under patch masking (``train.patch_mask``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from groundbench.model.config import Config

if TYPE_CHECKING:
    from groundbench.model.data import TrainingData


def compute_loss(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    cfg: Config,
    *,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Return the weighted loss and its detached parts (``word``, optional ``entropy``,
    ``contrast``, ``foreground``, ``background``, ``area``, the ``loss`` itself and
    ``pairs``, the count of real pairs).

    Args:
        model: a :class:`~groundbench.model.network.GroundingModel` (or its DDP wrapper).
        batch: :meth:`~groundbench.model.data.TrainingData.batch` output, on the model's
            device, or cached backbone tokens as ``features`` with the pairs.
        cfg: the run configuration (loss weights).
        autocast_dtype: bf16 autocast dtype, or None for full precision.
    """
    t = cfg.train
    images = batch["images"] if "images" in batch else batch["features"]  # pixels or tokens
    masking = (
        {"masked": (batch["masked_images"], batch["hidden"]), "joint": t.patch_mask_joint}
        if "masked_images" in batch
        else {}
    )
    ctx = (
        torch.autocast(images.device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    with ctx:
        out = model(
            images,
            batch["query"],
            batch["target"],
            batch["partner"],
            batch["relation"],
            contrast=t.loss_contrast > 0,
            **masking,
        )
    target = batch["target"]
    real = target > 0  # B Q
    pairs = real.sum()
    log_p = out.word_logits.float().log_softmax(-1).gather(-1, target[..., None])[..., 0]  # B Q

    def mean_over_real(x: torch.Tensor) -> torch.Tensor:  # no host sync, 0 without a pair
        return torch.where(real, x, 0.0).sum() / pairs.clamp_min(1)

    word = -mean_over_real(log_p)
    loss, parts = t.loss_word * word, {"word": word.detach()}
    if out.mask is not None:
        log_f = out.foreground_logits.float().log_softmax(-1).gather(-1, target[..., None])[..., 0]
        foreground = -mean_over_real(log_f)
        p_b = out.background_logits.float().softmax(-1).gather(-1, target[..., None])[..., 0]
        background = mean_over_real(-torch.log1p(-p_b.clamp(max=1 - 1e-6)))
        area = mean_over_real(out.mask.mean((-1, -2)))
        loss = loss + (
            t.loss_foreground * foreground + t.loss_background * background + t.loss_area * area
        )
        parts.update(
            foreground=foreground.detach(), background=background.detach(), area=area.detach()
        )
    if t.loss_entropy != 0:
        att = out.attention.float().clamp_min(1e-12)
        entropy = mean_over_real(-(att * att.log()).sum(-1).mean(-1))  # nats
        loss = loss + t.loss_entropy * entropy
        parts["entropy"] = entropy.detach()
    if t.loss_consistency > 0:
        consistency = _consistency(out.attention.float(), batch["group"], real)
        loss = loss + t.loss_consistency * consistency
        parts["consistency"] = consistency.detach()
    if out.patch_error is not None:
        loss = loss + t.loss_patch * out.patch_error
        parts["patch"] = out.patch_error.detach()
    if out.contrast_logits is not None:
        log_q = out.contrast_logits.float().log_softmax(-1).gather(-1, target[..., None])[..., 0]
        contrast = mean_over_real(F.softplus(log_q - log_p))
        loss = loss + t.loss_contrast * contrast
        parts["contrast"] = contrast.detach()
    parts["loss"] = loss.detach()
    parts["pairs"] = pairs.detach()
    return loss, parts


def _consistency(attention: torch.Tensor, group: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean over the pairs that share their phrase with another pair of ``KL(a_i ‖ ā_g)``,
    ``a_i`` a pair's attention ``(B, Q, H, N)`` and ``ā_g`` the mean over its phrase's pairs
    (0 when no phrase has two pairs)."""
    same = (group[:, :, None] == group[:, None, :]) & real[:, :, None] & real[:, None, :]
    size = same.sum(-1)  # B Q
    weights = same.float() / size.clamp_min(1)[..., None]
    mean = torch.einsum("bqk,bkhn->bqhn", weights, attention)
    att = attention.clamp_min(1e-12)
    kl = (att * (att.log() - mean.clamp_min(1e-12).log())).sum(-1).mean(-1)  # B Q
    shared = real & (size >= 2)
    return torch.where(shared, kl, 0.0).sum() / shared.sum().clamp_min(1)


def chance_loss(data: TrainingData, cfg: Config) -> float:
    """The word loss of guessing uniformly among a target's candidates (nats), averaged over
    the training pairs: ``mean ln(#candidates)``; the head's candidates are the words of the
    target's type (``typed``) or every word but ``<unk>`` (``vocabulary``)."""
    target = data.target[data.target > 0].long().cpu()
    if target.numel() == 0:
        return float("nan")
    types = torch.as_tensor(data.vocab.types)
    if cfg.model.head == "typed":
        per_type = torch.bincount(types[1:], minlength=int(types.max()) + 1)
        candidates = per_type[types[target]]
    else:
        candidates = torch.full_like(target, len(types) - 1)
    return float(candidates.double().log().mean())
