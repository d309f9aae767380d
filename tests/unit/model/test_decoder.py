from __future__ import annotations

import torch

from groundbench.model.decoder import CrossAttention, Decoder


def test_fused_and_explicit_cross_attention_agree():
    torch.manual_seed(0)
    attn = CrossAttention(32, 4)
    x, ctx = torch.randn(3, 5, 32), torch.randn(3, 7, 32)
    fused, none = attn(x, ctx, need_weights=False)
    explicit, weights = attn(x, ctx, need_weights=True)
    assert none is None
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    assert weights.shape == (3, 4, 5, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4, 5))


def test_decoder_returns_every_layer_in_one_pass():
    torch.manual_seed(0)
    dec = Decoder(16, 2, 3, 2.0).eval()
    text, visual = torch.randn(2, 4, 16), torch.randn(2, 9, 16)
    pad = torch.tensor([[False] * 4, [False, False, True, True]])
    states, att = dec(text, visual, pad, need_weights=True)
    fused_states, no_att = dec(text, visual, pad, need_weights=False)
    assert att.shape == (2, 3, 2, 4, 9)  # B L H T N
    assert no_att is None
    torch.testing.assert_close(states, fused_states, atol=1e-5, rtol=1e-5)


def test_hidden_tokens_get_no_attention_on_both_paths():
    torch.manual_seed(0)
    attn = CrossAttention(32, 4)
    x, ctx = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    hidden = torch.zeros(2, 7, dtype=torch.bool)
    hidden[0, [1, 4]] = True
    hidden[1, 6] = True
    with torch.no_grad():
        fused, _ = attn(x, ctx, None, hidden, need_weights=False)
        explicit, weights = attn(x, ctx, None, hidden, need_weights=True)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    assert float(weights[0, :, :, [1, 4]].abs().sum()) == 0.0
    assert float(weights[1, :, :, 6].abs().sum()) == 0.0
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 5))


def test_separate_values_change_the_output_not_the_weights():
    torch.manual_seed(0)
    attn = CrossAttention(16, 2)
    x, ctx = torch.randn(1, 3, 16), torch.randn(1, 5, 16)
    same, w_same = attn(x, ctx, ctx, need_weights=True)
    plain, w_plain = attn(x, ctx, need_weights=True)
    torch.testing.assert_close(same, plain)  # values=context is the plain layer
    other, w_other = attn(x, ctx, torch.randn(1, 5, 16), need_weights=True)
    torch.testing.assert_close(w_other, w_plain)
    assert not torch.allclose(other, plain)
