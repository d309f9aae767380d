"""Chefer et al.'s gradient-weighted attention relevance (generic attention explainability).

``R = I``; for each layer ``l >= start_layer``: ``Ā = mean_heads(clamp(∇A ⊙ A, 0))`` and
``R ← R + Ā · R``. For CLIP the image map is the [CLS] row without the [CLS] column,
``R[0, 1:]`` (``CLIP_explainability.ipynb``; its default since 2022-07 is the last layer
only). A tower without a [CLS] token (SigLIP) pools its tokens with an attention head; its
probe row plays the [CLS] row's part (:func:`pooled_relevance`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from groundbench.errors import MethodError


def _weighted(attention: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    return (gradient * attention).clamp(min=0).mean(1)  # B Q N


def relevance(
    attentions: Sequence[torch.Tensor],
    gradients: Sequence[torch.Tensor],
    *,
    start_layer: int = -1,
) -> torch.Tensor:
    """Return the relevance matrix ``R`` after the layers ``start_layer ..`` of a tower.

    Args:
        attentions: per layer, bottom first, ``(B, H, N, N)`` self-attention probabilities.
        gradients: per layer, the gradient of the target score w.r.t. that layer's attention.
        start_layer: first layer that contributes; negative counts from the end (``-1`` =
            the last layer only, Chefer's CLIP default; ``0`` = every layer).

    Returns:
        ``(B, N, N)`` relevance (rows: output tokens, columns: input tokens).

    Example:
        >>> a = torch.full((1, 1, 2, 2), 0.5)
        >>> relevance([a], [torch.ones_like(a)]).tolist()
        [[[1.5, 0.5], [0.5, 1.5]]]
    """
    if len(attentions) != len(gradients) or not attentions:
        raise MethodError(
            f"relevance: got {len(attentions)} attention and {len(gradients)} gradient layers"
        )
    L = len(attentions)
    start = start_layer + L if start_layer < 0 else start_layer
    if not 0 <= start < L:
        raise MethodError(f"relevance: start_layer {start_layer} is outside the tower's {L} layers")
    B, _, N, _ = attentions[0].shape
    R = torch.eye(N, dtype=attentions[0].dtype, device=attentions[0].device).expand(B, N, N)
    for a, g in zip(attentions[start:], gradients[start:], strict=True):
        R = R + torch.bmm(_weighted(a, g), R)
    return R


def pooled_relevance(
    pool_attention: torch.Tensor, pool_gradient: torch.Tensor, R: torch.Tensor
) -> torch.Tensor:
    """Return the relevance of the tokens to an attention-pooling head's output.

    Args:
        pool_attention: ``(B, H, 1, N)`` the pooling head's probe-query attention.
        pool_gradient: its gradient w.r.t. the target score.
        R: ``(B, N, N)`` the tower's relevance (:func:`relevance`).

    Returns:
        ``(B, N)``: ``mean_heads(clamp(∇A ⊙ A, 0)) · R`` for the probe row.
    """
    return torch.bmm(_weighted(pool_attention, pool_gradient), R)[:, 0]
