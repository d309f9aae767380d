"""Aggregate cross-attention: select layers and heads, then reduce ``(L, H)`` to one map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from groundbench.errors import MethodError
from groundbench.postprocess import PIPELINE_STEPS

HEAD_MODES: tuple[str, ...] = ("mean", "max", "gate")
REDUCE_MODES: tuple[str, ...] = ("mean", "max")


def _resolve_indices(selection: Sequence[int], size: int, what: str) -> list[int]:
    out = []
    for i in selection:
        if not -size <= i < size:
            raise MethodError(
                f"pipeline.aggregate.{what}: index {i} is out of range for maps with {size} "
                f"{what}; use indices in [{-size}, {size - 1}] or 'all'/'mean'"
            )
        out.append(i % size)
    return out


def _reduce(x: torch.Tensor, dims: tuple[int, ...], mode: str) -> torch.Tensor:
    return x.mean(dim=dims) if mode == "mean" else x.amax(dim=dims)


@PIPELINE_STEPS.register(
    "aggregate", config_key="aggregate", input="(B, L, H, h, w) float", output="(B, h, w) float32"
)
def aggregate_attention(
    attention: torch.Tensor,
    *,
    layers: Literal["all"] | Sequence[int] = "all",
    heads: Literal["mean", "max", "gate"] | Sequence[int] = "mean",
    reduce: Literal["mean", "max"] = "mean",
    head_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reduce a batch of layer × head attention maps to one map per sample.

    Order: keep the selected ``layers``; then

    * ``heads="mean"`` / ``"max"``: reduce the heads of each layer by that rule, then the
      layers by ``reduce``;
    * ``heads=[i, ...]``: keep those heads and reduce both axes by ``reduce``;
    * ``heads="gate"``: weighted mean over every selected (layer, head) cell with the
      non-negative ``head_weights`` (normalised to sum 1 over the selection), so the gate
      weighs layers as well as heads; ``reduce`` must then be ``"mean"``.

    Indices may be negative (``-1`` is the last layer).

    Args:
        attention: ``(B, L, H, h, w)`` float attention over an ``h × w`` grid.
        layers: ``"all"`` or a list of layer indices.
        heads: ``"mean"``, ``"max"``, ``"gate"`` or a list of head indices.
        reduce: ``"mean"`` or ``"max"``: the reduction over layers (and listed heads).
        head_weights: ``(L, H)`` gate weights; required when ``heads="gate"``.

    Returns:
        ``(B, h, w)`` float32 maps. NaN anywhere in a selected cell stays NaN.

    Raises:
        MethodError: an index is out of range, or ``heads="gate"`` without usable weights.

    Example:
        >>> a = torch.stack([torch.full((2, 2), v) for v in (1.0, 3.0)]).view(1, 1, 2, 2, 2)
        >>> aggregate_attention(a, heads="max")[0].tolist()
        [[3.0, 3.0], [3.0, 3.0]]
    """
    attention = attention.to(torch.float32)
    L, H = attention.shape[1:3]
    if layers != "all":
        attention = attention[:, _resolve_indices(layers, L, "layers")]
    if heads == "gate":
        if reduce != "mean":
            raise ValueError("aggregate_attention: heads='gate' needs reduce='mean'")
        return _gate(attention, layers, head_weights, (L, H))
    if heads in ("mean", "max"):
        per_layer = _reduce(attention, (2,), heads)  # B L' h w
        return _reduce(per_layer, (1,), reduce)
    if isinstance(heads, str):
        raise ValueError(f"aggregate_attention: heads must be one of {HEAD_MODES} or a list")
    attention = attention[:, :, _resolve_indices(heads, H, "heads")]
    return _reduce(attention, (1, 2), reduce)


def _gate(
    attention: torch.Tensor,
    layers: Literal["all"] | Sequence[int],
    head_weights: torch.Tensor | None,
    shape: tuple[int, int],
) -> torch.Tensor:
    if head_weights is None:
        raise MethodError(
            "pipeline.aggregate.heads is 'gate' but the method returned no head_weights; "
            "use heads: mean (or max, or a list of heads), or a method with a learned gate"
        )
    if tuple(head_weights.shape) != shape:
        raise MethodError(
            f"pipeline.aggregate.heads is 'gate' but head_weights has shape "
            f"{tuple(head_weights.shape)}, not (L, H) = {shape} like the attention maps"
        )
    w = head_weights.to(device=attention.device, dtype=torch.float32)
    if layers != "all":
        w = w[_resolve_indices(layers, shape[0], "layers")]
    total = w.sum()
    if not torch.isfinite(w).all() or (w < 0).any() or total <= 0:
        raise MethodError(
            "pipeline.aggregate.heads is 'gate' but head_weights are not finite, non-negative "
            f"weights with a positive sum over the selected layers: {w.tolist()}"
        )
    return torch.einsum("blhyx,lh->byx", attention, w / total)
