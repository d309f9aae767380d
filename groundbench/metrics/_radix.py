"""Compiled rank kernels of the CPU metric path: one exact radix sort per map (numba).

The rank metrics need one exact ordering of each map. numpy's comparison sort costs about
25 ns per float32 of a 480×640 map, so these sort by radix instead: each float becomes an
unsigned key in the same order (:func:`_key`), minus the map's smallest key, packed with what
must travel with it (the region flag, or the value's place), and sorted in as many stable
passes of at most 11 bits as the keys' span needs. One walk over the sorted keys then gives
the tie groups and the rank sums, in integers. The kernels release the GIL (maps run on
threads), take 1-D C-contiguous arrays, and compile on first use (cached on disk).
"""

from __future__ import annotations

import numba
import numpy as np

_SIGN = np.uint32(0x80000000)
# above this many pixels Σ (t³ - t) may pass 2⁶³: the float64 sum is used instead
EXACT_TIE_PIXELS = 1 << 21

_jit = numba.njit(nogil=True, cache=True)


@_jit
def _key(bits):
    """uint32 key of a float32's bits, ordered as the floats; ``-0.0`` keys as ``+0.0``."""
    if bits == _SIGN:
        bits = np.uint32(0)
    if bits & _SIGN:
        return ~bits
    return bits | _SIGN


@_jit
def _key_range(bits):
    lo = np.uint32(0xFFFFFFFF)
    hi = np.uint32(0)
    for i in range(bits.size):
        k = _key(bits[i])
        lo = min(lo, k)
        hi = max(hi, k)
    return lo, hi


@_jit
def _bit_length(span):
    n = 0
    while n < 32 and (np.uint64(span) >> np.uint64(n)) != 0:
        n += 1
    return n


@_jit
def _plan(bits):
    """``(passes, width)``: at most 3 passes of at most 11 bits covering ``bits`` (<= 33)."""
    passes = max(1, (bits + 10) // 11)
    return passes, (bits + passes - 1) // passes


@_jit
def _count(hist, x, width, mask):
    """Add packed key ``x`` (shifted to its sort bits) to the 3 digit histograms."""
    hist[0, x & mask] += 1
    hist[1, (x >> np.uint64(width)) & mask] += 1
    hist[2, (x >> np.uint64(2 * width)) & mask] += 1


@_jit
def _add_ties(ties, ties_f, t):
    """Add a group of ``t`` equal values' ``t³ - t`` to the int64 and float64 tie sums."""
    if t > 1:
        ties += t * t * t - t
        ties_f += float(t) * float(t) * float(t) - float(t)
    return ties, ties_f


@_jit
def _to_offsets(h, n):
    """Turn digit counts ``h`` into each digit's first output position, in place. False
    (``h`` untouched) when one digit holds all ``n`` keys: the pass would move nothing."""
    if h.max() == n:
        return False
    total = 0
    for j in range(h.size):
        c = h[j]
        h[j] = total
        total += c
    return True


@_jit
def _radix_sort(a, hist, low_bit, passes, width):
    """Sort packed ``a`` stably by ``passes`` digits of ``width`` bits from ``low_bit`` up,
    given their histograms (``hist``, filled by :func:`_count`); returns the sorted array
    (``a`` or a new one; ``a`` is overwritten)."""
    mask = np.uint64((1 << width) - 1)
    src = a
    dst = np.empty_like(a)
    for p in range(passes):
        h = hist[p]
        if not _to_offsets(h, a.size):
            continue
        shift = np.uint64(low_bit + p * width)
        for i in range(src.size):
            x = src[i]
            d = (np.uint64(x) >> shift) & mask
            dst[h[d]] = x
            h[d] += 1
        src, dst = dst, src
    return src


@_jit
def _flag_rank_sums(packed):
    """Walk keys sorted with the flag in the lowest bit: ``(Σ 2 p̄, Σ t³ - t, float64 of it,
    flagged count)``, ``p̄`` the 0-based mid position of each flagged value's tie group."""
    n = packed.size
    one = np.uint64(1)
    twice = np.int64(0)
    ties = np.int64(0)
    ties_f = 0.0
    flagged = np.int64(0)
    i = 0
    while i < n:
        k = np.uint64(packed[i]) >> one
        j = i
        f = np.int64(0)
        while j < n and (np.uint64(packed[j]) >> one) == k:
            f += np.int64(np.uint64(packed[j]) & one)
            j += 1
        ties, ties_f = _add_ties(ties, ties_f, np.int64(j - i))
        twice += f * (i + j - 1)
        flagged += f
        i = j
    return twice, ties, ties_f, flagged


@_jit
def _sorted_with_flag(bits, flag, lo, out, width):
    """Keys minus ``lo`` with the flag below them, in ``out`` (uint32/64), radix-sorted."""
    passes, digit = _plan(width)
    mask = np.uint64((1 << digit) - 1)
    hist = np.zeros((3, 1 << digit), np.int64)
    for i in range(bits.size):
        x = (np.uint64(_key(bits[i]) - lo) << np.uint64(1)) | np.uint64(flag[i])
        out[i] = x
        _count(hist, x, digit, mask)
    return _radix_sort(out, hist, 0, passes, digit)


@_jit
def rank_sums(values, flag):
    """Rank sums of float32 ``values`` (finite) split by bool ``flag``, in one radix sort.

    Returns:
        ``(twice_u, tie_sum, tie_sum_f, n_flag)``: twice the Mann–Whitney ``U`` of the flagged
        values against the others (ties ½), ``Σ (t³ - t)`` over groups of equal values (int64,
        exact below :data:`EXACT_TIE_PIXELS` values) and the same in float64, and the number
        of flagged values.
    """
    bits = values.view(np.uint32)
    n = bits.size
    if n == 0:
        return np.int64(0), np.int64(0), 0.0, np.int64(0)
    lo, hi = _key_range(bits)
    width = _bit_length(hi - lo) + 1  # the flag below the key
    if width <= 32:
        a = _sorted_with_flag(bits, flag, lo, np.empty(n, np.uint32), width)
        twice, ties, ties_f, flagged = _flag_rank_sums(a)
    else:
        b = _sorted_with_flag(bits, flag, lo, np.empty(n, np.uint64), width)
        twice, ties, ties_f, flagged = _flag_rank_sums(b)
    return twice - flagged * (flagged - 1), ties, ties_f, flagged


@_jit
def flagged_twice_ranks(values, flag):
    """Doubled 1-based mid-ranks of the flagged values among all float32 ``values`` (finite,
    fewer than 2³¹).

    Each key travels with the flag and, for a flagged value, its place among the flagged
    ones (bit 31 and bits 0-30 below the key), so the walk over the sorted keys writes each
    flagged rank straight to its place.

    Returns:
        ``(ranks, tie_sum, tie_sum_f)``: int64 ``2 r`` of each flagged value, in the order of
        ``values``; ``Σ (t³ - t)`` over all groups of equal values (int64 and float64, as
        :func:`rank_sums`).
    """
    bits = values.view(np.uint32)
    n = bits.size
    if n == 0:
        return np.empty(0, np.int64), np.int64(0), 0.0
    lo, hi = _key_range(bits)
    passes, digit = _plan(_bit_length(hi - lo))
    mask = np.uint64((1 << digit) - 1)
    hist = np.zeros((3, 1 << digit), np.int64)
    packed = np.empty(n, np.uint64)
    marked = np.uint64(1 << 31)
    count = 0
    for i in range(n):
        k = np.uint64(_key(bits[i]) - lo)
        if flag[i]:
            packed[i] = (k << np.uint64(32)) | marked | np.uint64(count)
            count += 1
        else:
            packed[i] = k << np.uint64(32)
        _count(hist, k, digit, mask)
    packed = _radix_sort(packed, hist, 32, passes, digit)
    ranks = np.empty(count, np.int64)
    place = np.uint64(0x7FFFFFFF)
    ties = np.int64(0)
    ties_f = 0.0
    i = 0
    while i < n:
        k = packed[i] >> np.uint64(32)
        j = i
        while j < n and (packed[j] >> np.uint64(32)) == k:
            j += 1
        ties, ties_f = _add_ties(ties, ties_f, np.int64(j - i))
        for m in range(i, j):
            if packed[m] & marked:
                ranks[np.int64(packed[m] & place)] = i + j + 1
        i = j
    return ranks, ties, ties_f


def twice_ranks(values: np.ndarray) -> tuple[np.ndarray, int, float]:
    """Doubled 1-based mid-ranks of 1-D finite float32/float64 ``values``, in their order.

    The keys (as :func:`_key`, 64-bit for float64) minus the smallest are radix-sorted with
    their positions beside them, in as many passes of at most 11 bits as their span needs.

    Returns:
        ``(ranks, tie_sum, tie_sum_f)``: int64 ``2 r``; ``Σ (t³ - t)`` over the groups of
        equal values (int64, exact below :data:`EXACT_TIE_PIXELS` values, and float64).
    """
    values = np.ascontiguousarray(values)
    return _twice_ranks(values.view(np.uint32 if values.dtype == np.float32 else np.uint64))


@_jit
def _twice_ranks(bits):
    """:func:`twice_ranks` of the floats whose unsigned bits are ``bits``."""
    n = bits.size
    sign = np.uint64(1) << np.uint64(bits.itemsize * 8 - 1)
    keys = np.empty(n, np.uint64)
    lo, hi = ~np.uint64(0), np.uint64(0)
    for i in range(n):
        u = np.uint64(bits[i])
        if u == sign:
            u = np.uint64(0)  # -0.0 ranks as +0.0
        k = (~u & ((sign << np.uint64(1)) - np.uint64(1))) if u & sign else u | sign
        keys[i] = k
        lo = min(lo, k)
        hi = max(hi, k)
    width = 0
    while width < 64 and ((hi - lo) >> np.uint64(width)) != 0:
        width += 1
    passes = max(1, (width + 10) // 11)
    digit = (width + passes - 1) // passes
    mask = np.uint64((1 << digit) - 1)
    hist = np.zeros((passes, 1 << digit), np.int64)
    for i in range(n):
        keys[i] -= lo
        for p in range(passes):
            hist[p, (keys[i] >> np.uint64(p * digit)) & mask] += 1
    order = np.arange(n)
    keys_to, order_to = np.empty_like(keys), np.empty_like(order)
    for p in range(passes):
        h = hist[p]
        if not _to_offsets(h, n):
            continue
        shift = np.uint64(p * digit)
        for i in range(n):
            d = (keys[i] >> shift) & mask
            keys_to[h[d]] = keys[i]
            order_to[h[d]] = order[i]
            h[d] += 1
        keys, keys_to = keys_to, keys
        order, order_to = order_to, order
    ranks = np.empty(n, np.int64)
    ties = np.int64(0)
    ties_f = 0.0
    i = 0
    while i < n:
        j = i
        while j < n and keys[j] == keys[i]:
            j += 1
        ties, ties_f = _add_ties(ties, ties_f, np.int64(j - i))
        for m in range(i, j):
            ranks[order[m]] = i + j + 1
        i = j
    return ranks, ties, ties_f
