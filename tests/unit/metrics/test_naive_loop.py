"""Agreement with a naive per-pixel Python loop that spells each definition out literally."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from groundbench.metrics import auc, miou, nss, pointing, soft_iou, spearman


def _pixels(h, region, valid):
    Y, X = h.shape
    return [
        (i, j, float(h[i, j]), bool(region[i, j]))
        for i in range(Y)
        for j in range(X)
        if valid[i, j]
    ]


def naive_pointing(h, region, valid, tol):
    px = _pixels(h, region, valid)
    top = max(v for _, _, v, _ in px)
    tied = [(i, j) for i, j, v, _ in px if v == top]
    reg = [(i, j) for i, j, _, r in px if r]
    hits = [any(math.hypot(i - a, j - b) <= tol for a, b in reg) for i, j in tied]
    return sum(hits) / len(hits)


def naive_auc(h, region, valid):
    px = _pixels(h, region, valid)
    pos = [v for *_, v, r in px if r]
    neg = [v for *_, v, r in px if not r]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def naive_nss(h, region, valid):
    vals = [v for *_, v, _ in _pixels(h, region, valid)]
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
    reg = [v for *_, v, r in _pixels(h, region, valid) if r]
    return (sum(reg) / len(reg) - mean) / std


def naive_soft_iou(h, region, valid):
    px = _pixels(h, region, valid)
    lo, hi = min(v for *_, v, _ in px), max(v for *_, v, _ in px)
    num = den = 0.0
    for *_, v, r in px:
        hn = (v - lo) / (hi - lo)
        num += min(hn, float(r))
        den += max(hn, float(r))
    return num / den


def naive_miou(pred, region, valid):
    Y, X = pred.shape
    inter = union = 0
    for i in range(Y):
        for j in range(X):
            if valid[i, j]:
                inter += bool(pred[i, j] and region[i, j])
                union += bool(pred[i, j] or region[i, j])
    return inter / union


def _midranks(xs):
    return [sum(1.0 for y in xs if y < x) + (sum(1.0 for y in xs if y == x) + 1) / 2 for x in xs]


def naive_spearman(h, region, valid):
    px = _pixels(h, region, valid)
    a = _midranks([v for *_, v, _ in px])
    b = _midranks([float(r) for *_, r in px])
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return cov / math.sqrt(va * vb)


@pytest.mark.parametrize("levels", [None, 4])
def test_all_metrics_agree_with_the_naive_loop(rng, levels):
    B, Y, X = 4, 7, 9
    h = rng.random((B, Y, X)).astype(np.float32)
    if levels:
        h = np.floor(h * levels).astype(np.float32)
    region = np.zeros((B, Y, X), dtype=bool)
    region[:, 2:5, 3:6] = True
    region[1, 0, 0] = True
    valid = np.ones((B, Y, X), dtype=bool)
    valid[:, :, 8] = False
    valid[3, 6, :] = False
    region &= valid
    pred = h > np.quantile(h, 0.7)
    t = {"region": torch.from_numpy(region), "valid": torch.from_numpy(valid)}
    H = torch.from_numpy(h)
    got = {
        "pointing": pointing(H, **t).values,
        "pointing@2.5": pointing(H, tolerance_px=2.5, **t).values,
        "auc": auc(H, **t).values,
        "nss": nss(H, **t).values,
        "soft_iou": soft_iou(H, **t).values,
        "miou": miou(H, pred_mask=torch.from_numpy(pred), **t).values,
        "spearman": spearman(H, **t).values,
    }
    for b in range(B):
        args = (h[b], region[b], valid[b])
        want = {
            "pointing": naive_pointing(*args, 0.0),
            "pointing@2.5": naive_pointing(*args, 2.5),
            "auc": naive_auc(*args),
            "nss": naive_nss(*args),
            "soft_iou": naive_soft_iou(*args),
            "miou": naive_miou(pred[b], region[b], valid[b]),
            "spearman": naive_spearman(*args),
        }
        for key, value in want.items():
            assert got[key][b].item() == pytest.approx(value, abs=1e-12), (key, b)
