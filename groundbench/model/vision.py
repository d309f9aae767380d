"""Visual tokens: a small CNN whose every output describes only its own neighbourhood.

Images enter as ``(B, 3, height, width)`` float in ``[0, 1]`` at ``image_size`` pixels and
leave as ``N = h * w`` tokens in row-major grid order: token ``r * w + c`` is centred on
pixel ``((c + 0.5) * stride, (r + 0.5) * stride)`` of the model input. There is no position
embedding and, by default, no global mixing: a token's receptive field is about 25 px
(5×5/2, 3×3/2, two 3×3 and a 1×1 convolution), so what the grounding attention pools is
what lies where it looks.
"""

from __future__ import annotations

import torch
from torch import nn

from groundbench.model.config import ModelConfig


def _conv(c_in: int, c_out: int, kernel: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.GELU(),
    ]


class TokenEncoder(nn.Module):
    """Images ``(B, 3, S, S)`` → tokens ``(B, N, width)`` on a ``S / token_stride`` grid."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.width
        layers = [*_conv(3, w, 5, 2), *_conv(w, w, 3, 2)]
        if cfg.token_stride == 8:
            layers.append(nn.AvgPool2d(2))
        layers += [*_conv(w, w, 3, 1), *_conv(w, w, 3, 1), nn.Conv2d(w, w, 1)]
        self.net = nn.Sequential(*layers)
        self.mixing = (
            GlobalMixing(w, cfg.grid, cfg.mixing_layers) if cfg.mixing_layers > 0 else None
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.net(images - 0.5)  # B C h w
        tokens = x.flatten(2).transpose(1, 2)  # B N C
        return tokens if self.mixing is None else self.mixing(tokens)


class GlobalMixing(nn.Module):
    """ViT-style self-attention layers over all tokens, with learned positions (an ablation:
    after it a token may describe anything in the image)."""

    def __init__(self, width: int, grid: int, layers: int) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, grid * grid, width))
        nn.init.normal_(self.pos, std=0.02)
        heads = 4 if width % 4 == 0 else 1
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                width,
                heads,
                2 * width,
                dropout=0.0,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(layers)
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = tokens + self.pos  # B N C
        for block in self.blocks:
            x = block(x)
        return x
