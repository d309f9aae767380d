"""Spearman's rank correlation between the heatmap and the ground-truth saliency map.

The target ``G`` is the region indicator (``sigma_px = 0``) or that indicator blurred by a
Gaussian of standard deviation ``sigma_px`` pixels (``scipy.ndimage.gaussian_filter``,
truncated at 4 sigma, zero outside the image). ``rho`` is Pearson's correlation of the
mid-ranks of ``H`` and of ``G`` over the valid pixels, as ``scipy.stats.spearmanr``.

With the plain indicator, ``rho`` follows exactly from the Mann–Whitney ``U`` of the region
and the tie groups of ``H`` (n valid pixels, P in the region, N outside, ``T = Σ(t³ - t)``)::

    S_R = U + P (P + 1) / 2            (sum of the region pixels' mid-ranks)
    cov = S_R / n - (n + 1) P / (2 n)
    var_r = (n² - 1) / 12 - T / (12 n),   var_g = P N / n²
    rho = cov / sqrt(var_r · var_g)

which avoids ranking the whole map.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from groundbench.metrics import MAX_DISTANCE_PX, Param, Params, _inputs, register_metric
from groundbench.metrics._inputs import (
    check_inputs,
    chunked_output,
    count,
    finish,
    iter_chunks,
    masked_minmax,
    n_valid,
    reasons,
    restrict,
)
from groundbench.metrics._permap import PEAK, map_threads, summarise
from groundbench.metrics._radix import flagged_twice_ranks, twice_ranks
from groundbench.metrics._ranks import (
    RankStats,
    chunk_rank_stats,
    midranks,
    per_map_arrays,
    shared_summaries,
)
from groundbench.types import MetricOutput, Undefined


def _rho_from_ranks(s: RankStats) -> float:
    n = s.n_pos + s.n_neg
    s_r = s.u + s.n_pos * (s.n_pos + 1) / 2
    cov = s_r / n - (n + 1) * s.n_pos / (2 * n)
    var_r = (n * n - 1) / 12 - s.tie_sum / (12 * n)
    var_g = s.n_pos * s.n_neg / (n * n)
    return cov / math.sqrt(var_r * var_g)


def _spans(present: np.ndarray, radius: int) -> list[tuple[int, int]]:
    """``[start, stop)`` runs covering the True entries of ``present`` widened by ``radius``
    each side (clipped to its length), merged where they touch."""
    n = present.size
    at = np.flatnonzero(present)
    depth = np.zeros(n + 1, dtype=np.int64)  # how many widened entries cover each index
    np.add.at(depth, np.maximum(at - radius, 0), 1)
    np.add.at(depth, np.minimum(at + radius + 1, n), -1)
    covered = np.concatenate(([False], np.cumsum(depth[:n]) > 0, [False]))
    edges = np.flatnonzero(covered[1:] != covered[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def blur_region(region: np.ndarray, sigma_px: float) -> np.ndarray:
    """``gaussian_filter(region, sigma_px, mode="constant")`` in float64, bit for bit, faster.

    The filter is two 1-D passes (rows, then columns), each reading ``r = int(4 sigma + 0.5)``
    pixels either side (scipy's truncation), with zeros outside the image. Region rows widened
    by ``r`` and merged make bands; in each band, the region's columns widened by ``r`` make
    boxes. Bands lie over ``2 r`` rows apart and boxes of a band over ``2 r`` columns apart,
    so no output reads two of them: every output outside the boxes is an exact 0, and inside
    one it sums the same terms in the same order whether the image is cropped to that box or
    not. Only the boxes are filtered.
    """
    from scipy.ndimage import gaussian_filter

    out = np.zeros(region.shape)
    radius = int(4.0 * float(sigma_px) + 0.5)
    for y0, y1 in _spans(region.any(axis=1), radius):
        for x0, x1 in _spans(region[y0:y1].any(axis=0), radius):
            crop = region[y0:y1, x0:x1].astype(np.float64)
            out[y0:y1, x0:x1] = gaussian_filter(crop, sigma_px, mode="constant")
    return out


# above this many pixels the int64 sum of products of doubled ranks could overflow
_EXACT_RHO_PIXELS = 1 << 20


def _rho_blurred(values: np.ndarray, target: np.ndarray) -> float:
    if values.dtype == np.float32 and 0 < values.size <= _EXACT_RHO_PIXELS and target.min() >= 0:
        return _rho_blurred_exact(values, target)
    rh = midranks(values)
    rt = midranks(target)
    rh -= rh.mean()
    rt -= rt.mean()
    # elementwise products and pairwise sums: np.dot would call a threaded BLAS
    denom = math.sqrt(float(np.sum(rh * rh)) * float(np.sum(rt * rt)))
    return float(np.sum(rh * rt)) / denom if denom > 0 else float("nan")


def _rho_blurred_exact(values: np.ndarray, target: np.ndarray) -> float:
    """Spearman's rho of float32 ``values`` and a target ``>= 0`` whose zeros tie, in integers.

    With doubled mid-ranks ``a = 2 r_H`` and ``b = 2 r_G`` (integers), ``n`` pixels and tie sums
    ``T_H``, ``T_G``: ``rho = 3 C / sqrt(D_H D_G)`` where ``C = Σ a b - n (n + 1)²`` and
    ``D = n³ - n - T``. The target's zeros share ``b = z + 1``, so ``Σ a b`` needs the ranks
    of the map at the target's other pixels only (one radix sort of the map flags them).
    """
    n = values.size
    positive = target > 0
    a, tie_h, _ = flagged_twice_ranks(np.ascontiguousarray(values), positive)
    z = n - a.size  # target zeros
    b, tie_g, _ = twice_ranks(target[positive])
    b += 2 * z
    sum_a = int(a.sum(dtype=np.int64))
    cross = int(np.dot(a, b)) + (z + 1) * (n * (n + 1) - sum_a) - n * (n + 1) ** 2
    d_h, d_g = n**3 - n - int(tie_h), n**3 - n - int(tie_g) - (z**3 - z)
    if d_h <= 0 or d_g <= 0:
        return float("nan")
    return 3 * cross / math.sqrt(d_h * d_g)


SPEARMAN_PARAMS = Params(
    Param("sigma_px", 0.0, low=0.0, high=MAX_DISTANCE_PX),
    key=lambda name, v: f"{name}@sigma{v['sigma_px']:g}px" if v["sigma_px"] else name,
)


@register_metric(
    "spearman",
    needs=("heatmap", "region"),
    higher_is_better=True,
    range=(-1.0, 1.0),
    params=SPEARMAN_PARAMS,
)
def spearman(
    heatmap: torch.Tensor,
    *,
    region: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    box_count: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    pred_box: torch.Tensor | None = None,
    sigma_px: float = 0.0,
) -> MetricOutput:
    """Spearman's rho per map between the heatmap and the (optionally blurred) region.

    Args:
        heatmap: ``(B, Y, X)`` float32/float16/bfloat16 maps.
        region: ``(B, Y, X)`` bool ground-truth region.
        valid: ``(B, Y, X)`` bool, False on padding; None = all valid.
        boxes, box_count, pred_mask, pred_box: ignored.
        sigma_px: Gaussian blur of the target in pixels; 0 = the plain indicator.

    Returns:
        :class:`MetricOutput` on CPU: values ``(B,)`` float64 in ``[-1, 1]``; undefined
        ``nan_input``, ``empty_region``, ``full_region`` (the target is constant) and
        ``constant_map`` (the heatmap is constant over the valid pixels).

    Raises:
        ProtocolError: ``sigma_px`` is negative or not finite.

    Example:
        >>> h = torch.tensor([[[3.0, 2.0], [1.0, 0.0]]])
        >>> region = torch.tensor([[[True, True], [False, False]]])
        >>> round(spearman(h, region=region).values.item(), 6)
        0.894427
    """
    sigma_px = SPEARMAN_PARAMS.check({"sigma_px": sigma_px}, metric="spearman")["sigma_px"]
    inputs = check_inputs(
        "spearman", heatmap, needs=("heatmap", "region"), region=region, valid=valid
    )
    values, codes = [], []
    for rows, h, v in iter_chunks(inputs):
        reg = inputs.region[rows]
        s = shared_summaries(inputs, rows, h, v)
        if s is None and _inputs.use_numpy(h):
            s = summarise(h, v, reg, PEAK)
        if s is not None:
            lo, hi, nonfinite, n_pos, n = s.lo, s.hi, s.nonfinite, s.n_pos, s.n
        else:
            lo, hi, nonfinite = masked_minmax(h, v)
            n_pos, n = count(reg, v), n_valid(h, v)
        code = reasons(
            (nonfinite, Undefined.NAN_INPUT),
            (n_pos == 0, Undefined.EMPTY_REGION),
            (n_pos == n, Undefined.FULL_REGION),
            (lo == hi, Undefined.CONSTANT_MAP),
        )
        usable = (code == 0).tolist()
        if sigma_px == 0:
            stats = chunk_rank_stats(inputs, rows, h, v, usable)
            rho = [math.nan if s is None else _rho_from_ranks(s) for s in stats]
        else:
            get = per_map_arrays(h, reg, v, usable)
            reg_np = restrict(reg, v).cpu().numpy()
            v_np = None if v is None else v.cpu().numpy()

            def one(i: int, get=get, reg_np=reg_np, v_np=v_np) -> float:
                arrays = get(i)
                if arrays is None:
                    return float("nan")
                target = blur_region(reg_np[i], sigma_px)
                target = target.ravel() if v_np is None else target[v_np[i]]
                return _rho_blurred(arrays[0], target)

            rho = map_threads(one, h.shape[0], pixels=h[0].numel())
        values.append(finish(torch.tensor(rho, dtype=torch.float64), code))
        codes.append(code)
    return chunked_output(values, codes)
