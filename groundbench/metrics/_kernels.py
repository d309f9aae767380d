"""Compiled per-map kernels of the CPU metric path (numba, ``nogil``: maps run on threads).

* Ranks (:func:`rank_sums`, :func:`flagged_twice_ranks`). The rank metrics need one exact
  ordering of each map. numpy's comparison sort costs about 25 ns per float32 of a 480×640
  map, so these sort by radix instead: each float32 becomes a uint32 key in the same order
  (:func:`_key`), minus the map's smallest key, packed with what must travel with it (the
  region flag, or the pixel index), and sorted in as many stable passes of at most 11 bits as
  the keys' span needs. One walk over the sorted keys then gives the tie groups and the rank
  sums, in integers.
* Everything else (:func:`summary`, :func:`summaries`): extremes, NaN/±Inf, the maximum's
  ties, region counts and float64 sums of a map in one read of it, block by block.

Arrays are C-contiguous (1-D maps, or 2-D rows of maps); kernels compile on first use and
are cached on disk.
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
def _radix_sort(a, hist, low_bit, passes, width):
    """Sort packed ``a`` stably by ``passes`` digits of ``width`` bits from ``low_bit`` up,
    given their histograms (``hist``, filled by :func:`_count`); returns the sorted array
    (``a`` or a new one; ``a`` is overwritten)."""
    mask = np.uint64((1 << width) - 1)
    src = a
    dst = np.empty_like(a)
    for p in range(passes):
        h = hist[p]
        if h.max() == a.size:  # one digit value: this pass would not move anything
            continue
        total = 0
        for j in range(h.size):
            c = h[j]
            h[j] = total
            total += c
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
        t = np.int64(j - i)
        if t > 1:
            ties += t * t * t - t
            ties_f += float(t) * float(t) * float(t) - float(t)
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
        t = np.int64(j - i)
        if t > 1:
            ties += t * t * t - t
            ties_f += float(t) * float(t) * float(t) - float(t)
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
        if h.max() == n:
            continue
        total = 0
        for j in range(h.size):
            c = h[j]
            h[j] = total
            total += c
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
        t = np.int64(j - i)
        if t > 1:
            ties += t * t * t - t
            ties_f += float(t) * float(t) * float(t) - float(t)
        for m in range(i, j):
            ranks[order[m]] = i + j + 1
        i = j
    return ranks, ties, ties_f


# Values per block of the one-pass summary. A block (16-32 KB) is read from memory once and
# then stays in the L1 cache while the integer pass, the sums and the squared deviations
# read it. Within a block the float64 additions may be reordered (so they vectorise), which
# costs at most ~BLOCK / 32 ulp of the block's absolute sum; blocks then combine exactly in
# order: sums with compensation, squared deviations by Chan et al.'s pairwise update.
BLOCK = 4096

# stride of the first, sparse look for a region pixel (:data:`ANY`): a few cache lines per
# map instead of reading the region up to its first pixel
PROBE = 1021

# what :func:`summary` computes beyond the peak: nothing but whether the region is empty, the
# region count, also the sums, also the squared deviations
ANY, PEAK, SUMS, SPREAD = -1, 0, 1, 2


@numba.njit(nogil=True, cache=True, fastmath={"reassoc"})
def _block_sums(values, region):
    total = 0.0
    inside = 0.0
    for i in range(values.size):
        v = np.float64(values[i])
        total += v
        inside += v if region[i] else 0.0
    return total, inside


@numba.njit(nogil=True, cache=True, fastmath={"reassoc"})
def _block_sq_dev(values, mean):
    total = 0.0
    for i in range(values.size):
        d = np.float64(values[i]) - mean
        total += d * d
    return total


@_jit
def _add(total, comp, x):
    """Neumaier's compensated addition: ``total + comp`` stays the sum to ~1 ulp."""
    t = total + x
    if abs(total) >= abs(x):
        comp += (total - t) + x
    else:
        comp += (x - t) + total
    return t, comp


@_jit
def _block_peak(bits, ubits, region):
    """One non-empty block: ``(max signed bits, max unsigned bits, min unsigned bits, region
    count)``. Non-negative floats order as their signed bits, negative ones (and ``-0.0``)
    as their unsigned bits, reversed and above every non-negative one; :func:`summary`
    reads min, max and NaN/±Inf off these three reductions."""
    s_hi, u_hi, u_lo = bits[0], ubits[0], ubits[0]
    for i in range(bits.size):
        s_hi = max(s_hi, bits[i])
        u = ubits[i]
        u_hi = max(u_hi, u)
        u_lo = min(u_lo, u)
    count = 0
    for i in range(region.size):
        count += region[i]
    return s_hi, u_hi, u_lo, count


@_jit
def _block_any(region):
    seen = 0
    for i in range(region.size):
        seen |= region[i]
    return seen != 0


@_jit
def _count_equal(ubits, a, b):
    count = 0
    for i in range(ubits.size):
        count += (ubits[i] == a) | (ubits[i] == b)
    return count


@_jit
def _float_of(values, ubits, pattern):
    """The float of the unsigned bit ``pattern`` (same width as ``ubits``)."""
    out = np.empty(1, values.dtype)
    out.view(ubits.dtype)[0] = pattern
    return out[0]


@_jit
def summary(values, bits, ubits, region, exp, sign, what):
    """One map's extremes, maximum ties, region count and float64 sums: one read of the map.

    Args:
        values: 1-D float32/float64 valid pixel values.
        bits, ubits: ``values`` viewed as int32/int64 and uint32/uint64.
        region: 1-D uint8 (0/1) of the same length, or empty (counts are then 0; ``what``
            must be :data:`ANY` or :data:`PEAK`).
        exp, sign: of ``ubits``' type: the exponent field and the sign bit.
        what: :data:`ANY` (``n_pos`` only 1 or 0: whether the region has a pixel, found
            without reading all of it), :data:`PEAK`, :data:`SUMS` (also ``Σ x`` and
            ``Σ_region x``) or :data:`SPREAD` (also ``Σ (x - mean)²``); sums not asked for
            are 0.

    Returns:
        ``(lo, hi, nonfinite, n_pos, tied_in_region, total, region_total, sq_dev, tied)``:
        min and max (meaningless when ``nonfinite``: a NaN or ±Inf value), the region count
        and how many tied positions are in it, the sums, and the int64 increasing positions
        equal to the max (none when ``nonfinite`` or no value; ``-0.0`` ties with ``+0.0``).
    """
    n = values.size
    blocks = (n + BLOCK - 1) // BLOCK
    block_s_hi = np.empty(blocks, bits.dtype)
    block_u_lo = np.empty(blocks, ubits.dtype)
    s_hi, u_hi, u_lo = bits.dtype.type(-1), ubits.dtype.type(0), ~ubits.dtype.type(0)
    n_pos = 0
    counted = region.size == n
    total = comp = inside = inside_comp = 0.0
    done, mean, sq_dev = 0, 0.0, 0.0
    for b in range(blocks):
        start, stop = b * BLOCK, min(n, (b + 1) * BLOCK)
        reg = region[start:stop] if counted and what != ANY else region[:0]
        s_hi_b, u_hi_b, u_lo_b, count = _block_peak(bits[start:stop], ubits[start:stop], reg)
        block_s_hi[b], block_u_lo[b] = s_hi_b, u_lo_b
        s_hi = s_hi_b if b == 0 else max(s_hi, s_hi_b)
        u_hi = max(u_hi, u_hi_b)
        u_lo = min(u_lo, u_lo_b)
        n_pos += count
        if what >= SUMS:
            t, r = _block_sums(values[start:stop], reg)
            total, comp = _add(total, comp, t)
            inside, inside_comp = _add(inside, inside_comp, r)
            if what == SPREAD:
                size = stop - start
                mean_b = t / size
                delta = mean_b - mean
                grown = done + size
                mean += delta * size / grown
                sq_dev += _block_sq_dev(values[start:stop], mean_b) + delta * delta * (
                    done * size / grown
                )
                done = grown
    non_negative = s_hi >= 0  # some value is +0.0 or above
    negative = u_hi >= sign  # some value is -0.0 or below
    nonfinite = (non_negative and s_hi >= bits.dtype.type(exp)) or (negative and u_hi >= sign | exp)
    # (a mixed signed/unsigned expression would go through float64: keep each in its type)
    lo = _float_of(values, ubits, u_hi if negative else u_lo) if n else np.inf
    hi_bits = ubits.dtype.type(s_hi) if non_negative else u_lo
    hi = _float_of(values, ubits, hi_bits) if n else -np.inf
    tied_in_region = 0
    found = [np.int64(0) for _ in range(0)]
    if n and not nonfinite:
        # ties are the max's bit pattern, and for a zero max the other zero's too
        other = hi_bits ^ sign if hi == 0 else hi_bits
        for b in range(blocks):
            reaches = block_s_hi[b] == s_hi if non_negative else block_u_lo[b] == u_lo
            # a zero max also ties the other zero, which a block's -0.0 holds as its u_lo
            if reaches or (hi == 0 and block_u_lo[b] == sign):
                start, stop = b * BLOCK, min(n, (b + 1) * BLOCK)
                left = _count_equal(ubits[start:stop], hi_bits, other)
                i = start
                while left:
                    if ubits[i] == hi_bits or ubits[i] == other:
                        found.append(i)
                        left -= 1
                        if counted:
                            tied_in_region += region[i]
                    i += 1
    if what == ANY and counted:
        n_pos = 1 if tied_in_region else 0  # a maximum in the region spares the search
        # one byte in every PROBE first (a box of a few dozen pixels holds one), then all
        for i in range(0 if n_pos == 0 else n, n, PROBE):
            if region[i]:
                n_pos = 1
                break
        for start in range(0 if n_pos == 0 else n, n, 4 * BLOCK):  # ORs that vectorise
            if _block_any(region[start : start + 4 * BLOCK]):
                n_pos = 1
                break
    tied = np.empty(len(found), np.int64)
    for j, i in enumerate(found):
        tied[j] = i
    sums = (total + comp, inside + inside_comp, sq_dev)
    return (lo, hi, nonfinite, n_pos, tied_in_region) + sums + (tied,)


@_jit
def summaries(maps, bits, ubits, regions, exp, sign, what):
    """:func:`summary` of each row of 2-D ``maps`` (``regions``: 2-D uint8, or one empty row).

    Returns:
        ``(numbers, tied, ends)``: ``(B, 8)`` float64, row ``i`` the first 8 results of map
        ``i`` (flags and counts as floats); all tied positions, concatenated; ``tied`` of map
        ``i`` ending at ``ends[i]``.
    """
    B = maps.shape[0]
    numbers = np.empty((B, 8))
    parts = []
    ends = np.empty(B, np.int64)
    total = 0
    for i in range(B):
        reg = regions[i] if regions.shape[0] == B else regions[0]
        lo, hi, nonfinite, n_pos, in_region, s_all, s_in, sq, tied = summary(
            maps[i], bits[i], ubits[i], reg, exp, sign, what
        )
        numbers[i, 0], numbers[i, 1], numbers[i, 2], numbers[i, 3] = lo, hi, nonfinite, n_pos
        numbers[i, 4], numbers[i, 5], numbers[i, 6], numbers[i, 7] = in_region, s_all, s_in, sq
        parts.append(tied)
        total += tied.size
        ends[i] = total
    flat = np.empty(total, np.int64)
    start = 0
    for i in range(B):
        flat[start : ends[i]] = parts[i]
        start = ends[i]
    return numbers, flat, ends
