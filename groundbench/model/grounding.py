"""The grounding attention: one softmax over the visual tokens, queried by words only.

A query is the sum of its words' embeddings plus a learned bias: the image never reaches
it, and in training the hidden word never does either. Keys are ``W_k f`` and values
``LN(W_v f)`` of the local tokens ``f``. A relation word ``r`` moves attention through a
learned displacement kernel ``K_r`` (``(2h - 1) × (2w - 1)``): the target's logits get
``b_i = g · Σ_j A_j K_r[pos_i − pos_j]`` from the landmark's attention ``A``, and the
landmark's logits the inverse (``Σ_i A_i K_r[pos_i − pos_j]``) from the target's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from groundbench.model.config import ModelConfig
from groundbench.model.language import RELATION_WORDS

NO_RELATION = -1


def relation_code(word: str, *, inverse: bool) -> int:
    """Return the relation code of ``word``: its index, plus ``len(RELATION_WORDS)`` if inverse."""
    return RELATION_WORDS.index(word) + (len(RELATION_WORDS) if inverse else 0)


def displacement_index(grid: int) -> torch.Tensor:
    """Return ``(N, N)`` long: entry ``[i, j]`` indexes ``pos_i − pos_j`` in a flattened kernel.

    Example:
        >>> displacement_index(2).tolist()
        [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    """
    r = torch.arange(grid)
    y, x = torch.meshgrid(r, r, indexing="ij")
    y, x = y.flatten(), x.flatten()
    side = 2 * grid - 1
    return (y[:, None] - y[None, :] + grid - 1) * side + (x[:, None] - x[None, :] + grid - 1)


class GroundingAttention(nn.Module):
    """Word queries, token keys and values, relation kernels.

    Args:
        cfg: the model configuration.
        vocab_size: word ids (0 = unknown, a zero embedding).
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.embed = nn.Embedding(vocab_size, cfg.dim, padding_idx=0)
        nn.init.normal_(self.embed.weight, std=1.0 / math.sqrt(cfg.dim))
        with torch.no_grad():
            self.embed.weight[0].zero_()
        self.query_bias = nn.Parameter(torch.zeros(cfg.dim))
        self.key = nn.Linear(cfg.width, cfg.dim)
        self.value = nn.Linear(cfg.width, cfg.value_dim)
        self.value_norm = nn.LayerNorm(cfg.value_dim)
        self.relations = cfg.relations
        if cfg.relations:
            side = 2 * cfg.grid - 1
            self.kernels = nn.Parameter(torch.zeros(len(RELATION_WORDS), side, side))
            self.kernel_gain = nn.Parameter(torch.tensor(5.0))
            self.register_buffer("offsets", displacement_index(cfg.grid), persistent=False)

    def keys_values(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(B, N, C)`` → keys ``(B, N, H, dim/H)`` and values ``(B, N, H, value_dim/H)``."""
        B, N, _ = tokens.shape
        k = self.key(tokens).view(B, N, self.heads, -1)  # B N H d
        v = self.value_norm(self.value(tokens)).view(B, N, self.heads, -1)  # B N H e
        return k, v

    def query(self, words: torch.Tensor) -> torch.Tensor:
        """Word ids ``(..., P)`` (0 = none) → queries ``(..., dim)``: the sum of embeddings + bias."""
        return self.embed(words).sum(-2) + self.query_bias

    def logits(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Queries ``(B, Q, dim)`` against keys ``(B, N, H, d)`` → logits ``(B, Q, H, N)``."""
        B, Q, _ = query.shape
        q = query.view(B, Q, self.heads, -1)  # B Q H d
        return torch.einsum("bqhd,bnhd->bqhn", q, keys) / math.sqrt(q.shape[-1])

    def relation_bias(self, partner: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The logit bias that a partner's attention ``(M, N)`` gives through relation ``codes (M,)``.

        Codes below ``len(RELATION_WORDS)`` map a landmark's attention onto its target; the
        others apply the inverse kernel (target → landmark); :data:`NO_RELATION` gives 0.
        Rows are grouped by code (one host sync for the group sizes) so each group is one
        ``(M_r, N) @ (N, N)`` product.
        """
        out = torch.zeros_like(partner)
        if not self.relations:
            return out
        R = len(RELATION_WORDS)
        shift = self.kernels.view(R, -1)[:, self.offsets]  # R N N
        order = torch.argsort(codes)
        sizes = torch.bincount(codes + 1, minlength=2 * R + 1).tolist()
        start = sizes[0]  # NO_RELATION rows sort first
        for code, size in enumerate(sizes[1:]):
            if size == 0:
                continue
            rows = order[start : start + size]
            m = shift[code % R]
            a = partner.index_select(0, rows)
            out.index_copy_(0, rows, a @ (m if code >= R else m.T))
            start += size
        return self.kernel_gain * out

    def attend(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend once; return attention ``(B, Q, H, N)`` and the pooled value ``(B, Q, value_dim)``.

        Args:
            query: ``(B, Q, dim)``.
            keys: ``(B, N, H, d)``.
            values: ``(B, N, H, e)``.
            bias: optional ``(B, Q, N)`` logit bias shared by the heads.
        """
        logits = self.logits(query, keys)
        if bias is not None:
            logits = logits + bias[:, :, None, :]
        return self.pool(logits, values)

    def pool(self, logits: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, Q, H, N)`` → the softmax attention and its pooled value ``(B, Q, value_dim)``."""
        attention = logits.float().softmax(-1).to(values.dtype)  # B Q H N
        pooled = torch.einsum("bqhn,bnhe->bqhe", attention, values)
        return attention, pooled.flatten(2)
