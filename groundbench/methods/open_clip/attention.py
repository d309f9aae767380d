"""``nn.MultiheadAttention`` with its per-head weights on the autograd path, either layout.

open_clip's blocks call ``nn.MultiheadAttention(..., need_weights=False)``, batch-first
(open_clip ≥ 2.x, ``(B, N, D)``) or sequence-first (OpenAI CLIP and older open_clip,
``(N, B, D)``), so no attention weights come back. :func:`attention_with_weights`
recomputes the module's output from its own parameters and returns the probabilities
``(B, H, Nq, Nk)`` that produced it (post-softmax, no dropout: eval), so a gradient recipe
can take their gradient; :func:`recording` patches the modules for one forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from groundbench.errors import MethodError


def attention_with_weights(
    mha: torch.nn.MultiheadAttention,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(output, probs)``: the module's output in its own layout and ``(B, H, Nq, Nk)`` weights.

    ``attn_mask`` is additive (float) or boolean (True = masked), ``(Nq, Nk)`` or
    ``(B·H, Nq, Nk)``, as ``nn.MultiheadAttention`` takes it.

    Raises:
        MethodError: a module with separate key/value projections or a key padding mask
            (not used by open_clip's towers).
    """
    if not mha._qkv_same_embed_dim or mha.in_proj_weight is None:
        raise MethodError("open_clip: attention with separate key/value sizes is not supported")
    if mha.batch_first:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))  # N B D
    Nq, B, D = query.shape
    H = mha.num_heads
    d = D // H
    wq, wk, wv = mha.in_proj_weight.chunk(3)
    bq, bk, bv = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None,) * 3
    q = F.linear(query, wq, bq).reshape(Nq, B * H, d).transpose(0, 1)  # BH Nq d
    k = F.linear(key, wk, bk).reshape(key.shape[0], B * H, d).transpose(0, 1)  # BH Nk d
    v = F.linear(value, wv, bv).reshape(value.shape[0], B * H, d).transpose(0, 1)  # BH Nk d
    logits = (q * d**-0.5) @ k.transpose(1, 2)  # BH Nq Nk
    if attn_mask is not None:
        mask = attn_mask if attn_mask.dim() == 3 else attn_mask[None]
        logits = (
            logits.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else logits + mask
        )
    probs = logits.view(B, H, Nq, -1).softmax(-1)  # B H Nq Nk: the tensor the output uses
    out = (probs.flatten(0, 1) @ v).transpose(0, 1).reshape(Nq, B, D)  # Nq B D
    out = mha.out_proj(out)
    if mha.batch_first:
        out = out.transpose(0, 1)
    return out, probs


@contextmanager
def recording(modules: Sequence[torch.nn.MultiheadAttention]):
    """Patch ``modules`` so each forward stores its weights; yields the list they fill, in call order."""
    got: list[torch.Tensor] = []

    def patched(mha):
        def forward(
            query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None, **_
        ):
            if key_padding_mask is not None:
                raise MethodError("open_clip: a key padding mask is not supported by the recipes")
            out, probs = attention_with_weights(mha, query, key, value, attn_mask)
            got.append(probs)
            return out, None

        return forward

    try:
        for m in modules:
            m.forward = patched(m)
        yield got
    finally:
        for m in modules:
            m.__dict__.pop("forward", None)
