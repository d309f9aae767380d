"""Visual encoder: convolutional stem, patch embedding, learned 2-D positions, transformer.

Images enter as ``(B, 3, height, width)`` float in ``[0, 1]`` at ``image_size`` pixels and
leave as ``N = h * w`` visual tokens in row-major grid order (token ``r * w + c`` covers
rows ``[r * patch, (r + 1) * patch)`` and columns ``[c * patch, (c + 1) * patch)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from groundbench.model.blocks import Block
from groundbench.model.config import ModelConfig

# ImageNet statistics: a neutral normalisation for from-scratch and pretrained backbones alike
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """Cut ``(B, 3, height, width)`` images into ``(B, N, 3 * patch²)`` row-major patches.

    Example:
        >>> patchify(torch.zeros(2, 3, 16, 8), 4).shape
        torch.Size([2, 8, 48])
    """
    B, C, Y, X = images.shape
    x = images.view(B, C, Y // patch, patch, X // patch, patch)  # B C h p w p
    return x.permute(0, 2, 4, 1, 3, 5).reshape(B, (Y // patch) * (X // patch), C * patch * patch)


def normalise_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Standardise each patch to zero mean and unit variance (the masked-patch target)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True, unbiased=False)
    return (patches - mean) / (var + eps).sqrt()


class VisionEncoder(nn.Module):
    """Patch encoder trained from scratch; masked patches become a learned mask token.

    Masked patches are blanked in the pixels before the stem (so no convolution can read
    them) and their tokens replaced by ``mask_token`` before the transformer.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.patch = cfg.patch_size
        c = cfg.stem_channels
        stem: list[nn.Module] = []
        embed_in, embed_patch = 3, cfg.patch_size
        if c > 0:
            if cfg.patch_size % 4:
                raise ValueError(
                    f"a convolutional stem needs patch_size % 4 == 0, got {cfg.patch_size}"
                )
            # two stride-2 3x3 convolutions (the "early convolutions" stem): each visual token
            # still covers its own patch, plus a 3-pixel border of its neighbours
            stem = [
                nn.Conv2d(3, c, 3, stride=2, padding=1),
                nn.GELU(),
                nn.Conv2d(c, c, 3, stride=2, padding=1),
                nn.GELU(),
            ]
            embed_in, embed_patch = c, cfg.patch_size // 4
        self.stem = nn.Sequential(*stem)
        self.embed = nn.Conv2d(embed_in, cfg.dim, embed_patch, stride=embed_patch)
        self.pos = nn.Parameter(torch.zeros(1, cfg.grid * cfg.grid, cfg.dim))
        nn.init.normal_(self.pos, std=0.02)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.vision_layers)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(
        self, images: torch.Tensor, patch_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode ``images (B, 3, height, width)`` in [0, 1].

        Args:
            images: float pixels in ``[0, 1]``.
            patch_mask: optional ``(B, N)`` bool, True on patches to hide.

        Returns:
            contextual tokens ``(B, N, D)`` (after the transformer) and local tokens
            ``(B, N, D)`` (each patch's own embedding, before positions and mixing).
        """
        x = (images - self.mean) / self.std
        if patch_mask is not None:
            B, _, Y, X = x.shape
            h, w = Y // self.patch, X // self.patch
            keep = (~patch_mask).view(B, 1, h, 1, w, 1).to(x.dtype)  # B 1 h 1 w 1
            x = (x.view(B, 3, h, self.patch, w, self.patch) * keep).view(B, 3, Y, X)
        x = self.embed(self.stem(x)).flatten(2).transpose(1, 2)  # B N D
        if patch_mask is not None:
            x = torch.where(patch_mask[..., None], self.mask_token.to(x.dtype), x)
        local = x
        x = x + self.pos
        for block in self.blocks:
            x = block(x)
        return self.norm(x), local


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(B, 3, height, width)`` float images to ``size × size`` (bilinear, antialiased)."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(
        images, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
