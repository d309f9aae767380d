"""The CPU path of the metrics: kernels over one map at a time, maps spread on threads.

A batched torch pass materialises a ``(B, Y, X)`` temporary per step (the tied mask, the
masked copy, the float64 cast), each written and read back from memory. One map of 480×640
float32 (1.2 MB) stays in the cache between the kernels that read it, so working map by map
reads each map from memory about once. Extremes and peaks are numpy's SIMD reductions, the
float64 sums compiled loops (:mod:`~groundbench.metrics._kernels`); both release the GIL, so
the maps run in parallel on :func:`~groundbench.metrics._ranks.map_threads`.

A map's numbers depend on that map alone (never on its batch): a map whose pixels are all
valid is read whole, any other is first compressed to its valid pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from groundbench.metrics import _kernels

# Pixels per block of the peak search: the maximum of each block, then the blocks that hold
# the overall maximum are searched again for its ties (one block, unless the map is flat).
_PEAK_BLOCK = 4096


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


def extremes(x: np.ndarray) -> tuple[float, float, bool]:
    """``(min, max, nonfinite)`` of 1-D ``x``; NaN and ±Inf reach min or max, so they flag it.

    An empty ``x`` gives ``(inf, -inf, False)``.
    """
    if x.size == 0:
        return np.inf, -np.inf, False
    lo, hi = float(x.min()), float(x.max())
    return lo, hi, not (np.isfinite(lo) and np.isfinite(hi))


def peak(x: np.ndarray) -> tuple[float, float, bool, np.ndarray]:
    """``(min, max, nonfinite, tied)``: ``tied`` the positions of ``x`` equal to its maximum.

    ``tied`` is empty when ``x`` is empty or holds NaN/Inf. The maximum comes from per-block
    maxima, so the tie search re-reads only the blocks that reach it.
    """
    if x.size == 0:
        return np.inf, -np.inf, False, np.zeros(0, dtype=np.int64)
    full = x.size - x.size % _PEAK_BLOCK
    block_max = x[:full].reshape(-1, _PEAK_BLOCK).max(axis=1)
    if full < x.size:
        block_max = np.append(block_max, x[full:].max())
    hi = float(block_max.max())
    lo = float(x.min())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return lo, hi, True, np.zeros(0, dtype=np.int64)
    found = [
        np.flatnonzero(x[b * _PEAK_BLOCK : (b + 1) * _PEAK_BLOCK] == hi) + b * _PEAK_BLOCK
        for b in np.flatnonzero(block_max == hi)
    ]
    return lo, hi, False, np.concatenate(found)


def sums(mv: MapView, spread: bool) -> tuple[float, float, float]:
    """float64 ``(Σ x, Σ_region x, Σ (x - mean)²)`` of a map view (``mv.masks[0]`` the region);
    the last is 0 unless ``spread``
    (:func:`~groundbench.metrics._kernels.sums`: blocked, compensated)."""
    return _kernels.sums(mv.values, mv.masks[0].view(np.uint8), spread)


@dataclass(frozen=True)
class MapSummary:
    """What pointing, soft-IoU, NSS, AUC and Spearman read of one map and its region.

    ``lo, hi, nonfinite`` as :func:`extremes`; ``n`` valid and ``n_pos`` region pixels;
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
    x, reg = mv.values, mv.masks[0]
    lo, hi, nonfinite = extremes(x)
    tied = peak(x)[3]
    total, region_total, sq_dev = sums(mv, spread=True)
    return MapSummary(
        lo=lo,
        hi=hi,
        nonfinite=nonfinite,
        n=x.size,
        n_pos=int(np.count_nonzero(reg)),
        tied=mv.pixels(tied),
        tied_in_region=int(np.count_nonzero(reg[tied])),
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
