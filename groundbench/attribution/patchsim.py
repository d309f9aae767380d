"""Raw patch–text similarity: the control that CLIP Surgery shows to be noisy."""

from __future__ import annotations

import torch


def patchsim(patch_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """Return the cosine of every patch embedding with its sample's text embedding.

    Args:
        patch_embeddings: ``(B, N, D)`` patch tokens in the joint embedding space.
        text_embeddings: ``(B, D)``.

    Returns:
        ``(B, N)`` cosine similarities in ``[-1, 1]``.

    Example:
        >>> patchsim(torch.tensor([[[1.0, 0.0], [0.0, 2.0]]]), torch.tensor([[0.0, 3.0]])).tolist()
        [[0.0, 1.0]]
    """
    p = torch.nn.functional.normalize(patch_embeddings, dim=-1)
    t = torch.nn.functional.normalize(text_embeddings, dim=-1)
    return torch.einsum("bnd,bd->bn", p, t)
