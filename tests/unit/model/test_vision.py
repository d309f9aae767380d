from __future__ import annotations

import pytest
import torch

from groundbench.model.config import ModelConfig
from groundbench.model.network import GroundingModel
from groundbench.model.vision import VisionEncoder


@pytest.mark.parametrize("stem", [0, 8])
def test_one_token_per_patch_with_or_without_the_stem(stem):
    cfg = ModelConfig(image_size=32, patch_size=8, stem_channels=stem, dim=16, heads=2)
    tokens, local = VisionEncoder(cfg)(torch.rand(2, 3, 32, 32))
    assert tokens.shape == local.shape == (2, cfg.grid * cfg.grid, 16)


def test_stem_needs_a_patch_divisible_by_four():
    with pytest.raises(ValueError, match="patch_size % 4"):
        VisionEncoder(ModelConfig(image_size=30, patch_size=6, stem_channels=8, dim=16, heads=2))


def test_local_tokens_see_only_their_own_patch():
    torch.manual_seed(0)
    cfg = ModelConfig(image_size=32, patch_size=8, stem_channels=0, dim=16, heads=2)
    enc = VisionEncoder(cfg).eval()
    a = torch.rand(1, 3, 32, 32)
    b = a.clone()
    b[:, :, :8, :8] = torch.rand(1, 3, 8, 8)  # change patch 0 only
    ctx_a, loc_a = enc(a)
    ctx_b, loc_b = enc(b)
    changed = (loc_a - loc_b).abs().sum(-1)[0] > 0
    assert changed.tolist() == [True] + [False] * 15
    assert bool(((ctx_a - ctx_b).abs().sum(-1)[0] > 0).all())  # contextual tokens mix


def test_model_options_run_and_exclude_hidden_patches():
    torch.manual_seed(0)
    cfg = ModelConfig(
        image_size=32,
        patch_size=8,
        stem_channels=0,
        dim=16,
        heads=2,
        max_words=8,
        local_values=True,
        attend_hidden=False,
    )
    model = GroundingModel(cfg, vocab_size=12).eval()
    ids = torch.tensor([[4, 5, 6]])
    hidden = torch.zeros(1, 16, dtype=torch.bool)
    hidden[0, :5] = True
    with torch.no_grad():
        out = model(torch.rand(1, 3, 32, 32), ids, ids == 0, hidden)
    assert out.attention.shape == (1, cfg.decoder_layers, 2, 3, 16)
    assert float(out.attention[..., :5].abs().sum()) == 0.0
    assert out.gate_logits.shape == (1, 3, 12)
