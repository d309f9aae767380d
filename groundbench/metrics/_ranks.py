"""Exact rank statistics of a heatmap split by a binary region, one map at a time.

AUC and Spearman's rho against the region indicator both reduce to the Mann–Whitney
statistic ``U`` of the region's pixel values against the others, plus (for rho) the sizes of
the groups of tied values. float32 maps get both from one radix sort
(:func:`~groundbench.metrics._radix.rank_sums`); float64 maps sort the region pixels and
the other pixels apart and locate one in the other (``searchsorted`` with sorted queries).
Both release the GIL, so maps run in parallel on a thread pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from groundbench.metrics._inputs import Inputs
from groundbench.metrics._permap import SPREAD, Summaries, map_threads, summarise
from groundbench.metrics._radix import EXACT_TIE_PIXELS, rank_sums, twice_ranks

# chunk key -> (the keyed tensors, kept alive so their ids stay theirs; rank stats or summaries
# per map)
_SHARED: ContextVar[dict[tuple, tuple[list[Any], list[Any]]] | None] = ContextVar(
    "groundbench_shared_ranks", default=None
)


@dataclass(frozen=True)
class RankStats:
    """Rank summary of one map: ``U`` counts region-over-other pairs, ties as ½.

    Attributes:
        u: Mann–Whitney ``U`` of the region pixels (``#{(p, q): p > q} + ½ #{p == q}``).
        n_pos: number of region pixels.
        n_neg: number of other valid pixels.
        tie_sum: ``Σ (t³ - t)`` over groups of equal values among all valid pixels
            (NaN when not asked for).
    """

    u: float
    n_pos: int
    n_neg: int
    tie_sum: float


def _run_lengths(sorted_values: np.ndarray) -> np.ndarray:
    """Lengths of the runs of equal values in a sorted 1-D array (float64)."""
    if sorted_values.size == 0:
        return np.zeros(0)
    starts = np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1
    return np.diff(np.concatenate(([0], starts, [sorted_values.size]))).astype(np.float64)


def _tie_sum(sorted_values: np.ndarray) -> float:
    """``Σ (t³ - t)`` over the groups of equal values of a sorted 1-D array.

    Works on the positions of equal neighbours only, so a map with few ties costs one compare.
    """
    if sorted_values.size < 2:
        return 0.0
    idx = np.flatnonzero(sorted_values[1:] == sorted_values[:-1])
    if idx.size == 0:
        return 0.0
    # a run of consecutive equal-neighbour positions of length L is one group of L + 1 values
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    t = np.diff(np.concatenate(([0], breaks, [idx.size]))).astype(np.float64) + 1
    return float(np.sum(t**3 - t))


def rank_stats(values: np.ndarray, positive: np.ndarray, *, ties: bool) -> RankStats:
    """Return the :class:`RankStats` of 1-D finite ``values`` split by bool ``positive``.

    float32 values are ranked by one radix sort of all of them (:func:`_rank_float32`);
    float64 values by sorting the two groups apart and locating one in the other.
    """
    if values.dtype == np.float32:
        return _rank_float32(values, positive, ties=ties)
    pos = np.sort(values[positive])
    neg = np.sort(values[~positive])
    left = np.searchsorted(neg, pos, side="left")
    # a second search only when some region value also occurs outside the region
    at = np.minimum(left, max(neg.size - 1, 0))
    shared = neg.size > 0 and bool(np.any(neg[at] == pos))
    right = np.searchsorted(neg, pos, side="right") if shared else left
    u = 0.5 * (float(left.sum(dtype=np.int64)) + float(right.sum(dtype=np.int64)))
    tie_sum = float("nan")
    if ties:
        tie_sum = _tie_sum(pos) + _tie_sum(neg)
        if shared:
            # a value held by b region pixels and a others: (a+b)³ - (a+b) - (a³ - a) - (b³ - b)
            run_pos = _run_lengths(pos)
            first = np.concatenate(([0], np.cumsum(run_pos)[:-1])).astype(np.int64)
            a = (right - left)[first].astype(np.float64)
            tie_sum += float(np.sum(3 * a * run_pos * (a + run_pos)))
    return RankStats(u=u, n_pos=int(pos.size), n_neg=int(neg.size), tie_sum=tie_sum)


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based mid-ranks of 1-D finite float32/float64 ``values`` (float64), as
    ``scipy.stats.rankdata`` (:func:`~groundbench.metrics._radix.twice_ranks`)."""
    return twice_ranks(values)[0] / 2


def _rank_float32(values: np.ndarray, positive: np.ndarray, *, ties: bool) -> RankStats:
    """:func:`rank_stats` of float32 ``values``: one radix sort
    (:func:`~groundbench.metrics._radix.rank_sums`), integer sums of sorted positions."""
    twice_u, tie_sum, tie_sum_f, n_pos = rank_sums(
        np.ascontiguousarray(values), np.ascontiguousarray(positive)
    )
    if not ties:
        tie = float("nan")
    elif values.size < EXACT_TIE_PIXELS:
        tie = float(tie_sum)
    else:
        tie = float(tie_sum_f)
    return RankStats(u=twice_u / 2, n_pos=int(n_pos), n_neg=values.size - int(n_pos), tie_sum=tie)


def per_map_arrays(
    h: torch.Tensor, region: torch.Tensor, valid: torch.Tensor | None, usable: Sequence[bool]
) -> Callable[[int], tuple[np.ndarray, np.ndarray] | None]:
    """Return ``i -> (valid values, region indicator)`` as flat CPU numpy arrays (None if unusable)."""
    h_np = h.detach().cpu().numpy()
    r_np = region.cpu().numpy()
    v_np = None if valid is None else valid.cpu().numpy()

    def get(i: int) -> tuple[np.ndarray, np.ndarray] | None:
        if not usable[i]:
            return None
        if v_np is None:
            return h_np[i].ravel(), r_np[i].ravel()
        return h_np[i][v_np[i]], r_np[i][v_np[i]]

    return get


@contextmanager
def shared_ranks() -> Iterator[None]:
    """Rank each map once for every rank metric (``auc``, ``spearman``) computed in the block.

    Inside the block, a rank metric called on the same ``heatmap``, ``region`` and ``valid``
    tensor objects as an earlier one reuses that call's per-map rank statistics, which halves
    the cost of the battery. On the CPU, the first of ``pointing`` (region rules), ``soft_iou``,
    ``nss``, ``auc`` and ``spearman`` to run also summarises each map once for all of them
    (:class:`~groundbench.metrics._permap.Summaries`: extremes, the peak's ties, counts and
    float64 sums), so a battery reads each map about once beyond its sort. Scores are
    bit-identical to separate calls. The tensors must not be modified in place inside the
    block. :class:`~groundbench.metrics.suite.MetricSuite` uses it for each batch.

    Example:
        >>> from groundbench.metrics import auc, spearman
        >>> h, r = torch.rand(2, 8, 8), torch.rand(2, 8, 8) > 0.5
        >>> with shared_ranks():
        ...     a, s = auc(h, region=r), spearman(h, region=r)
        >>> torch.equal(a.values, auc(h, region=r).values)
        True
    """
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def shared_summaries(
    inputs: Inputs, rows: slice, h: torch.Tensor, valid: torch.Tensor | None
) -> Summaries | None:
    """Per-map summaries of one CPU chunk inside :func:`shared_ranks` (computed once), else None."""
    cache = _SHARED.get()
    if cache is None or inputs.region is None or h.device.type != "cpu":
        return None
    key = (
        "summary",
        id(inputs.heatmap),
        id(inputs.region),
        id(inputs.valid),
        rows.start,
        rows.stop,
    )
    if key not in cache:
        done = summarise(h, valid, inputs.region[rows], SPREAD)
        cache[key] = ([inputs.heatmap, inputs.region, inputs.valid], done)
    return cache[key][1]


def chunk_rank_stats(
    inputs: Inputs, rows: slice, h: torch.Tensor, valid: torch.Tensor | None, usable: Sequence[bool]
) -> list[RankStats | None]:
    """Rank statistics (tie sums included) of the usable maps of one chunk, None elsewhere."""
    cache = _SHARED.get()
    key = (id(inputs.heatmap), id(inputs.region), id(inputs.valid), rows.start, rows.stop)
    if cache is not None and key in cache:
        stats = cache[key][1]
    else:
        stats = [None] * len(usable)
        if cache is not None:
            cache[key] = ([inputs.heatmap, inputs.region, inputs.valid], stats)
    todo = [i for i, u in enumerate(usable) if u and stats[i] is None]
    if todo:
        get = per_map_arrays(h, inputs.region[rows], valid, usable)
        done = map_threads(
            lambda k: rank_stats(*get(todo[k]), ties=True), len(todo), pixels=h[0].numel()
        )
        for i, s in zip(todo, done, strict=True):
            stats[i] = s
    return [s if u else None for s, u in zip(stats, usable, strict=True)]
