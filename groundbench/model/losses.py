"""Training losses: reconstruction (words, patches) and auxiliary attention losses.

Every function is pure and batched. ``select (B, T)`` bool marks the word positions a loss
is taken over; attention maps are probabilities over the ``N`` visual tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from groundbench.model.vision import normalise_patches, patchify


def masked_word_loss(
    logits: torch.Tensor, targets: torch.Tensor, select: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of ``logits (B, T, V)`` against ``targets (B, T)`` over ``select`` positions.

    Returns 0 (with a gradient path) when nothing is selected.

    Example:
        >>> logits = torch.tensor([[[0.0, 10.0]]])
        >>> round(float(masked_word_loss(logits, torch.tensor([[1]]), torch.tensor([[True]]))), 4)
        0.0
    """
    if not bool(select.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[select].float(), targets[select])


def masked_patch_loss(
    pred: torch.Tensor, images: torch.Tensor, patch_mask: torch.Tensor, patch: int
) -> torch.Tensor:
    """MSE between predicted and per-patch standardised pixels on hidden patches.

    Args:
        pred: ``(B, N, C)`` predictions.
        images: ``(B, 3, height, width)`` pixels in [0, 1].
        patch_mask: ``(B, N)`` bool, True on hidden patches.
        patch: patch side in pixels.
    """
    if not bool(patch_mask.any()):
        return pred.sum() * 0.0
    target = normalise_patches(patchify(images, patch))  # B N C
    return F.mse_loss(pred[patch_mask].float(), target[patch_mask].float())


def attention_entropy(maps: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
    """Mean entropy of ``maps (B, T, N)`` over ``select``, divided by ``log N`` (0 = one-hot, 1 = uniform).

    Example:
        >>> uniform = torch.full((1, 1, 4), 0.25)
        >>> round(float(attention_entropy(uniform, torch.tensor([[True]]))), 4)
        1.0
    """
    if not bool(select.any()):
        return maps.sum() * 0.0
    p = maps[select].float()  # S N
    ent = -(p * p.clamp_min(1e-12).log()).sum(-1)
    return ent.mean() / math.log(maps.shape[-1])


def head_consistency(attention: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
    """Mean total-variation distance between each head's map and the heads' mean map.

    Args:
        attention: ``(B, L, H, T, N)`` attention.
        select: ``(B, T)`` positions.

    Returns:
        Scalar in [0, 1]; 0 when every head of a layer draws the same map.
    """
    if not bool(select.any()):
        return attention.sum() * 0.0
    a = attention.permute(0, 3, 1, 2, 4)[select].float()  # S L H N
    return 0.5 * (a - a.mean(dim=2, keepdim=True)).abs().sum(-1).mean()


def mask_consistency(
    maps_a: torch.Tensor, maps_b: torch.Tensor, select: torch.Tensor
) -> torch.Tensor:
    """Symmetric KL divergence between two maskings' maps ``(B, T, N)`` over ``select``."""
    if not bool(select.any()):
        return maps_a.sum() * 0.0
    p = maps_a[select].float().clamp_min(1e-8)
    q = maps_b[select].float().clamp_min(1e-8)
    return 0.5 * ((p * (p / q).log()).sum(-1) + (q * (q / p).log()).sum(-1)).mean()


def distractor_overlap(
    maps: torch.Tensor, select: torch.Tensor, groups: torch.Tensor
) -> torch.Tensor:
    """Mean attention overlap ``Σ_n min(a_i, a_j)`` between selected words of different phrases.

    Words of different noun phrases of one caption name different objects, so the mass one
    puts on the other's object is mass on a distractor.

    Args:
        maps: ``(B, T, N)`` attention.
        select: ``(B, T)`` positions taking part.
        groups: ``(B, T)`` long phrase index per word.

    Returns:
        Scalar in [0, 1]; 0 when no caption has selected words in two phrases.

    Example:
        >>> maps = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
        >>> float(distractor_overlap(maps, torch.tensor([[True, True]]), torch.tensor([[0, 1]])))
        0.5
    """
    pairs = (
        select[:, :, None] & select[:, None, :] & (groups[:, :, None] != groups[:, None, :])
    )  # B T T
    if not bool(pairs.any()):
        return maps.sum() * 0.0
    m = maps.float()
    overlap = torch.minimum(m[:, :, None, :], m[:, None, :, :]).sum(-1)  # B T T
    return overlap[pairs].mean()


def image_contrast(
    own: torch.Tensor, other: torch.Tensor, targets: torch.Tensor, select: torch.Tensor
) -> torch.Tensor:
    """Mean ``softplus(s_other - s_own)`` of the target word's logit over ``select`` positions.

    ``own`` and ``other`` are ``(B, T, V)`` read-out logits of the same captions on their own
    images and on other images. Returns 0 (with a gradient path) when nothing is selected.

    Example:
        >>> own = torch.tensor([[[0.0, 9.0]]]); other = torch.tensor([[[0.0, -9.0]]])
        >>> round(float(image_contrast(own, other, torch.tensor([[1]]), torch.tensor([[True]]))), 4)
        0.0
    """
    if not bool(select.any()):
        return own.sum() * 0.0
    idx = targets[select][:, None]
    s_own = own[select].float().gather(1, idx)
    s_other = other[select].float().gather(1, idx)
    return F.softplus(s_other - s_own).mean()
