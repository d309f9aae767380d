"""Hooks on a transformers ViT tower: capture attention and activations, expand to pairs.

A batch holds ``U`` distinct images and ``P`` (image, phrase) pairs. The tower runs once
per image below the first layer a gradient recipe needs; a forward pre-hook on that layer
repeats the hidden states per pair (``pair_image``) and detaches them, so the backward pass
stops there: no gradient goes deeper than the recipe needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch

from groundbench.errors import MethodError


def attention_missing(where: str) -> MethodError:
    """The error for an attention module that returned no weights (sdpa / flash)."""
    return MethodError(
        f"{where} returned no attention weights: the model runs an attention implementation "
        "(sdpa, flash) that does not return them; load it with attn_implementation='eager'"
    )


@contextmanager
def captured(
    layers: Sequence[torch.nn.Module],
    *,
    expand_at: int | None,
    pair_image: torch.Tensor,
    attention_of: Sequence[int] = (),
    attention_name: str = "self_attn",
    norm_of: int | None = None,
    norm_name: str = "layer_norm1",
):
    """Hook ``layers`` for one forward pass; yields the dict the hooks fill.

    Args:
        layers: the tower's blocks, bottom first.
        expand_at: block whose input is repeated per pair and made a gradient leaf
            (None: no expansion, no gradient).
        pair_image: ``(P,)`` image index of each pair.
        attention_of: blocks whose attention probabilities ``(P, H, N, N)`` are kept
            (under ``"attn"``, a dict block → tensor).
        norm_of: block whose ``norm_name`` output ``(P, N, C)`` is kept (under ``"norm"``).
    """
    got: dict[str, dict[int, torch.Tensor]] = {"attn": {}, "norm": {}}
    handles = []

    def expand(module, args, kwargs):
        return (args[0][pair_image].detach().requires_grad_(True), *args[1:]), kwargs

    def keep_attn(i):
        def hook(module, args, out):
            if out[1] is None:
                raise attention_missing(f"block {i} ({type(module).__name__})")
            got["attn"][i] = out[1]

        return hook

    try:
        if expand_at is not None:
            handles.append(layers[expand_at].register_forward_pre_hook(expand, with_kwargs=True))
        for i in attention_of:
            handles.append(getattr(layers[i], attention_name).register_forward_hook(keep_attn(i)))
        if norm_of is not None:
            norm = getattr(layers[norm_of], norm_name)
            handles.append(
                norm.register_forward_hook(lambda m, a, o: got["norm"].__setitem__(0, o))
            )
        yield got
    finally:
        for h in handles:
            h.remove()


def block_index(block: int, n: int, what: str) -> int:
    """Resolve a possibly negative block index into ``0 .. n-1``."""
    i = block + n if block < 0 else block
    if not 0 <= i < n:
        raise MethodError(f"{what}: block {block} is outside the tower's {n} blocks")
    return i


def probe_attention(mha: torch.nn.MultiheadAttention, probe: torch.Tensor, x: torch.Tensor):
    """Recompute a batch-first ``nn.MultiheadAttention(probe, x, x)`` keeping per-head weights.

    ``nn.MultiheadAttention`` returns head-averaged weights that are not on the output's
    autograd path; this uses the module's own parameters and returns ``(output, probs)``
    with ``probs (B, H, Q, N)`` on the path, so their gradient is the one that matters.
    """
    B, Q, D = probe.shape
    H = mha.num_heads
    wq, wk, wv = mha.in_proj_weight.chunk(3)
    bq, bk, bv = mha.in_proj_bias.chunk(3)
    q = torch.nn.functional.linear(probe, wq, bq).view(B, Q, H, D // H).transpose(1, 2)  # B H Q d
    k = torch.nn.functional.linear(x, wk, bk).view(B, -1, H, D // H).transpose(1, 2)  # B H N d
    v = torch.nn.functional.linear(x, wv, bv).view(B, -1, H, D // H).transpose(1, 2)  # B H N d
    probs = torch.softmax(q @ k.transpose(-1, -2) * (D // H) ** -0.5, dim=-1)  # B H Q N
    out = (probs @ v).transpose(1, 2).reshape(B, Q, D)
    return mha.out_proj(out), probs
