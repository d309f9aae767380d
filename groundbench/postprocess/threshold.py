"""Threshold image-resolution maps into binary masks; only valid pixels count.

Rules (per map, statistics over its valid pixels):

* ``fixed``: keep ``m >= value``.
* ``fraction_of_max``: keep ``m >= value · max(m)`` (meant for non-negative maps, e.g. after
  min-max normalisation).
* ``mean``: keep ``m > mean(m)``.
* ``otsu``: keep ``m > t`` with ``t`` Otsu's threshold, exactly as
  ``skimage.filters.threshold_otsu`` computes it on the float64 map (256 bins spanning
  ``[min, max]``; a constant map returns its value, so nothing is kept).
* ``top_k_percent``: keep the ``ceil(value/100 · n_valid)`` highest pixels, and every pixel
  tied with the lowest of them (ties can keep a few more).

A map with a NaN or Inf on a valid pixel gets an empty mask: there is no trustworthy
threshold, and the heatmap keeps its NaN so metrics report ``nan_input``.
"""

from __future__ import annotations

from typing import Literal

import torch

from groundbench.postprocess import PIPELINE_STEPS

THRESHOLD_METHODS: tuple[str, ...] = ("fixed", "fraction_of_max", "mean", "otsu", "top_k_percent")
OTSU_BINS = 256


def otsu_thresholds(maps: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Return Otsu's threshold of each map, as ``skimage.filters.threshold_otsu``.

    Args:
        maps: ``(B, Y, X)`` float maps with finite valid pixels.
        valid: ``(B, Y, X)`` bool, or None for all pixels.

    Returns:
        ``(B,)`` float64 thresholds (a constant map gives its value).

    Example:
        >>> float(otsu_thresholds(torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]))[0])
        0.001953125
    """
    x = maps.to(torch.float64).flatten(1)
    v = torch.ones_like(x, dtype=torch.bool) if valid is None else valid.flatten(1)
    lo = torch.where(v, x, torch.inf).amin(dim=1, keepdim=True)
    hi = torch.where(v, x, -torch.inf).amax(dim=1, keepdim=True)
    constant = (hi == lo)[:, 0]
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    # bin edges and bin index exactly as numpy.histogram(range=(min, max), bins=256)
    steps = torch.arange(OTSU_BINS + 1, device=x.device, dtype=torch.float64)
    edges = steps * (span / OTSU_BINS) + lo  # B 257
    edges[:, -1] = hi[:, 0]
    xs = torch.where(v, x, lo)
    idx = ((xs - lo) * (OTSU_BINS / span)).floor().long().clamp_(0, OTSU_BINS - 1)
    idx = idx - (xs < edges.gather(1, idx)).long()
    idx = idx + ((xs >= edges.gather(1, idx + 1)) & (idx != OTSU_BINS - 1)).long()
    counts = torch.zeros(x.shape[0], OTSU_BINS, device=x.device, dtype=torch.float64)
    counts.scatter_add_(1, idx, v.to(torch.float64))
    centres = (edges[:, :-1] + edges[:, 1:]) / 2
    w1 = counts.cumsum(1)
    w2 = counts.flip(1).cumsum(1).flip(1)
    m1 = (counts * centres).cumsum(1) / w1
    m2 = (counts * centres).flip(1).cumsum(1) / w2.flip(1)
    m2 = m2.flip(1)
    between = w1[:, :-1] * w2[:, 1:] * (m1[:, :-1] - m2[:, 1:]) ** 2
    between = torch.nan_to_num(between, nan=-1.0)  # empty classes never win
    t = centres.gather(1, between.argmax(dim=1, keepdim=True))[:, 0]
    return torch.where(constant, lo[:, 0], t)


def _top_k_levels(x: torch.Tensor, v: torch.Tensor, percent: float) -> torch.Tensor:
    # x: B N float64, v: B N bool; level of the ceil(percent% of n_valid)-th highest value
    n_valid = v.sum(dim=1)
    n_keep = torch.ceil(n_valid.to(torch.float64) * (percent / 100.0)).long().clamp(min=1)
    filled = torch.where(v, x, -torch.inf)
    level = torch.full((x.shape[0],), torch.inf, device=x.device, dtype=torch.float64)
    k_small = x.shape[1] - n_keep + 1  # k-th smallest of N with -inf padding at the bottom
    for k in torch.unique(k_small[n_valid > 0]).tolist():
        rows = ((k_small == k) & (n_valid > 0)).nonzero()[:, 0]
        level[rows] = torch.kthvalue(filled[rows], int(k), dim=1).values
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
    if valid is None:
        valid = torch.ones_like(maps, dtype=torch.bool)
    x = maps.to(torch.float64).flatten(1)
    v = valid.flatten(1)
    usable = (torch.isfinite(x) | ~v).all(dim=1)
    x = torch.where(usable[:, None], x, 0.0)  # unusable maps: keep the statistics finite
    if method == "fixed":
        keep = x >= float(value)
    elif method == "fraction_of_max":
        peak = torch.where(v, x, -torch.inf).amax(dim=1)
        keep = x >= float(value) * peak[:, None]
    elif method == "mean":
        mean = torch.where(v, x, 0.0).sum(dim=1) / v.sum(dim=1).clamp(min=1)
        keep = x > mean[:, None]
    elif method == "otsu":
        keep = x > otsu_thresholds(torch.where(v, x, 0.0).view_as(maps), valid)[:, None]
    elif method == "top_k_percent":
        keep = x >= _top_k_levels(x, v, float(value))[:, None]
    else:
        raise ValueError(f"threshold_maps: method must be one of {THRESHOLD_METHODS}")
    return (keep & v & usable[:, None]).view_as(maps)
