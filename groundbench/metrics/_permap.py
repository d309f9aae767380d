"""The CPU path of the metrics: kernels over one map at a time, maps spread on threads.

A batched torch pass materialises a ``(B, Y, X)`` temporary per step (the tied mask, the
masked copy, the float64 cast), each written and read back from memory. One map of 480×640
float32 (1.2 MB) stays in the cache between the kernels that read it, so working map by map
reads each map from memory about once. The passes are compiled loops
(:mod:`~groundbench.metrics._kernels`) that release the GIL, so the maps run in parallel on
:func:`~groundbench.metrics._ranks.map_threads`.

A map's numbers depend on that map alone (never on its batch): a map whose pixels are all
valid is read whole, any other is first compressed to its valid pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from groundbench.metrics import _kernels


@dataclass(frozen=True)
class MapView:
    """One map's valid pixels, flat: ``values`` (float32/64), ``masks`` (bool, same length).

    ``index`` maps each value to its flat pixel index ``y * X + x`` (None: every pixel, in
    order, so position = index).
    """

    values: np.ndarray
    index: np.ndarray | None
    masks: tuple[np.ndarray, ...]

    def pixels(self, positions: np.ndarray) -> np.ndarray:
        """Flat pixel indices of value ``positions``."""
        return positions if self.index is None else self.index[positions]


def map_views(
    h: torch.Tensor, valid: torch.Tensor | None, *masks: torch.Tensor
) -> Callable[[int], MapView]:
    """Return ``i -> MapView`` of map ``i`` of CPU ``h`` with the same pixels of ``masks``."""
    B = h.shape[0]
    h_np = h.detach().numpy().reshape(B, -1)
    m_np = [m.numpy().reshape(B, -1) for m in masks]
    v_np = None if valid is None else valid.numpy().reshape(B, -1)

    def view(i: int) -> MapView:
        if v_np is None or v_np[i].all():
            return MapView(h_np[i], None, tuple(m[i] for m in m_np))
        keep = v_np[i]
        return MapView(h_np[i][keep], np.flatnonzero(keep), tuple(m[i][keep] for m in m_np))

    return view


class Peak(NamedTuple):
    """What one pass over a map finds (:func:`peak`)."""

    lo: float  # min (meaningless when nonfinite)
    hi: float  # max (meaningless when nonfinite)
    nonfinite: bool  # a NaN or ±Inf value
    tied: np.ndarray  # int64 increasing positions equal to the max; empty if nonfinite
    n_pos: int  # region values (0 without a region)
    tied_in_region: int  # tied positions in the region (0 without a region)


# int view, (all bits but the sign, exponent field, sign position) of each float dtype
_BITS = {
    np.dtype(np.float32): (np.int32, (np.int32(2**31 - 1), np.int32(0x7F800000), np.int32(31))),
    np.dtype(np.float64): (
        np.int64,
        (np.int64(2**63 - 1), np.int64(0x7FF0000000000000), np.int64(63)),
    ),
}
_NO_REGION = np.zeros(0, dtype=np.uint8)


def peak(x: np.ndarray, region: np.ndarray | None = None) -> Peak:
    """The :class:`Peak` of 1-D float32/float64 ``x`` and bool ``region`` (same length).

    One compiled pass (:func:`~groundbench.metrics._kernels.peak`): min and max as integer
    reductions over order-preserving keys, NaN/±Inf from the exponent bits, the region
    count; then the ties of the max, searched only in the blocks that reach it. An empty
    ``x`` gives ``lo = inf``, ``hi = -inf``, no ties.
    """
    x = np.ascontiguousarray(x)
    int_type, constants = _BITS[x.dtype]
    reg = _NO_REGION if region is None else np.ascontiguousarray(region).view(np.uint8)
    lo, hi, nonfinite, tied, n_pos, tied_in_region = _kernels.peak(
        x, x.view(int_type), reg, *constants
    )
    return Peak(float(lo), float(hi), bool(nonfinite), tied, int(n_pos), int(tied_in_region))


def sums(mv: MapView, spread: bool) -> tuple[float, float, float]:
    """float64 ``(Σ x, Σ_region x, Σ (x - mean)²)`` of a map view (``mv.masks[0]`` the region);
    the last is 0 unless ``spread``
    (:func:`~groundbench.metrics._kernels.sums`: blocked, compensated)."""
    return _kernels.sums(mv.values, mv.masks[0].view(np.uint8), spread)


@dataclass(frozen=True)
class MapSummary:
    """What pointing, soft-IoU, NSS, AUC and Spearman read of one map and its region.

    ``lo, hi, nonfinite`` as :func:`peak`; ``n`` valid and ``n_pos`` region pixels;
    ``tied`` the flat pixel indices of the maximum's ties (as :func:`peak`) and
    ``tied_in_region`` how many are region pixels; ``total``, ``region_total`` and
    ``sq_dev`` as :func:`sums`.
    """

    lo: float
    hi: float
    nonfinite: bool
    n: int
    n_pos: int
    tied: np.ndarray
    tied_in_region: int
    total: float
    sq_dev: float
    region_total: float


def summarise(mv: MapView) -> MapSummary:
    """The :class:`MapSummary` of one map, in one visit while it is in the cache.

    Each field comes from the same kernel, on the same values, as in the metric that reads
    it alone, so a shared summary gives bit-identical scores.
    """
    p = peak(mv.values, mv.masks[0])
    total, region_total, sq_dev = sums(mv, spread=True)
    return MapSummary(
        lo=p.lo,
        hi=p.hi,
        nonfinite=p.nonfinite,
        n=mv.values.size,
        n_pos=p.n_pos,
        tied=mv.pixels(p.tied),
        tied_in_region=p.tied_in_region,
        total=total,
        sq_dev=sq_dev,
        region_total=region_total,
    )


_COLUMN_KINDS = {"nonfinite": torch.bool, "n": torch.long, "n_pos": torch.long}
_COLUMN_KINDS["tied_in_region"] = torch.long


def columns(summaries: list[MapSummary], *fields: str) -> tuple[torch.Tensor, ...]:
    """``(B,)`` CPU tensors of ``fields`` of the summaries (float64 but for counts and flags)."""
    return tuple(
        torch.tensor([getattr(s, f) for s in summaries], dtype=_COLUMN_KINDS.get(f, torch.float64))
        for f in fields
    )
