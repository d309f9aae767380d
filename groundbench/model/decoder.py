"""Cross-attention decoder: text tokens query visual tokens; its attention is the read-out.

:class:`CrossAttention` has two paths with the same parameters: a fused one
(``scaled_dot_product_attention``, no weights) and an explicit one that also returns the
softmax weights ``(B, H, T, N)``. The weights of every layer come out of the same forward
pass that computes the loss, so reading them never costs a second pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from groundbench.model.blocks import MLP, SelfAttention


class CrossAttention(nn.Module):
    """Multi-head attention from ``T`` queries to ``N`` keys/values."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        values: torch.Tensor | None = None,
        hidden: torch.Tensor | None = None,
        *,
        need_weights: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``x (B, T, D)`` to ``context (B, N, D)``.

        Keys come from ``context``; values from ``values (B, N, D)`` when given, else from
        ``context`` too. ``hidden (B, N)`` bool marks tokens that get no attention (masked
        patches): otherwise their identical mask tokens would let a query spell out a word by
        where it puts its mass, instead of by what it looks at.

        Returns:
            ``(B, T, D)`` output and, when ``need_weights``, the ``(B, H, T, N)`` attention
            probabilities (each row sums to 1 over ``N``); otherwise None (fused kernel).
        """
        B, T, D = x.shape
        N = context.shape[1]
        d = D // self.heads
        q = self.q(x).view(B, T, self.heads, d).transpose(1, 2)  # B H T d
        if values is None:
            k, v = self.kv(context).view(B, N, 2, self.heads, d).permute(2, 0, 3, 1, 4)  # B H N d
        else:
            w, b = self.kv.weight, self.kv.bias
            k = F.linear(context, w[:D], b[:D]).view(B, N, self.heads, d).transpose(1, 2)
            v = F.linear(values, w[D:], b[D:]).view(B, N, self.heads, d).transpose(1, 2)
        allowed = None if hidden is None else ~hidden[:, None, None, :]  # B 1 1 N
        if need_weights:
            logits = (q @ k.transpose(-2, -1)) / math.sqrt(d)  # B H T N
            if allowed is not None:
                logits = logits.masked_fill(~allowed, float("-inf"))
            weights = torch.softmax(logits, dim=-1)
            y = weights @ v  # B H T d
        else:
            weights = None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # B H T d
        return self.proj(y.transpose(1, 2).reshape(B, T, D)), weights


class DecoderLayer(nn.Module):
    """Text self-attention, then cross-attention to the image, then an MLP (pre-norm)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = SelfAttention(dim, heads)
        self.norm_q = nn.LayerNorm(dim)
        self.cross = CrossAttention(dim, heads)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(
        self,
        x: torch.Tensor,
        visual: torch.Tensor,
        text_pad: torch.Tensor,
        values: torch.Tensor | None = None,
        hidden: torch.Tensor | None = None,
        *,
        need_weights: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = x + self.self_attn(self.norm_self(x), text_pad)
        y, weights = self.cross(self.norm_q(x), visual, values, hidden, need_weights=need_weights)
        x = x + y
        return x + self.mlp(self.norm_mlp(x)), weights


class Decoder(nn.Module):
    """``L`` decoder layers; returns the text states and the stacked cross-attention."""

    def __init__(self, dim: int, heads: int, layers: int, mlp_ratio: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(dim, heads, mlp_ratio) for _ in range(layers))
        self.visual_norm = nn.LayerNorm(dim)
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        text: torch.Tensor,
        visual: torch.Tensor,
        text_pad: torch.Tensor,
        values: torch.Tensor | None = None,
        hidden: torch.Tensor | None = None,
        *,
        need_weights: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decode ``text (B, T, D)`` against ``visual (B, N, D)`` (keys; also values unless
        ``values (B, N, D)`` is given); ``hidden (B, N)`` visual tokens are not attended.

        Returns:
            ``(B, T, D)`` states and ``(B, L, H, T, N)`` attention (None when not
            ``need_weights``).
        """
        visual = self.visual_norm(visual)
        maps = []
        x = text
        for layer in self.layers:
            x, weights = layer(x, visual, text_pad, values, hidden, need_weights=need_weights)
            maps.append(weights)
        attention = torch.stack(maps, dim=1) if need_weights else None  # B L H T N
        return self.norm(x), attention
