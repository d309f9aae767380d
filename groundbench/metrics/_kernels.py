"""Compiled per-map kernels of the CPU metric path (numba, ``nogil``: maps run on threads).

The rank metrics need one exact ordering of each map. numpy's comparison sort costs about
25 ns per float32 of a 480×640 map, so these kernels sort by radix instead: each float32
becomes a uint32 key in the same order (:func:`_key`), minus the map's smallest key, packed
with what must travel with it (the region flag, or the pixel index), and sorted in as many
stable passes of at most 11 bits as the keys' span needs. One walk over the sorted keys then
gives the tie groups and the rank sums, in integers.

All kernels take 1-D C-contiguous arrays and compile on first use (cached on disk).
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
    """Doubled 1-based mid-ranks of the flagged values among all float32 ``values`` (finite).

    Returns:
        ``(ranks, tie_sum, tie_sum_f)``: int64 ``2 r`` of each flagged value, in the order of
        ``values``; ``Σ (t³ - t)`` over all groups of equal values (int64 and float64, as
        :func:`rank_sums`).
    """
    bits = values.view(np.uint32)
    n = bits.size
    slot = np.empty(n, np.int64)
    count = 0
    for i in range(n):
        slot[i] = count
        count += 1 if flag[i] else 0
    ranks = np.empty(count, np.int64)
    if n == 0:
        return ranks, np.int64(0), 0.0
    lo, hi = _key_range(bits)
    passes, digit = _plan(_bit_length(hi - lo))
    mask = np.uint64((1 << digit) - 1)
    hist = np.zeros((3, 1 << digit), np.int64)
    packed = np.empty(n, np.uint64)
    for i in range(n):
        k = np.uint64(_key(bits[i]) - lo)
        packed[i] = (k << np.uint64(32)) | np.uint64(i)
        _count(hist, k, digit, mask)
    packed = _radix_sort(packed, hist, 32, passes, digit)
    low = np.uint64(0xFFFFFFFF)
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
            pixel = np.int64(packed[m] & low)
            if flag[pixel]:
                ranks[slot[pixel]] = i + j + 1
        i = j
    return ranks, ties, ties_f


# Values per block of the float64 sums: within a block the additions may be reordered (so
# they vectorise), which costs at most ~BLOCK / 32 ulp of the block's absolute sum; the
# blocks' sums then add with compensation.
BLOCK = 4096


@numba.njit(nogil=True, cache=True, fastmath={"reassoc"})
def _block_sums(values, region):
    total = 0.0
    inside = 0.0
    for i in range(values.size):
        v = np.float64(values[i])
        total += v
        inside += v * region[i]
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
def sums(values, region, spread):
    """``(Σ x, Σ_region x, Σ (x - mean)²)`` in float64 of 1-D float32/64 ``values``.

    ``region`` is a 1-D uint8 (0/1) array of the same length; the third sum (a second pass,
    around the mean of the first) is 0 unless ``spread``. Relative error about ``BLOCK / 32``
    ulp of the absolute sums, whatever the map's size.
    """
    n = values.size
    total = comp = inside = inside_comp = 0.0
    for start in range(0, n, BLOCK):
        t, r = _block_sums(values[start : start + BLOCK], region[start : start + BLOCK])
        total, comp = _add(total, comp, t)
        inside, inside_comp = _add(inside, inside_comp, r)
    total += comp
    inside += inside_comp
    mean = total / max(n, 1)
    sq = sq_comp = 0.0
    for start in range(0, n if spread else 0, BLOCK):
        sq, sq_comp = _add(sq, sq_comp, _block_sq_dev(values[start : start + BLOCK], mean))
    return total, inside, sq + sq_comp


@_jit
def _block_peak(bits, region, low, shift):
    """One block: ``(min key, max key, max |bits|, region count)``; keys as :func:`peak`."""
    k_lo, k_hi, mag = low, ~low, bits.dtype.type(0)
    count = 0
    for i in range(bits.size):
        u = bits[i]
        mag = max(mag, u & low)
        k = u ^ ((u >> shift) & low)
        k_lo = min(k_lo, k)
        k_hi = max(k_hi, k)
    for i in range(region.size):
        count += region[i]
    return k_lo, k_hi, mag, count


@_jit
def _value_of(key, values, bits, low, shift):
    """The float whose key (as :func:`peak`) is ``key``."""
    out = np.empty(1, values.dtype)
    out.view(bits.dtype)[0] = key ^ ((key >> shift) & low)
    return out[0]


@_jit
def peak(values, bits, region, low, exp, shift):
    """Extremes, maximum ties and region count of one map, in one pass (plus the peak's block).

    Args:
        values: 1-D float32/float64 valid pixel values.
        bits: ``values`` viewed as int32/int64.
        region: 1-D uint8 (0/1) of the same length, or empty (counts are then 0).
        low, exp, shift: of ``bits``' type: all bits but the sign, the exponent field, and
            the sign's position (``31`` or ``63``).

    Returns:
        ``(lo, hi, nonfinite, tied, n_pos, tied_in_region)``: min and max (meaningless when
        ``nonfinite``: a NaN or ±Inf value); the increasing positions equal to the max (empty
        when ``nonfinite`` or no value; ``-0.0`` ties with ``+0.0``); the region count and
        how many tied positions are in it. Integers compare as the floats through the keys
        ``b ^ ((b >> shift) & low)``: max and min vectorise as integer reductions.
    """
    n = values.size
    blocks = (n + BLOCK - 1) // BLOCK
    block_hi = np.empty(blocks, bits.dtype)
    k_lo, k_hi, mag = low, ~low, bits.dtype.type(0)
    n_pos = 0
    counted = region.size == n
    for b in range(blocks):
        start = b * BLOCK
        lo_b, hi_b, mag_b, count = _block_peak(
            bits[start : start + BLOCK],
            region[start : start + BLOCK] if counted else region,
            low,
            shift,
        )
        block_hi[b] = hi_b
        k_lo = min(k_lo, lo_b)
        k_hi = max(k_hi, hi_b)
        mag = max(mag, mag_b)
        n_pos += count
    nonfinite = mag >= exp
    lo = _value_of(k_lo, values, bits, low, shift) if n else np.inf
    hi = _value_of(k_hi, values, bits, low, shift) if n else -np.inf
    found = []
    tied_in_region = 0
    if n and not nonfinite:
        for b in range(blocks):
            # a block whose max is the other zero can hold ties of a zero max
            if block_hi[b] == k_hi or (hi == 0 and (block_hi[b] == 0 or block_hi[b] == -1)):
                for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
                    if values[i] == hi:
                        found.append(i)
                        if counted:
                            tied_in_region += region[i]
    tied = np.empty(len(found), np.int64)
    for j in range(len(found)):
        tied[j] = found[j]
    return lo, hi, nonfinite, tied, n_pos, tied_in_region
