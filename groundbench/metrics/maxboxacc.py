"""MaxBoxAccV2 (Choe et al., CVPR 2020): box accuracy that does not hang on one threshold.

Each map is min-max normalised over its valid pixels and thresholded at every ``τ`` of a
sweep (``H_norm >= τ``, default ``τ = 0, 0.01, ..., 0.99``, as the authors' ``wsolevaluation``
with ``cam_curve_interval = 0.01``). At each ``τ``, **every** connected component of the mask
(8-connectivity) gives a box (its pixels' extent, ``xyxy`` in continuous pixels); the sample
is a hit at IoU ``δ`` when any of those boxes reaches IoU ``>= δ`` with any ground-truth box.

* ``BoxAcc(τ, δ)``: the share of samples that hit at ``(τ, δ)``.
* ``MaxBoxAccV2 = mean_δ max_τ BoxAcc(τ, δ)``, ``δ ∈ {0.3, 0.5, 0.7}``.
* Calibrated: ``τ*_δ = argmax_τ BoxAcc_val(τ, δ)`` on the protocol's calibration split, then
  ``mean_δ BoxAcc_test(τ*_δ, δ)``; the chosen thresholds are reported.

**PxAP** (:func:`pxap`): the average precision of the normalised map's pixels as a
classifier of the ground-truth mask's pixels, pooled over the split's samples (valid pixels
only): ``Σ_n (R_n − R_{n−1}) P_n`` over the distinct scores, as
``sklearn.metrics.average_precision_score``. wsolevaluation bins the scores at 0.01 first,
which rounds the curve; here every distinct score is a threshold.

These are split-level numbers (a maximum over the split), so they live here as functions
over the per-sample hit table ``(N, T, D)``, not as a per-sample registered metric.
A constant map (no spread) and a map with NaN/Inf hit nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

DELTAS: tuple[float, ...] = (0.3, 0.5, 0.7)
THRESHOLDS: tuple[float, ...] = tuple(i / 100 for i in range(100))


def component_boxes(mask: np.ndarray) -> np.ndarray:
    """``(c, 4)`` ``xyxy`` boxes of the 8-connected components of a 2-D bool mask."""
    from scipy.ndimage import find_objects, label

    labels, _ = label(mask, structure=np.ones((3, 3), dtype=bool))
    out = [(sx.start, sy.start, sx.stop, sy.stop) for sy, sx in find_objects(labels)]
    return np.array(out, dtype=np.float64).reshape(-1, 4)


def _best_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    if not len(pred) or not len(gt):
        return 0.0
    lt = np.maximum(pred[:, None, :2], gt[None, :, :2])
    rb = np.minimum(pred[:, None, 2:], gt[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=-1)
    area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_g = np.clip(gt[:, 2] - gt[:, 0], 0, None) * np.clip(gt[:, 3] - gt[:, 1], 0, None)
    union = area_p[:, None] + area_g[None, :] - inter
    return float(np.max(np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)))


def box_hits(
    heatmap: torch.Tensor,
    valid: torch.Tensor | None,
    boxes: torch.Tensor,
    box_count: torch.Tensor,
    thresholds: Sequence[float] = THRESHOLDS,
    deltas: Sequence[float] = DELTAS,
) -> np.ndarray:
    """Per-sample hits ``(B, T, D)`` bool over the threshold sweep and the IoU levels.

    Args:
        heatmap: ``(B, Y, X)`` maps at the evaluation size.
        valid: ``(B, Y, X)`` bool, False on padding (never in a mask); None = all valid.
        boxes, box_count: ``(B, K, 4)`` ``xyxy`` ground-truth boxes and ``(B,)`` counts.
        thresholds: ``T`` values of ``τ`` on the min-max normalised map.
        deltas: ``D`` IoU levels ``δ``.
    """
    h = heatmap.detach().cpu().double().numpy()
    v = None if valid is None else valid.cpu().numpy()
    gts, counts = boxes.cpu().double().numpy(), box_count.cpu().numpy()
    dl = np.asarray(deltas, dtype=np.float64)
    out = np.zeros((h.shape[0], len(thresholds), len(dl)), dtype=bool)
    for i in range(h.shape[0]):
        keep = np.ones(h[i].shape, dtype=bool) if v is None else v[i]
        x = h[i][keep]
        if not x.size or not np.isfinite(x).all() or x.max() == x.min():
            continue
        norm = np.where(keep, (h[i] - x.min()) / (x.max() - x.min()), -np.inf)
        gt = gts[i, : int(counts[i])]
        for t, tau in enumerate(thresholds):
            out[i, t] = _best_iou(component_boxes(norm >= tau), gt) >= dl
    return out


@dataclass(frozen=True)
class MaxBoxAcc:
    """MaxBoxAccV2 of one split, and each ``δ``'s best threshold."""

    value: float
    per_delta: dict[float, float]
    best_threshold: dict[float, float]


def max_box_acc(
    hits: np.ndarray, thresholds: Sequence[float] = THRESHOLDS, deltas: Sequence[float] = DELTAS
) -> MaxBoxAcc:
    """``mean_δ max_τ BoxAcc(τ, δ)`` over the ``(N, T, D)`` hits of one split (first best τ)."""
    acc = hits.mean(axis=0)  # T D
    best = acc.argmax(axis=0)
    per = {float(d): float(acc[best[j], j]) for j, d in enumerate(deltas)}
    taus = {float(d): float(thresholds[best[j]]) for j, d in enumerate(deltas)}
    return MaxBoxAcc(float(np.mean(list(per.values()))), per, taus)


def calibrated_box_acc(
    val_hits: np.ndarray,
    test_hits: np.ndarray,
    thresholds: Sequence[float] = THRESHOLDS,
    deltas: Sequence[float] = DELTAS,
) -> MaxBoxAcc:
    """Thresholds chosen on the calibration split's hits, accuracy read on the test split's."""
    chosen = max_box_acc(val_hits, thresholds, deltas).best_threshold
    acc = test_hits.mean(axis=0)
    per = {
        float(d): float(acc[list(thresholds).index(chosen[float(d)]), j])
        for j, d in enumerate(deltas)
    }
    return MaxBoxAcc(float(np.mean(list(per.values()))), per, chosen)


def pxap(heatmaps: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> float:
    """PxAP of a split: AP of the min-max normalised maps' pixels against the masks' pixels.

    Args:
        heatmaps: per sample, a ``(Y, X)`` map (its valid pixels only: crop padding first).
        masks: per sample, the ``(Y, X)`` bool ground-truth mask.

    Returns:
        The average precision in ``[0, 1]``; NaN when no mask pixel is positive. Maps that
        are constant or hold NaN/Inf score 0 on every pixel.
    """
    scores, labels = [], []
    for h, m in zip(heatmaps, masks, strict=True):
        x = h.detach().cpu().double().numpy().ravel()
        if x.size and np.isfinite(x).all() and x.max() > x.min():
            x = (x - x.min()) / (x.max() - x.min())
        else:
            x = np.zeros(x.size)
        scores.append(x)
        labels.append(m.cpu().numpy().ravel().astype(bool))
    s, y = np.concatenate(scores), np.concatenate(labels)
    positives = int(y.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


#: wsolevaluation's histogram edges for PxAP: ``[0, 0.01), ..., [0.99, 1), [1, 2), [2, 3]``.
PXAP_EDGES: tuple[float, ...] = (*THRESHOLDS, 1.0, 2.0, 3.0)


def pixel_histograms(
    heatmap: torch.Tensor, valid: torch.Tensor | None, masks: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Per-map histograms of the min-max normalised scores of mask and non-mask pixels.

    Args:
        heatmap: ``(B, Y, X)`` maps.
        valid: ``(B, Y, X)`` bool (padding is counted nowhere); None = all valid.
        masks: ``(B, Y, X)`` bool ground-truth masks.

    Returns:
        ``(positives, negatives)``, each ``(B, len(PXAP_EDGES) - 1)`` int64 counts over the
        bins of :data:`PXAP_EDGES` (``np.histogram``'s rule, as wsolevaluation). A constant
        map, or one with NaN/Inf, puts every pixel in the lowest bin.
    """
    h = heatmap.detach().cpu().double().numpy()
    v = np.ones(h.shape, bool) if valid is None else valid.cpu().numpy()
    m = masks.cpu().numpy().astype(bool)
    edges = np.asarray(PXAP_EDGES)
    pos = np.zeros((h.shape[0], edges.size - 1), np.int64)
    neg = np.zeros_like(pos)
    for i in range(h.shape[0]):
        x = h[i][v[i]]
        if x.size and np.isfinite(x).all() and x.max() > x.min():
            x = (x - x.min()) / (x.max() - x.min())
        else:
            x = np.zeros(x.size)
        label = m[i][v[i]]
        pos[i] = np.histogram(x[label], bins=edges)[0]
        neg[i] = np.histogram(x[~label], bins=edges)[0]
    return pos, neg


def binned_pxap(positives: np.ndarray, negatives: np.ndarray) -> float:
    """PxAP as wsolevaluation's ``MaskEvaluator.compute`` (without its ×100) from histograms.

    Args:
        positives, negatives: ``(bins,)`` or ``(N, bins)`` counts (summed over maps) of the
            mask's and the other pixels' scores, bins ascending (:func:`pixel_histograms`).

    Returns:
        ``Σ_k P_k (R_k − R_{k−1})`` with the thresholds at the bins' lower edges, descending;
        NaN when no pixel is positive.
    """
    pos = np.asarray(positives, np.float64).reshape(-1, np.shape(positives)[-1]).sum(axis=0)
    neg = np.asarray(negatives, np.float64).reshape(-1, np.shape(negatives)[-1]).sum(axis=0)
    tp, fp = pos[::-1].cumsum(), neg[::-1].cumsum()
    if pos.sum() <= 0:
        return float("nan")
    keep = (tp + fp) != 0
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=keep)
    recall = tp / pos.sum()
    return float((precision[1:] * np.diff(recall))[keep[1:]].sum())
