"""Threshold image-resolution maps into binary masks; only valid pixels count.

Rules (per map, statistics over its valid pixels):

* ``fixed``: keep ``m >= value``.
* ``fraction_of_max``: keep ``m >= value · max(m)`` (meant for non-negative maps, e.g. after
  min-max normalisation).
* ``mean``: keep ``m > mean(m)``.
* ``otsu``: keep ``m > t`` with ``t`` Otsu's threshold, exactly as
  ``skimage.filters.threshold_otsu`` computes it on the map's valid pixels (256 bins
  spanning ``[min, max]``; a constant map returns its value, so nothing is kept).
* ``top_k_percent``: keep the ``ceil(value/100 · n_valid)`` highest pixels, and every pixel
  tied with the lowest of them (ties can keep a few more).

Kernels by device: on CPU, Otsu's level and the top-k level are computed per map with
skimage / ``numpy.partition`` (several times faster there than a batched tensor kernel, which
streams the whole batch through memory a dozen times); on other devices they are batched
torch kernels (:func:`otsu_thresholds`, ``torch.topk``) that give the same levels. The
comparisons themselves always run as tensor ops on the maps' device.

A map with a NaN or Inf on a valid pixel gets an empty mask: there is no trustworthy
threshold, and the heatmap keeps its NaN so metrics report ``nan_input``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from skimage.filters import threshold_otsu

from groundbench.postprocess import PIPELINE_STEPS

THRESHOLD_METHODS: tuple[str, ...] = ("fixed", "fraction_of_max", "mean", "otsu", "top_k_percent")
OTSU_BINS = 256


def _float(maps: torch.Tensor) -> torch.Tensor:
    return maps if maps.dtype in (torch.float32, torch.float64) else maps.to(torch.float32)


def otsu_thresholds(maps: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Return Otsu's threshold of each map, as ``skimage.filters.threshold_otsu``.

    The 256-bin histogram over ``[min, max]`` is built exactly as ``numpy.histogram`` builds
    it, in the map's dtype (float32 or float64); the between-class variance is then
    maximised in float64.

    Args:
        maps: ``(B, Y, X)`` float maps with finite valid pixels.
        valid: ``(B, Y, X)`` bool, or None for all pixels.

    Returns:
        ``(B,)`` thresholds in the maps' float dtype (a constant map gives its value).

    Example:
        >>> float(otsu_thresholds(torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]))[0])
        0.001953125
    """
    x = _float(maps).flatten(1)
    v = None if valid is None else valid.flatten(1)
    lo = (x if v is None else torch.where(v, x, torch.inf)).amin(dim=1, keepdim=True)
    hi = (x if v is None else torch.where(v, x, -torch.inf)).amax(dim=1, keepdim=True)
    constant = (hi == lo)[:, 0]
    # numpy widens an empty range by ±0.5; the result is unused (constant maps return lo)
    lo_e = torch.where(hi > lo, lo, lo - 0.5)
    hi_e = torch.where(hi > lo, hi, hi + 0.5)
    span = hi_e - lo_e
    steps = torch.arange(OTSU_BINS + 1, device=x.device, dtype=x.dtype)
    edges = steps * (span / OTSU_BINS) + lo_e  # B 257, as numpy.linspace
    edges[:, -1] = hi_e[:, 0]
    xs = x if v is None else torch.where(v, x, lo_e)
    f = torch.sub(xs, lo_e).div_(span).mul_(OTSU_BINS)  # in place: one big temporary
    idx = f.long().clamp_(0, OTSU_BINS - 1)
    del f
    # numpy's correction of values within an ulp of a bin edge; the last bin is closed
    upper = torch.cat([edges[:, 1:-1], torch.full_like(edges[:, :1], torch.inf)], dim=1)
    idx -= (xs < edges.gather(1, idx)).to(torch.int64)
    idx += (xs >= upper.gather(1, idx)).to(torch.int64)
    counts = torch.zeros(x.shape[0], OTSU_BINS, device=x.device, dtype=torch.float64)
    ones = torch.ones((), device=x.device, dtype=torch.float64).expand(idx.shape)
    counts.scatter_add_(1, idx, ones if v is None else v.to(torch.float64))
    # The running sums below depend on the order of summation: a CUDA scan rounds
    # differently from numpy's sequential cumsum and could move the argmax on near-ties,
    # so this small (B, 256) stage always runs on the CPU, in numpy's order.
    counts = counts.cpu()
    centres = ((edges[:, :-1] + edges[:, 1:]) / 2).cpu()
    c64 = centres.to(torch.float64)
    w1 = counts.cumsum(1)
    w2 = counts.flip(1).cumsum(1).flip(1)
    m1 = (counts * c64).cumsum(1) / w1
    m2 = ((counts * c64).flip(1).cumsum(1) / w2.flip(1)).flip(1)
    between = w1[:, :-1] * w2[:, 1:] * (m1[:, :-1] - m2[:, 1:]) ** 2
    between = torch.nan_to_num(between, nan=-1.0)  # empty classes never win
    t = centres.gather(1, between.argmax(dim=1, keepdim=True))[:, 0].to(x.device)
    return torch.where(constant, lo[:, 0], t)


def _level(threshold: torch.Tensor, dtype: torch.dtype, *, strict: bool) -> torch.Tensor:
    """Round float64 thresholds to ``dtype`` without changing any comparison's outcome.

    For every ``x`` of ``dtype``: ``x > t`` ⇔ ``x > threshold`` (``strict``), else
    ``x >= t`` ⇔ ``x >= threshold``; so the big comparison runs in the maps' own dtype.
    """
    t = threshold.to(dtype)
    if strict:  # largest representable value <= threshold
        return torch.where(t.double() > threshold, torch.nextafter(t, t.new_tensor(-torch.inf)), t)
    return torch.where(t.double() < threshold, torch.nextafter(t, t.new_tensor(torch.inf)), t)


def _valid_rows(x: torch.Tensor, v: torch.Tensor | None) -> list[np.ndarray]:
    xn = x.numpy()
    return list(xn) if v is None else [row[keep] for row, keep in zip(xn, v.numpy(), strict=True)]


def _otsu_levels(x: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
    # x: B N finite on valid pixels
    if x.device.type != "cpu":
        return otsu_thresholds(x, v)
    levels = [threshold_otsu(row) if row.size else np.inf for row in _valid_rows(x, v)]
    return torch.tensor(levels, dtype=x.dtype)


def _top_k_levels(x: torch.Tensor, v: torch.Tensor | None, percent: float) -> torch.Tensor:
    """Level of the ``ceil(percent% · n_valid)``-th highest valid pixel per row of ``x``."""
    n_valid = torch.full((x.shape[0],), x.shape[1]) if v is None else v.sum(dim=1).cpu()
    n_keep = torch.ceil(n_valid.to(torch.float64) * (percent / 100.0)).long().clamp(min=1)
    if x.device.type == "cpu":
        levels = [
            np.partition(row, row.size - k)[row.size - k] if row.size else np.inf
            for row, k in zip(_valid_rows(x, v), n_keep.tolist(), strict=True)
        ]
        return torch.tensor(levels, dtype=x.dtype)
    filled = x if v is None else torch.where(v, x, -torch.inf)
    return top_k_levels_batched(filled, n_valid.to(x.device), n_keep.to(x.device))


def top_k_levels_batched(
    filled: torch.Tensor, n_valid: torch.Tensor, n_keep: torch.Tensor
) -> torch.Tensor:
    """Return the ``n_keep``-th highest value of each row with one ``torch.topk`` per distinct k.

    Args:
        filled: ``(B, N)`` float values, ``-inf`` on invalid pixels.
        n_valid: ``(B,)`` valid pixels per row.
        n_keep: ``(B,)`` rank to return, ``1 <= n_keep <= n_valid``.

    Returns:
        ``(B,)`` levels in ``filled``'s dtype (``inf`` for rows without a valid pixel).

    Example:
        >>> top_k_levels_batched(torch.tensor([[3.0, 1.0, 2.0]]), torch.tensor([3]), torch.tensor([2]))
        tensor([2.])
    """
    level = torch.full((filled.shape[0],), torch.inf, device=filled.device, dtype=filled.dtype)
    for k in torch.unique(n_keep[n_valid > 0]).tolist():
        rows = ((n_keep == k) & (n_valid > 0)).nonzero()[:, 0]
        top = torch.topk(filled[rows], int(k), dim=1, sorted=False).values
        level[rows] = top.amin(dim=1)
    return level


@PIPELINE_STEPS.register(
    "threshold", config_key="threshold", input="(B, Y, X) float", output="(B, Y, X) bool"
)
def threshold_maps(
    maps: torch.Tensor,
    *,
    method: Literal["fixed", "fraction_of_max", "mean", "otsu", "top_k_percent"],
    value: float | None = None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Binarise a batch of maps by one of the rules of the module docstring.

    Args:
        maps: ``(B, Y, X)`` float maps.
        method: the rule name.
        value: the level (``fixed``), the fraction in ``[0, 1]`` (``fraction_of_max``), the
            percentage in ``(0, 100]`` (``top_k_percent``); unused (None) by ``mean``/``otsu``.
        valid: ``(B, Y, X)`` bool real pixels (False on padding), or None for all.

    Returns:
        ``(B, Y, X)`` bool mask, always False on invalid pixels.

    Example:
        >>> m = torch.tensor([[[0.1, 0.6], [0.9, 0.3]]])
        >>> threshold_maps(m, method="fraction_of_max", value=0.5)[0].tolist()
        [[False, True], [True, False]]
    """
    x = _float(maps).flatten(1)
    v = None if valid is None else valid.flatten(1)
    if v is None:
        lo, hi = torch.aminmax(x, dim=1)
    else:
        lo = torch.where(v, x, torch.inf).amin(dim=1)
        hi = torch.where(v, x, -torch.inf).amax(dim=1)
    usable = torch.isfinite(lo) & torch.isfinite(hi)  # NaN propagates through amin/amax
    if not usable.all():  # keep the statistics finite; these maps get empty masks below
        x = torch.where(usable[:, None], x, 0.0)
        hi = torch.where(usable, hi, 0.0)
    if method == "fixed":
        level = _level(torch.tensor([float(value)], dtype=torch.float64), x.dtype, strict=False)
        keep = x >= level.to(x.device)
    elif method == "fraction_of_max":
        keep = x >= _level(float(value) * hi.double(), x.dtype, strict=False)[:, None]
    elif method == "mean":
        n_valid = x.shape[1] if v is None else v.sum(dim=1).clamp(min=1)
        total = (x if v is None else torch.where(v, x, 0.0)).sum(dim=1, dtype=torch.float64)
        keep = x > _level(total / n_valid, x.dtype, strict=True)[:, None]
    elif method == "otsu":
        keep = x > _otsu_levels(x, v).to(x.device)[:, None]
    elif method == "top_k_percent":
        keep = x >= _top_k_levels(x, v, float(value)).to(x.device)[:, None]
    else:
        raise ValueError(f"threshold_maps: method must be one of {THRESHOLD_METHODS}")
    if not usable.all():  # row assignment: a broadcast `&=` over bools is a slow full pass
        keep[~usable] = False
    if v is not None:
        keep &= v
    return keep.view(maps.shape)
