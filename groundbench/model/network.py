"""The grounding model: vision encoder + text encoder + cross-attention decoder + heads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from groundbench.model.blocks import MLP
from groundbench.model.config import ModelConfig
from groundbench.model.decoder import Decoder
from groundbench.model.gate import HeadGate
from groundbench.model.text import TextEncoder
from groundbench.model.vision import VisionEncoder


@dataclass(frozen=True)
class ModelOutput:
    """What one forward pass returns.

    Attributes:
        word_logits: ``(B, T, V)`` reconstruction logits of every word position.
        gate_logits: ``(B, T, V)`` logits predicted from gated attention pooling alone
            (None without weights).
        patch_pred: ``(B, N, C)`` predicted normalised pixels of every patch.
        attention: ``(B, L, H, T, N)`` cross-attention probabilities (None without weights).
        gated: ``(B, T, N)`` gate-weighted attention (None without weights).
    """

    word_logits: torch.Tensor
    gate_logits: torch.Tensor | None
    patch_pred: torch.Tensor
    attention: torch.Tensor | None
    gated: torch.Tensor | None


class GroundingModel(nn.Module):
    """Reconstructs masked words and patches; its cross-attention grounds the words.

    Args:
        cfg: the architecture.
        vocab_size: number of word ids, specials included.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.vision = VisionEncoder(cfg)
        self.text = TextEncoder(
            vocab_size, cfg.dim, cfg.heads, cfg.text_layers, cfg.max_words, cfg.mlp_ratio
        )
        self.decoder = Decoder(cfg.dim, cfg.heads, cfg.decoder_layers, cfg.mlp_ratio)
        self.word_head = nn.Linear(cfg.dim, vocab_size)
        self.patch_head = nn.Linear(cfg.dim, 3 * cfg.patch_size**2)
        self.gate = HeadGate(cfg.decoder_layers, cfg.heads, cfg.dim, vocab_size)
        if cfg.local_values:
            self.local_mlp = MLP(cfg.dim, cfg.mlp_ratio)
            self.local_norm = nn.LayerNorm(cfg.dim)
        self.apply(_init_weights)

    def forward(
        self,
        images: torch.Tensor,
        ids: torch.Tensor,
        pad: torch.Tensor,
        patch_mask: torch.Tensor | None = None,
        *,
        need_weights: bool = True,
    ) -> ModelOutput:
        """Run the model.

        Args:
            images: ``(B, 3, image_size, image_size)`` float pixels in ``[0, 1]``.
            ids: ``(B, T)`` long word ids, masked words already replaced by ``<mask>``.
            pad: ``(B, T)`` bool, True on padding.
            patch_mask: optional ``(B, N)`` bool, True on hidden patches.
            need_weights: return attention maps and the gated read-out (explicit attention
                path); False uses the fused kernel.
        """
        visual, local = self.vision(images, patch_mask)  # B N D each
        values = None
        if self.cfg.local_values:
            values = self.local_norm(local + self.local_mlp(local))
        states, attention = self.decoder(
            self.text(ids, pad),
            visual,
            pad,
            values,
            None if self.cfg.attend_hidden else patch_mask,
            need_weights=need_weights,
        )
        gate_logits = gated = None
        if attention is not None:
            gate_logits, gated = self.gate(attention, visual if values is None else values)
        return ModelOutput(
            self.word_head(states), gate_logits, self.patch_head(visual), attention, gated
        )


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
