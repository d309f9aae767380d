"""Reconstruct hidden visual tokens from the visible ones (``train.patch_mask``).

A masked view of each image goes through the token encoder; this decoder sees its tokens,
a learned marker on the hidden ones and learned positions, and predicts, at each hidden
token, the unmasked view's token there. The grounding attention never reads its output:
it only shapes the encoder (``docs/model.md``, *Ablations*).
"""

from __future__ import annotations

import torch
from torch import nn


class PatchDecoder(nn.Module):
    """Tokens ``(B, N, width)`` of a masked view and ``(B, N)`` hidden flags → predicted
    tokens ``(B, N, width)`` (read at the hidden ones).

    Args:
        width: token channels.
        grid: tokens per side (``N = grid²``).
        layers: self-attention layers.
    """

    def __init__(self, width: int, grid: int, layers: int) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, grid * grid, width))
        self.marker = nn.Parameter(torch.zeros(width))
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.marker, std=0.02)
        heads = 4 if width % 4 == 0 else 1
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                width, heads, 2 * width, dropout=0.0, batch_first=True, norm_first=True
            )
            for _ in range(layers)
        )
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width))

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        x = tokens + self.pos + hidden[..., None].to(tokens.dtype) * self.marker
        for block in self.blocks:
            x = block(x)
        return self.out(x)


def patch_loss(predicted: torch.Tensor, target: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Mean squared error at the hidden tokens between ``predicted`` and the layer-normalised
    ``target`` tokens ``(B, N, C)`` (no gradient through the target), per channel."""
    goal = nn.functional.layer_norm(target.detach().float(), target.shape[-1:])
    err = (predicted.float() - goal).pow(2).mean(-1)  # B N
    return (err * hidden).sum() / hidden.sum().clamp_min(1)
