"""The CPU path of the metrics: kernels over one map at a time, maps spread on threads.

A batched torch pass materialises a ``(B, Y, X)`` temporary per step (the tied mask, the
masked copy, the float64 cast), each written and read back from memory. One map of 480×640
float32 (1.2 MB) stays in the cache between the kernels that read it, so working map by map
reads each map from memory about once. The passes are compiled loops
(:mod:`~groundbench.metrics._scan`) that release the GIL, so the maps run in parallel on
:func:`map_blocks` threads.

A map's numbers depend on that map alone (never on its batch): a map whose pixels are all
valid is read whole, any other is first compressed to its valid pixels.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from groundbench.metrics import _scan

T = TypeVar("T")


_POOL: dict[tuple[int, int], ThreadPoolExecutor] = {}  # (process id, threads) -> pool
_POOL_LOCK = threading.Lock()
_POOL_PREFIX = "groundbench-metrics"
# pixels of work that pay for handing a block to another thread (a few maps of 480×640)
THREAD_PIXELS = 1 << 20


def _pool(threads: int) -> ThreadPoolExecutor:
    """A thread pool of ``threads`` workers, kept for later calls (new after a fork)."""
    key = (os.getpid(), threads)
    with _POOL_LOCK:
        if key not in _POOL:
            for pid, size in list(_POOL):
                old = _POOL.pop((pid, size))
                if pid == os.getpid():  # a forked child's copies have no threads behind them
                    old.shutdown(wait=False)
            _POOL[key] = ThreadPoolExecutor(threads, thread_name_prefix=_POOL_PREFIX)
        return _POOL[key]


def map_blocks(fn: Callable[[int, int], None], n: int, pixels: int = THREAD_PIXELS) -> None:
    """Run ``fn(start, stop)`` on contiguous blocks covering ``range(n)``, one per torch thread.

    One task per thread, so small maps do not pay a task hand-off each; the kernels release
    the GIL, so the blocks run in parallel on a pool kept between calls. Items of ``pixels``
    pixels each get a thread per :data:`THREAD_PIXELS` at most (a hand-off costs about as
    much as reading that many). Called from one of the pool's own threads, it runs inline
    (waiting on the pool there could deadlock it).
    """
    threads = torch.get_num_threads()
    if threading.current_thread().name.startswith(_POOL_PREFIX):
        threads = 1
    workers = max(1, min(n, threads, n * pixels // THREAD_PIXELS))
    bounds = [n * k // workers for k in range(workers + 1)]
    if workers == 1:
        fn(0, n)
        return
    # the caller takes the first block itself: one hand-off fewer, and no idle wait
    pending = [
        _pool(threads).submit(fn, a, b) for a, b in zip(bounds[1:-1], bounds[2:], strict=True)
    ]
    try:
        fn(bounds[0], bounds[1])
    finally:
        for future in pending:
            future.result()  # waits for every block; re-raises the first error


def map_threads(fn: Callable[[int], T], n: int, pixels: int = THREAD_PIXELS) -> list[T]:
    """Run ``fn(i)`` for ``i < n`` (``pixels`` each) on :func:`map_blocks` threads; results in
    order."""
    out: list[T] = [None] * n  # type: ignore[list-item]

    def block(start: int, stop: int) -> None:
        for i in range(start, stop):
            out[i] = fn(i)

    map_blocks(block, n, pixels)
    return out


def valid_masks(
    valid: torch.Tensor | None, *masks: torch.Tensor
) -> Callable[[int], tuple[np.ndarray, ...]]:
    """Return ``i -> masks of map i``, flat bool arrays over its valid pixels (CPU ``masks``)."""
    B = masks[0].shape[0]
    m_np = [m.numpy().reshape(B, -1) for m in masks]
    v_np = None if valid is None else valid.numpy().reshape(B, -1)

    def of(i: int) -> tuple[np.ndarray, ...]:
        if v_np is None or v_np[i].all():
            return tuple(m[i] for m in m_np)
        return tuple(m[i][v_np[i]] for m in m_np)

    return of


# signed and unsigned int views, and (exponent field, sign bit) of each float dtype
_BITS = {
    np.dtype(np.float32): (np.int32, np.uint32, (np.uint32(0x7F800000), np.uint32(1 << 31))),
    np.dtype(np.float64): (
        np.int64,
        np.uint64,
        (np.uint64(0x7FF0000000000000), np.uint64(1 << 63)),
    ),
}
_NO_REGION = np.zeros((1, 0), dtype=np.uint8)

ANY, PEAK, SUMS, SPREAD = _scan.ANY, _scan.PEAK, _scan.SUMS, _scan.SPREAD


@dataclass(frozen=True)
class Summaries:
    """What pointing, soft-IoU, NSS, AUC and Spearman read of each map of a chunk (CPU).

    Tensors are ``(B,)``: ``lo``, ``hi`` (float64; meaningless where ``nonfinite``: a NaN or
    ±Inf valid pixel), ``nonfinite`` (bool), ``n`` valid and ``n_pos`` valid region pixels,
    ``tied_in_region`` (long: maxima in the region), and the float64 sums ``total``
    (``Σ h``), ``region_total`` (``Σ_R h``) and ``sq_dev`` (``Σ (h - mean)²``), all over the
    valid pixels (0 where not asked for). ``tied``: the flat pixel indices ``y * X + x``
    equal to each map's maximum (int64; map by map, each increasing; none where
    ``nonfinite``), ``tie_count`` (long) of them per map.
    """

    lo: torch.Tensor
    hi: torch.Tensor
    nonfinite: torch.Tensor
    n: torch.Tensor
    n_pos: torch.Tensor
    tied_in_region: torch.Tensor
    total: torch.Tensor
    region_total: torch.Tensor
    sq_dev: torch.Tensor
    tied: np.ndarray
    tie_count: torch.Tensor

    def tied_of(self, i: int) -> np.ndarray:
        """The tied pixel indices of map ``i``."""
        ends = np.cumsum(self.tie_count.numpy())
        return self.tied[ends[i] - self.tie_count[i].item() : ends[i]]


def summarise(
    h: torch.Tensor, valid: torch.Tensor | None, region: torch.Tensor | None, what: int
) -> Summaries:
    """:class:`Summaries` of CPU float32/float64 maps ``h`` ``(B, Y, X)``, one read of each.

    ``what``: :data:`PEAK` (extremes, ties, counts), :data:`SUMS` (also ``total`` and
    ``region_total``) or :data:`SPREAD` (also ``sq_dev``); sums need a ``region``. With
    :data:`ANY`, ``n_pos`` is only 1 or 0 (whether the region has a valid pixel), found
    without reading the whole region. Maps run on :func:`map_blocks` threads; a map with
    padding is first compressed to its valid pixels (its numbers depend on that map alone).
    """
    B = h.shape[0]
    h_np = np.ascontiguousarray(h.detach().numpy().reshape(B, -1))
    int_type, uint_type, constants = _BITS[h_np.dtype]
    bits, ubits = h_np.view(int_type), h_np.view(uint_type)
    r_np = _NO_REGION if region is None else region.numpy().reshape(B, -1).view(np.uint8)
    v_np = None if valid is None else valid.numpy().reshape(B, -1)
    numbers = np.empty((B, 8))
    tied: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * B  # per thread block or map
    counts = np.zeros(B, dtype=np.int64)
    n = np.full(B, h_np.shape[1], dtype=np.int64)

    def block(start: int, stop: int) -> None:
        if start == stop:
            return
        if v_np is None:
            regions = r_np if region is None else r_np[start:stop]
            out, flat, ends = _scan.summaries(
                h_np[start:stop], bits[start:stop], ubits[start:stop], regions, *constants, what
            )
            numbers[start:stop] = out
            tied[start] = flat
            counts[start:stop] = np.diff(ends, prepend=0)
            return
        for i in range(start, stop):
            keep = v_np[i]
            full = bool(keep.all())
            x = h_np[i] if full else h_np[i][keep]
            reg = r_np[0] if region is None else (r_np[i] if full else r_np[i][keep])
            *first, positions = _scan.summary(
                x, x.view(int_type), x.view(uint_type), reg, *constants, what
            )
            numbers[i] = first
            tied[i] = positions if full else np.flatnonzero(keep)[positions]
            counts[i] = positions.size
            n[i] = x.size

    map_blocks(block, B, pixels=max(h_np.shape[1], 1))
    col = torch.from_numpy(numbers)
    return Summaries(
        lo=col[:, 0],
        hi=col[:, 1],
        nonfinite=col[:, 2] != 0,
        n=torch.from_numpy(n),
        n_pos=col[:, 3].long(),
        tied_in_region=col[:, 4].long(),
        total=col[:, 5],
        region_total=col[:, 6],
        sq_dev=col[:, 7],
        tied=np.concatenate(tied),
        tie_count=torch.from_numpy(counts),
    )
