"""The grounding model: local visual tokens, one word-queried attention, a reconstruction head.

The attention that reconstructs a hidden word is the attention that points, and it is the
only road from the image to the loss: the head sees nothing but the attention-pooled value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from groundbench.model.config import ModelConfig
from groundbench.model.grounding import GroundingAttention
from groundbench.model.vision import TokenEncoder


@dataclass(frozen=True)
class PairOutput:
    """What the model computes for a step's (phrase, hidden word) pairs.

    Attributes:
        word_logits: ``(B, Q, V)`` logits of the hidden word; words outside its type are
            ``-inf`` under the ``typed`` head.
        attention: ``(B, Q, H, N)`` the grounding attention of each pair.
        contrast_logits: ``(B, Q, V)`` logits through the same queries on another image of the
            batch, or None.
    """

    word_logits: torch.Tensor
    attention: torch.Tensor
    contrast_logits: torch.Tensor | None = None


class GroundingModel(nn.Module):
    """Visual tokens → grounding attention → hidden-word prediction.

    Args:
        cfg: architecture.
        word_types: the learned type of each word id (``Vocabulary.types``).
    """

    def __init__(self, cfg: ModelConfig, word_types: Sequence[int]) -> None:
        super().__init__()
        self.cfg = cfg
        V = len(word_types)
        self.encoder = TokenEncoder(cfg)
        self.grounding = GroundingAttention(cfg, V)
        self.head = nn.Sequential(
            nn.LayerNorm(cfg.value_dim),
            nn.Linear(cfg.value_dim, cfg.value_dim),
            nn.GELU(),
            nn.Linear(cfg.value_dim, V),
        )
        self.register_buffer(
            "word_types", torch.as_tensor(list(word_types), dtype=torch.long), persistent=False
        )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``(B, 3, S, S)`` in ``[0, 1]`` → keys ``(B, N, H, d)`` and values ``(B, N, H, e)``."""
        return self.grounding.keys_values(self.encoder(images))

    def ground(
        self,
        keys: torch.Tensor,
        values: torch.Tensor,
        query: torch.Tensor,
        partner: torch.Tensor,
        relation: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend with word queries, a relation partner's attention shifting the logits.

        Args:
            keys, values: from :meth:`encode`.
            query: ``(B, Q, P)`` word ids of each query (0 = none).
            partner: ``(B, Q, P)`` word ids of the related phrase (all 0 without one).
            relation: ``(B, Q)`` relation codes (``NO_RELATION`` = none).

        Returns:
            attention ``(B, Q, H, N)`` and pooled values ``(B, Q, value_dim)``.
        """
        g = self.grounding
        bias = None
        if self.cfg.relations:
            B, Q = relation.shape
            partner_attention, _ = g.attend(g.query(partner), keys, values)  # B Q H N
            bias = g.relation_bias(
                partner_attention.mean(2).flatten(0, 1), relation.flatten()
            ).view(B, Q, -1)  # B Q N
        return g.attend(g.query(query), keys, values, bias)

    def predict(self, pooled: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Pooled values ``(B, Q, e)`` → hidden-word logits ``(B, Q, V)``, restricted to the
        target's type under the ``typed`` head (``<unk>`` is never a candidate)."""
        logits = self.head(pooled).float()
        excluded = torch.zeros_like(self.word_types, dtype=torch.bool)
        excluded[0] = True
        if self.cfg.head == "typed":
            excluded = self.word_types != self.word_types[target][..., None]  # B Q V
            excluded = excluded | (torch.arange(len(self.word_types), device=target.device) == 0)
        # padding pairs (target 0) keep finite logits, so no NaN reaches the gradient
        return logits.masked_fill(excluded & (target > 0)[..., None], float("-inf"))

    def forward(
        self,
        images: torch.Tensor,
        query: torch.Tensor,
        target: torch.Tensor,
        partner: torch.Tensor,
        relation: torch.Tensor,
        *,
        contrast: bool = False,
    ) -> PairOutput:
        """Predict each pair's hidden word ``target (B, Q)`` from ``images (B, 3, S, S)``."""
        keys, values = self.encode(images)
        attention, pooled = self.ground(keys, values, query, partner, relation)
        word_logits = self.predict(pooled, target)
        contrast_logits = None
        if contrast:
            other = (keys.roll(1, 0), values.roll(1, 0))  # each query on the next image
            _, pooled_other = self.grounding.attend(self.grounding.query(query), *other)
            contrast_logits = self.predict(pooled_other, target)
        return PairOutput(word_logits, attention, contrast_logits)
