"""The recomputed attention equals ``nn.MultiheadAttention``'s, in both layouts, with weights."""

from __future__ import annotations

import pytest
import torch

from groundbench.methods.open_clip.attention import attention_with_weights, recording


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("mask", [None, "causal-float", "causal-bool"])
def test_output_and_weights_match_multihead_attention(batch_first, mask):
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=batch_first).eval()
    x = torch.randn(3, 5, 16) if batch_first else torch.randn(5, 3, 16)
    m = None
    if mask == "causal-float":
        m = torch.full((5, 5), float("-inf")).triu(1)
    elif mask == "causal-bool":
        m = torch.ones(5, 5, dtype=torch.bool).triu(1)
    ref, ref_w = mha(x, x, x, need_weights=True, average_attn_weights=False, attn_mask=m)
    out, probs = attention_with_weights(mha, x, x, x, m)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(probs, ref_w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch_first", [True, False])
def test_recording_puts_the_weights_on_the_gradient_path_and_unpatches(batch_first):
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first).eval()
    x = torch.randn(2, 4, 8) if batch_first else torch.randn(4, 2, 8)
    expected = mha(x, x, x, need_weights=False)[0]
    with recording([mha]) as got:
        out = mha(x, x, x, need_weights=False)[0]
    (grad,) = torch.autograd.grad(out.sum(), got)
    assert grad.shape == (2, 2, 4, 4) and grad.abs().sum() > 0
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert "forward" not in mha.__dict__
