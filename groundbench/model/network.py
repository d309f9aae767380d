"""The grounding model: local visual tokens, one word-queried attention, a reconstruction head.

The attention that reconstructs a hidden word is the attention that points, and it is the
only road from the image to the loss: the head sees nothing but the attention-pooled value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from groundbench.model.backbone import BACKBONE_PREFIX, Backbone, BackboneEncoder, load_backbone
from groundbench.model.config import ModelConfig
from groundbench.model.grounding import GroundingAttention
from groundbench.model.patch_decoder import PatchDecoder, patch_loss
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
        mask: ``(B, Q, H, N)`` the sigmoid mask of each pair (``model.mask: sigmoid``), or None.
        foreground_logits, background_logits: ``(B, Q, V)`` the hidden word's logits from the
            mask's foreground and background values, or None.
        patch_error: the hidden tokens' reconstruction error
            (:func:`~groundbench.model.patch_decoder.patch_loss`) under patch masking, or None.
    """

    word_logits: torch.Tensor
    attention: torch.Tensor
    contrast_logits: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    foreground_logits: torch.Tensor | None = None
    background_logits: torch.Tensor | None = None
    patch_error: torch.Tensor | None = None


# an empty mask (Σ m = 0) pools a zero vector instead of dividing by zero
_MASK_EPS = 1e-4


class GroundingModel(nn.Module):
    """Visual tokens → grounding attention → hidden-word prediction.

    Args:
        cfg: architecture.
        word_types: the learned type of each word id (``Vocabulary.types``).
        backbone: the loaded pretrained backbone ``cfg.backbone`` names (loaded here when
            None); unused with ``backbone: cnn``.
    """

    def __init__(
        self, cfg: ModelConfig, word_types: Sequence[int], backbone: Backbone | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg
        V = len(word_types)
        if cfg.pretrained:
            self.encoder: nn.Module = BackboneEncoder(cfg, backbone or load_backbone(cfg))
        else:
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
        if cfg.mask == "sigmoid":
            self.mask_bias = nn.Parameter(torch.zeros(()))
        if cfg.patch_decoder > 0:
            self.patch_decoder = PatchDecoder(cfg.width, cfg.grid, cfg.patch_decoder)

    def encode(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``(B, 3, S, S)`` in ``[0, 1]``, or a pretrained backbone's cached tokens
        ``(B, N, channels)``, → keys ``(B, N, H, d)`` and values ``(B, N, H, e)``."""
        if inputs.ndim == 3:
            return self.grounding.keys_values(self.encoder.project_features(inputs))
        return self.grounding.keys_values(self.encoder(inputs))

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint stores: all of them, less a frozen backbone's (those
        are verified by their files' fingerprint instead)."""
        state = self.state_dict()
        if self.cfg.frozen_backbone:
            state = {k: v for k, v in state.items() if not k.startswith(BACKBONE_PREFIX)}
        return state

    def load_trained_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load :meth:`trained_state_dict` output (strict about every other weight)."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [
            k for k in missing if not (self.cfg.frozen_backbone and k.startswith(BACKBONE_PREFIX))
        ]
        if missing or unexpected:
            raise RuntimeError(
                f"state does not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )

    def logits(
        self,
        keys: torch.Tensor,
        values: torch.Tensor,
        query: torch.Tensor,
        partner: torch.Tensor,
        relation: torch.Tensor,
    ) -> torch.Tensor:
        """The grounding attention's logits ``(B, Q, H, N)``, a relation partner's attention
        shifting them.

        Args:
            keys, values: from :meth:`encode`.
            query: ``(B, Q, P)`` word ids of each query (0 = none).
            partner: ``(B, Q, P)`` word ids of the related phrase (all 0 without one).
            relation: ``(B, Q)`` relation codes (``NO_RELATION`` = none).
        """
        g = self.grounding
        logits = g.logits(g.query(query), keys)
        if self.cfg.relations:
            B, Q = relation.shape
            partner_attention, _ = g.attend(g.query(partner), keys, values)  # B Q H N
            bias = g.relation_bias(
                partner_attention.mean(2).flatten(0, 1), relation.flatten()
            ).view(B, Q, -1)  # B Q N
            logits = logits + bias[:, :, None, :]
        return logits

    def ground(
        self,
        keys: torch.Tensor,
        values: torch.Tensor,
        query: torch.Tensor,
        partner: torch.Tensor,
        relation: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend with word queries (arguments as :meth:`logits`); return the softmax
        attention ``(B, Q, H, N)`` and pooled values ``(B, Q, value_dim)``."""
        return self.grounding.pool(self.logits(keys, values, query, partner, relation), values)

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """The sigmoid mask ``σ(logits + b)`` in ``[0, 1]``, float32 (``model.mask: sigmoid``)."""
        return torch.sigmoid(logits.float() + self.mask_bias)

    def mask_pools(
        self, mask: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask ``(B, Q, H, N)`` → foreground ``Σ m v / Σ m`` and background
        ``Σ (1 − m) v / Σ (1 − m)`` values, each ``(B, Q, value_dim)``."""
        values = values.float()
        pools = []
        for weight in (mask, 1.0 - mask):
            total = weight.sum(-1, keepdim=True) + _MASK_EPS  # B Q H 1
            pooled = torch.einsum("bqhn,bnhe->bqhe", weight / total, values)
            pools.append(pooled.flatten(2))
        return pools[0], pools[1]

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
        masked: tuple[torch.Tensor, torch.Tensor] | None = None,
        joint: bool = False,
    ) -> PairOutput:
        """Predict each pair's hidden word ``target (B, Q)`` from ``images (B, 3, S, S)``
        (or cached backbone tokens ``(B, N, channels)``, as :meth:`encode`).

        ``masked`` (patch masking: the masked view ``(B, 3, S, S)`` and its ``(B, N)`` hidden
        flags, :func:`~groundbench.model.augment.hide_patches`) adds the reconstruction of
        the hidden tokens; with ``joint`` the words are reconstructed from the masked view.
        """
        patch_error = None
        if masked is None:
            keys, values = self.encode(images)
        else:
            view, hidden = masked
            tokens = self.encoder(torch.cat([images, view]))  # one pass: shared norm statistics
            full, partial = tokens.chunk(2)
            predicted = self.patch_decoder(partial, hidden)
            patch_error = patch_loss(predicted, full, hidden)
            keys, values = self.grounding.keys_values(partial if joint else full)
        logits = self.logits(keys, values, query, partner, relation)
        attention, pooled = self.grounding.pool(logits, values)
        word_logits = self.predict(pooled, target)
        mask = foreground_logits = background_logits = None
        if self.cfg.mask == "sigmoid":
            mask = self.mask(logits)
            foreground, background = self.mask_pools(mask, values)
            foreground_logits = self.predict(foreground, target)
            background_logits = self.predict(background, target)
        contrast_logits = None
        if contrast:
            other = (keys.roll(1, 0), values.roll(1, 0))  # each query on the next image
            _, pooled_other = self.grounding.attend(self.grounding.query(query), *other)
            contrast_logits = self.predict(pooled_other, target)
        return PairOutput(
            word_logits,
            attention,
            contrast_logits,
            mask,
            foreground_logits,
            background_logits,
            patch_error,
        )
