"""Exact rank statistics of a heatmap split by a binary region, one map at a time.

AUC and Spearman's rho against the region indicator both reduce to the Mann–Whitney
statistic ``U`` of the region's pixel values against the others, plus (for rho) the sizes of
the groups of tied values. Sorting the region pixels and the other pixels separately, then
locating the sorted region values among the sorted others (``searchsorted`` with sorted
queries), gives both exactly in ``O(n log n)`` with vectorised numpy kernels that release
the GIL, so maps run in parallel on a thread pool.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from groundbench.metrics._inputs import Inputs
from groundbench.metrics._permap import MapSummary, map_views, summarise

T = TypeVar("T")
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


def sortable_keys(values: np.ndarray) -> np.ndarray:
    """uint32 keys of float32 ``values`` in the same order, equal exactly where the values are.

    ``-0.0`` becomes ``+0.0`` first (they compare equal); then a negative float's bits are
    flipped and a positive one's sign bit set. NaN gets a key too: callers exclude it. The
    keys are a new array, which callers may modify.
    """
    bits = (values + np.float32(0.0)).view(np.int32)
    mask = bits >> 31
    mask |= np.int32(-(2**31))
    bits ^= mask
    return bits.view(np.uint32)


def radix_order(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted keys, order)`` of uint32 ``keys``: two stable 16-bit passes (LSD radix sort).

    numpy sorts 16-bit integers by radix, in linear time; its comparison sort of 32-bit keys
    costs several times more on a 480×640 map.
    """
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    by_low = keys[order]
    second = np.argsort((by_low >> 16).astype(np.uint16), kind="stable")
    return by_low[second], order[second]


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based mid-ranks of 1-D finite ``values`` (float64), as ``scipy.stats.rankdata``.

    float32 values are ordered by :func:`radix_order`; others by a stable argsort.
    """
    if values.dtype == np.float32:
        sorted_keys, order = radix_order(sortable_keys(values))
    else:
        order = np.argsort(values, kind="stable")
        sorted_keys = values[order]
    start, stop, group = tie_groups(sorted_keys)
    ranks = np.empty(values.size)
    ranks[order] = ((start + stop + 1) / 2)[group]
    return ranks


def tie_groups(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal values in sorted 1-D keys: ``(start, stop, group of each position)``.

    Example:
        >>> [a.tolist() for a in tie_groups(np.array([1.0, 1.0, 2.0]))]
        [[0, 2], [2, 3], [0, 0, 1]]
    """
    n = sorted_keys.size
    change = np.ones(n, dtype=bool)
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=change[1:])
    start = np.flatnonzero(change)
    return start, np.append(start[1:], n), np.cumsum(change) - 1


# where the high 16 bits of a native uint32 lie when viewed as two uint16
_HIGH_HALF = 1 if sys.byteorder == "little" else 0


def sort_flagged(
    values: np.ndarray, flag: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort float32 ``values`` once and say where the ``flag`` pixels and the ties fall.

    An LSD radix sort as :func:`radix_order`, by the low then the high 16 bits of the keys,
    that moves each key with its lowest bit replaced by the flag: one uint32 gather per pass
    and no index composition. Equal keys end up next to each other, so equal neighbours (all
    bits but the flag, then the lowest bit looked up) give the tie groups.

    Returns:
        ``(at, start, stop, pixel)``: the 0-based sorted positions of the flagged pixels
        (increasing), the tie groups ``[start, stop)`` of two or more equal values (int64,
        increasing), and the index in ``values`` of each flagged pixel, in sorted order.
    """
    keys = sortable_keys(values)
    low = keys.astype(np.uint16)
    by_low = np.argsort(low, kind="stable")
    keys &= np.uint32(0xFFFFFFFE)
    keys |= flag  # the flag in place of the lowest key bit
    moved = keys[by_low]
    order = np.argsort(moved.view(np.uint16)[_HIGH_HALF::2], kind="stable")
    moved = moved[order]  # sorted by key (lowest bit aside), flag in the lowest bit
    at = np.flatnonzero((moved & np.uint32(1)).astype(np.bool_))
    equal = np.flatnonzero((moved[1:] ^ moved[:-1]) < 2)
    if equal.size:
        # equal but for the lowest bit, which the flag hid: compare that bit in the keys
        left, right = low[by_low[order[equal]]], low[by_low[order[equal + 1]]]
        equal = equal[((left ^ right) & np.uint16(1)) == 0]
    # a run of consecutive equal-neighbour positions is one group [start, stop)
    breaks = np.flatnonzero(np.diff(equal) != 1) + 1
    start = equal[np.concatenate(([0], breaks))] if equal.size else equal
    stop = equal[np.concatenate((breaks - 1, [equal.size - 1]))] + 2 if equal.size else equal
    return at, start, stop, by_low[order[at]]


def _rank_float32(values: np.ndarray, positive: np.ndarray, *, ties: bool) -> RankStats:
    """:func:`rank_stats` of float32 ``values``: one sort (:func:`sort_flagged`), then integer
    sums of positions.

    With ``p`` the 0-based sorted positions of the region pixels, each taking the mid position
    of its group of equal values, ``U = Σ p - P (P - 1) / 2``; sums run in int64 (exact),
    doubled where half-integers arise.
    """
    at, start, stop, _ = sort_flagged(values, positive)
    n, n_pos = values.size, at.size
    twice_u = 2 * int(at.sum(dtype=np.int64)) - n_pos * (n_pos - 1)
    tie_sum = 0
    if start.size:
        first = np.searchsorted(at, start)
        last = np.searchsorted(at, stop)
        prefix = np.concatenate(([0], np.cumsum(at, dtype=np.int64)))
        own = int((prefix[last] - prefix[first]).sum())  # their own positions
        mid = int(((last - first) * (start + stop - 1)).sum(dtype=np.int64))  # 2 × mid positions
        twice_u += mid - 2 * own
        t = stop - start
        tie_sum = int((t**3 - t).sum(dtype=np.int64))
    return RankStats(
        u=twice_u / 2,
        n_pos=n_pos,
        n_neg=n - n_pos,
        tie_sum=float(tie_sum) if ties else float("nan"),
    )


def map_threads(fn: Callable[[int], T], n: int) -> list[T]:
    """Run ``fn(i)`` for ``i < n`` on as many threads as torch uses; results in order.

    Each thread takes one contiguous block of indices: one task per thread, so small maps
    do not pay a task hand-off each.
    """
    workers = max(1, min(n, torch.get_num_threads()))
    if workers == 1:
        return [fn(i) for i in range(n)]
    bounds = [n * k // workers for k in range(workers + 1)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        blocks = pool.map(
            lambda k: [fn(i) for i in range(bounds[k], bounds[k + 1])], range(workers)
        )
        return [r for block in blocks for r in block]


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
    (:class:`~groundbench.metrics._permap.MapSummary`: extremes, the peak's ties, counts and
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
) -> list[MapSummary] | None:
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
        view = map_views(h, valid, inputs.region[rows])
        done = map_threads(lambda i: summarise(view(i)), h.shape[0])
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
        done = map_threads(lambda k: rank_stats(*get(todo[k]), ties=True), len(todo))
        for i, s in zip(todo, done, strict=True):
            stats[i] = s
    return [s if u else None for s, u in zip(stats, usable, strict=True)]
