"""A learned layer × head gate that picks the attention heads that ground.

The gate is a softmax over all ``L · H`` cells. It is trained through a read-out that can
only succeed when the weighted attention points at the named object: the masked word is
predicted from visual features pooled with the gated attention map alone.
"""

from __future__ import annotations

import torch
from torch import nn


class HeadGate(nn.Module):
    """Softmax weights over the decoder's ``(L, H)`` cross-attention heads."""

    def __init__(self, layers: int, heads: int, dim: int, vocab_size: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(layers, heads))
        self.value = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)

    def weights(self) -> torch.Tensor:
        """Return the ``(L, H)`` non-negative gate weights, summing to 1."""
        return torch.softmax(self.logits.flatten(), dim=0).view_as(self.logits)

    def combine(self, attention: torch.Tensor) -> torch.Tensor:
        """Mix ``(B, L, H, T, N)`` attention into ``(B, T, N)`` with the gate weights."""
        return torch.einsum("blhtn,lh->btn", attention, self.weights().to(attention.dtype))

    def forward(
        self, attention: torch.Tensor, visual: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict words from gated attention over ``visual (B, N, D)``.

        Returns:
            ``(B, T, V)`` word logits and the ``(B, T, N)`` gated attention used.
        """
        gated = self.combine(attention)  # B T N
        pooled = gated @ self.value(visual)  # B T D
        return self.head(self.norm(pooled)), gated
