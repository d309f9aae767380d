"""Compiled one-read summaries of maps for the CPU metric path (numba).

:func:`summary` reads a map once, block by block, and returns its extremes, NaN/±Inf, the
maximum's ties, region counts and float64 sums; :func:`summaries` does it for the rows of a
chunk in one call. The kernels release the GIL (blocks of maps run on threads), take
C-contiguous arrays, and compile on first use (cached on disk).
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(nogil=True, cache=True)


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
