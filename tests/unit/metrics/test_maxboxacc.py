"""MaxBoxAccV2: every component's box, the sweep, and calibration on another split."""

from __future__ import annotations

import numpy as np
import torch

from groundbench.metrics.maxboxacc import (
    box_hits,
    calibrated_box_acc,
    component_boxes,
    max_box_acc,
)


def _components_by_flood_fill(mask):
    """Reference: 8-connected components by a plain flood fill, their inclusive extents."""
    seen = np.zeros_like(mask)
    out = []
    Y, X = mask.shape
    for y in range(Y):
        for x in range(X):
            if mask[y, x] and not seen[y, x]:
                stack, ys, xs = [(y, x)], [], []
                seen[y, x] = True
                while stack:
                    cy, cx = stack.pop()
                    ys.append(cy), xs.append(cx)
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            ny, nx = cy + dy, cx + dx
                            if 0 <= ny < Y and 0 <= nx < X and mask[ny, nx] and not seen[ny, nx]:
                                seen[ny, nx] = True
                                stack.append((ny, nx))
                out.append((min(xs), min(ys), max(xs), max(ys)))  # inclusive, as wsolevaluation
    return out


def _reference_hits(h, gt_inclusive, thresholds, deltas):
    """Choe et al.'s rule: normalise, threshold, every component's box, inclusive IoU (+1)."""
    norm = (h - h.min()) / (h.max() - h.min())
    out = np.zeros((len(thresholds), len(deltas)), dtype=bool)
    for t, tau in enumerate(thresholds):
        best = 0.0
        for x0, y0, x1, y1 in _components_by_flood_fill(norm >= tau):
            for g in gt_inclusive:
                iw = min(x1, g[2]) - max(x0, g[0]) + 1
                ih = min(y1, g[3]) - max(y0, g[1]) + 1
                inter = max(iw, 0) * max(ih, 0)
                a = (x1 - x0 + 1) * (y1 - y0 + 1)
                b = (g[2] - g[0] + 1) * (g[3] - g[1] + 1)
                best = max(best, inter / (a + b - inter))
        out[t] = best >= np.asarray(deltas)
    return out


def test_component_boxes_are_pixel_extents():
    mask = np.zeros((5, 6), dtype=bool)
    mask[0, 0] = mask[1, 1] = True  # diagonal: one 8-connected component
    mask[3:5, 3:6] = True
    assert component_boxes(mask).tolist() == [[0, 0, 2, 2], [3, 3, 6, 5]]


def test_hits_match_the_reference_on_random_and_tied_maps(rng):
    thresholds, deltas = [i / 20 for i in range(20)], (0.3, 0.5, 0.7)
    for kind in ("random", "tied"):
        h = rng.random((6, 14, 17)) if kind == "random" else rng.integers(0, 4, (6, 14, 17)) * 1.0
        gt_inclusive = [[2, 3, 9, 10]]
        boxes = torch.tensor([[[2.0, 3.0, 10.0, 11.0]]] * 6, dtype=torch.float64)
        got = box_hits(
            torch.from_numpy(h).float(),
            None,
            boxes,
            torch.ones(6, dtype=torch.long),
            thresholds,
            deltas,
        )
        for i in range(6):
            ref = _reference_hits(
                h[i].astype(np.float32).astype(np.float64), gt_inclusive, thresholds, deltas
            )
            assert np.array_equal(got[i], ref), (kind, i)


def test_max_over_thresholds_and_calibration_on_another_split():
    thresholds, deltas = (0.1, 0.5), (0.3, 0.5)
    val = np.array([[[1, 0], [1, 1]], [[0, 0], [1, 1]]], dtype=bool)  # N=2, T=2, D=2
    test = np.array([[[1, 1], [0, 0]], [[1, 0], [0, 0]]], dtype=bool)
    own = max_box_acc(test, thresholds, deltas)
    assert own.per_delta == {0.3: 1.0, 0.5: 0.5} and own.value == 0.75
    assert own.best_threshold == {0.3: 0.1, 0.5: 0.1}
    cal = calibrated_box_acc(val, test, thresholds, deltas)
    assert cal.best_threshold == {0.3: 0.5, 0.5: 0.5}  # val's best: τ = 0.5 for both
    assert cal.per_delta == {0.3: 0.0, 0.5: 0.0} and cal.value == 0.0


def test_constant_and_non_finite_maps_hit_nothing():
    h = torch.zeros(2, 4, 4)
    h[1, 0, 0] = float("nan")
    boxes = torch.tensor([[[0.0, 0.0, 4.0, 4.0]]] * 2, dtype=torch.float64)
    assert not box_hits(h, None, boxes, torch.ones(2, dtype=torch.long)).any()


def test_pxap_is_sklearn_average_precision_over_the_pooled_pixels(rng):
    from sklearn.metrics import average_precision_score

    from groundbench.metrics.maxboxacc import pxap

    for kind in ("random", "tied"):
        maps = [
            rng.random((9, 11)) if kind == "random" else rng.integers(0, 4, (9, 11)) * 1.0
            for _ in range(4)
        ]
        masks = [rng.random((9, 11)) < 0.3 for _ in range(4)]
        norm = [(m - m.min()) / (m.max() - m.min()) for m in maps]
        ref = average_precision_score(
            np.concatenate([k.ravel() for k in masks]), np.concatenate([n.ravel() for n in norm])
        )
        got = pxap([torch.from_numpy(m) for m in maps], [torch.from_numpy(k) for k in masks])
        assert abs(got - ref) <= 1e-12, kind


def _wsolevaluation_pxap(scoremaps, masks, threshold_list):
    """wsolevaluation's MaskEvaluator (accumulate + compute, without the ×100), reimplemented."""
    edges = np.append(threshold_list, [1.0, 2.0, 3.0])
    true_hist = np.zeros(len(threshold_list) + 2)
    false_hist = np.zeros(len(threshold_list) + 2)
    for scoremap, gt in zip(scoremaps, masks, strict=True):
        true_hist += np.histogram(scoremap[gt], bins=edges)[0]
        false_hist += np.histogram(scoremap[~gt], bins=edges)[0]
    tp = true_hist[::-1].cumsum()
    fn = true_hist.sum() - tp
    fp = false_hist[::-1].cumsum()
    non_zero = (tp + fp) != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return (precision[1:] * np.diff(recall))[non_zero[1:]].sum()


def test_binned_pxap_is_wsolevaluation_mask_evaluator(rng):
    from sklearn.metrics import average_precision_score

    from groundbench.metrics.maxboxacc import THRESHOLDS, binned_pxap, pixel_histograms

    h = torch.from_numpy(rng.random((5, 12, 10)) ** 2)
    h[3] = torch.round(h[3] * 4) / 4  # tied scores
    h[4] = 0.25  # constant: every pixel in the lowest bin
    masks = torch.from_numpy(rng.random((5, 12, 10)) < 0.3)
    pos, neg = pixel_histograms(h, None, masks)
    got = binned_pxap(pos, neg)
    norm = []
    for m in h.numpy():
        norm.append((m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else 0 * m)
    want = _wsolevaluation_pxap(norm, masks.numpy(), np.array(THRESHOLDS))
    assert abs(got - want) < 1e-12
    # the same as the step AP over scores floored to their bin's lower edge
    binned = np.concatenate([np.floor(np.round(m.ravel() * 100, 9)) for m in norm])
    ap = average_precision_score(masks.numpy().ravel(), binned)
    assert abs(got - ap) < 1e-12
    # padding is counted nowhere
    padded = torch.zeros(5, 14, 13, dtype=torch.float64)
    padded[:, :12, :10] = h
    valid = torch.zeros(5, 14, 13, dtype=torch.bool)
    valid[:, :12, :10] = True
    big_masks = torch.zeros(5, 14, 13, dtype=torch.bool)
    big_masks[:, :12, :10] = masks
    pos2, neg2 = pixel_histograms(padded, valid, big_masks)
    assert (pos2 == pos).all() and (neg2 == neg).all()
    assert np.isnan(binned_pxap(np.zeros_like(pos), neg))
