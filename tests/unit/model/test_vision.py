from __future__ import annotations

import pytest
import torch

from groundbench.model import load_config
from groundbench.model.vision import TokenEncoder


@pytest.mark.parametrize(("stride", "grid"), [(4, 16), (8, 8)])
def test_grid_follows_the_token_stride(stride, grid):
    cfg = load_config("small-cpu", overrides=[f"model.token_stride={stride}"]).model
    tokens = TokenEncoder(cfg).eval()(torch.rand(2, 3, 64, 64))
    assert cfg.grid == grid and tokens.shape == (2, grid * grid, cfg.width)


@pytest.mark.parametrize(("mixing", "local"), [(0, True), (1, False)])
def test_tokens_describe_only_their_neighbourhood_unless_mixed(mixing, local):
    cfg = load_config("small-cpu", overrides=[f"model.mixing_layers={mixing}"]).model
    torch.manual_seed(0)
    enc = TokenEncoder(cfg).eval()
    image = torch.rand(1, 3, 64, 64)
    changed = image.clone()
    changed[..., 56:, 56:] = 0.0  # bottom-right corner only
    with torch.no_grad():
        a, b = enc(image), enc(changed)
    # token (0, 0) is centred on pixel (2, 2); its receptive field ends near 15 px
    assert torch.equal(a[0, 0], b[0, 0]) is local
    assert not torch.equal(a[0, -1], b[0, -1])
