"""Region ranking: score candidate boxes by the heatmap, and judge the best one.

Each candidate box ``b`` (a detector's proposal, or a ground-truth box in a ``gt`` protocol)
scores ``s(b) = Σ_{pixels in b} H / area(b)^alpha`` (ALBEF's ``grounding_eval``, ReCLIP's
``gradcam``; ``alpha = 0.5``). Pixels are in a box by the pixel-centre rule of
:mod:`groundbench.types` (pixel ``(i, j)`` when ``(j + 0.5, i + 0.5)`` lies in the closed
box); ``area(b) = (x1 - x0) · (y1 - y0)`` in continuous pixels. The top box has the largest
score (equal float64 scores: the first in the file's order). It is correct when its IoU with
a ground-truth box reaches ``iou`` (``rule=">="``, ALBEF) or exceeds it (``rule=">"``,
ReCLIP); IoU is continuous, as ``box_iou``'s.

* ``rank_acc``: 1 when the top box is correct, else 0 (``rank_acc@0.5``).
* ``proposal_rank``: the 1-based rank, by score, of the best-ranked correct candidate.

Undefined: ``nan_input``, ``no_box``, ``no_proposal`` (the image has no candidate) and, for
``rank_acc``, ``no_positive_score`` (no candidate scores above 0: ALBEF instead keeps the
previous sample's prediction); for ``proposal_rank``, ``no_correct_proposal`` (no candidate
reaches the IoU: the proposals' recall is the share of samples without it).

Box sums come from the map's prefix sums at the candidates' corners only (float64): one
read of the map per sample, whatever the number of boxes, and the same read flags NaN/Inf.
A batch is scored by one compiled loop per thread, with no Python per sample.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from groundbench.errors import ProtocolError
from groundbench.metrics import Param, Params, register_metric
from groundbench.metrics._inputs import check_inputs, finish, reasons
from groundbench.metrics._permap import map_blocks
from groundbench.types import MetricOutput, Undefined

RULES: tuple[str, ...] = (">=", ">")


def _key(name: str, values: dict) -> str:
    extra = [values["rule"]] if values["rule"] != ">=" else []
    if values["alpha"] != 0.5:
        extra.append(f"alpha={values['alpha']:g}")
    return f"{name}@{values['iou']:g}" + (f"[{','.join(extra)}]" if extra else "")


PARAMS = Params(
    Param("iou", 0.5, low=0.0, high=1.0, low_open=True),
    Param("rule", ">=", choices=RULES),
    Param("alpha", 0.5, low=0.0, high=4.0),
    key=_key,
)


@numba.njit(nogil=True, cache=True)
def _map_box_sums(h, valid, i, boxes, out):  # pragma: no cover - compiled
    """Σ of map ``h[i]`` over each ``xyxy`` box's pixels (pixel-centre rule) into ``out``
    (float64), in one read of the map; returns whether its valid pixels are all finite.

    ``valid`` is ``(B, Y, X)`` bool, or ``(0, 0, 0)`` for all valid. Column sums run down the
    rows (a vectorised add per row); at each row where a box starts or ends, one pass along
    them gives that row of the prefix table ``S[a, b] = Σ_{y < rows[a], x < cols[b]} h``; a
    box sum is then 4 lookups. The column sums cover the whole map, so a NaN or ±Inf valid
    pixel leaves one of them non-finite (float64 sums of float32 values cannot overflow).
    """
    Y, X = h.shape[1], h.shape[2]
    m = boxes.shape[0]
    spans = np.empty((m, 4), np.int64)
    for k in range(m):
        r0 = min(max(math.ceil(boxes[k, 1] - 0.5), 0), Y)
        r1 = min(max(math.floor(boxes[k, 3] - 0.5) + 1, r0), Y)
        c0 = min(max(math.ceil(boxes[k, 0] - 0.5), 0), X)
        c1 = min(max(math.floor(boxes[k, 2] - 0.5) + 1, c0), X)
        spans[k, 0], spans[k, 1], spans[k, 2], spans[k, 3] = r0, r1, c0, c1
    rows = np.unique(spans[:, :2].copy().ravel())
    cols = np.unique(spans[:, 2:].copy().ravel())
    R, C = rows.size, cols.size
    S = np.zeros((R, C))
    column = np.zeros(X)  # Σ_{y' <= y} h[y', x]
    masked = valid.shape[0] > 0
    a = 0
    while a < R and rows[a] == 0:
        a += 1
    for y in range(Y):
        if masked:
            for x in range(X):
                column[x] += np.float64(h[i, y, x]) if valid[i, y, x] else 0.0
        else:
            for x in range(X):
                column[x] += np.float64(h[i, y, x])
        while a < R and rows[a] == y + 1:
            acc = 0.0
            start = 0
            for b in range(C):
                for x in range(start, cols[b]):
                    acc += column[x]
                start = cols[b]
                S[a, b] = acc
            a += 1
    for k in range(m):
        a0, a1 = np.searchsorted(rows, spans[k, 0]), np.searchsorted(rows, spans[k, 1])
        b0, b1 = np.searchsorted(cols, spans[k, 2]), np.searchsorted(cols, spans[k, 3])
        out[k] = S[a1, b1] - S[a0, b1] - S[a1, b0] + S[a0, b0]
    finite = True
    for x in range(X):
        finite = finite and math.isfinite(column[x])
    return finite


@numba.njit(nogil=True, cache=True)
def _judge(sums, cand, gts, alpha, iou, strict, top_only):  # pragma: no cover - compiled
    """``(value, no positive score)`` of one sample from its box sums: the top box's
    correctness, or the 1-based rank of the best-ranked correct box (NaN when none)."""
    m = cand.shape[0]
    scores = np.empty(m)
    correct = np.zeros(m, np.bool_)
    for i in range(m):
        w, h = cand[i, 2] - cand[i, 0], cand[i, 3] - cand[i, 1]
        scores[i] = sums[i] / (w * h) ** alpha
        for j in range(gts.shape[0]):
            iw = min(cand[i, 2], gts[j, 2]) - max(cand[i, 0], gts[j, 0])
            ih = min(cand[i, 3], gts[j, 3]) - max(cand[i, 1], gts[j, 1])
            inter = max(iw, 0.0) * max(ih, 0.0)
            gw, gh = max(gts[j, 2] - gts[j, 0], 0.0), max(gts[j, 3] - gts[j, 1], 0.0)
            union = max(w, 0.0) * max(h, 0.0) + gw * gh - inter
            overlap = inter / union if union > 0 else 0.0
            if overlap > iou or (not strict and overlap == iou):
                correct[i] = True
    top = 0
    for i in range(1, m):
        if scores[i] > scores[top]:  # the first of equal maxima
            top = i
    if top_only:
        return (1.0 if correct[top] else 0.0), not scores[top] > 0
    best = np.nan
    for i in range(m):
        if correct[i]:
            # rank: boxes scoring above it, and equal ones before it in the file, go first
            rank = 1
            for j in range(m):
                if scores[j] > scores[i] or (scores[j] == scores[i] and j < i):
                    rank += 1
            if np.isnan(best) or rank < best:
                best = rank
    return best, False


@numba.njit(nogil=True, cache=True)
def _rank_rows(  # pragma: no cover - compiled
    h,
    valid,
    props,
    n_props,
    gts,
    n_gts,
    alpha,
    iou,
    strict,
    top_only,
    start,
    stop,
    out,
    no_score,
    nonfinite,
):
    """Score samples ``start:stop`` of a batch into ``out``, ``no_score`` and ``nonfinite``."""
    for i in range(start, stop):
        m, k = n_props[i], n_gts[i]
        sums = np.empty(m)
        nonfinite[i] = not _map_box_sums(h, valid, i, props[i, :m], sums)
        if m == 0 or k == 0 or nonfinite[i]:
            continue
        out[i], no_score[i] = _judge(sums, props[i, :m], gts[i, :k], alpha, iou, strict, top_only)


_ALL_VALID = np.zeros((0, 0, 0), dtype=np.bool_)


def box_sums(h: np.ndarray, valid: np.ndarray | None, boxes: np.ndarray) -> np.ndarray:
    """Σ of ``h`` ``(Y, X)`` over each ``xyxy`` box's pixels, float64 ``(m,)``, one read of the map."""
    v = _ALL_VALID if valid is None else np.ascontiguousarray(valid)[None]
    out = np.empty(len(boxes))
    _map_box_sums(np.ascontiguousarray(h)[None], v, 0, np.ascontiguousarray(boxes, np.float64), out)
    return out


def _rank(heatmap, valid, boxes, box_count, proposals, proposal_count, params, top_only):
    name = "rank_acc" if top_only else "proposal_rank"
    p = PARAMS.check(params, metric=name)
    check_inputs(
        name, heatmap, needs=("heatmap", "boxes"), valid=valid, boxes=boxes, box_count=box_count
    )
    if proposals is None or proposal_count is None:
        raise ProtocolError(
            f"metric {name!r} needs candidate boxes: set the protocol's proposals "
            "(a detector file, or gt)"
        )
    B = heatmap.shape[0]
    h = heatmap.detach().cpu()
    h = np.ascontiguousarray(
        (h.float() if h.dtype in (torch.float16, torch.bfloat16) else h).numpy()
    )
    v = _ALL_VALID if valid is None else np.ascontiguousarray(valid.cpu().numpy())
    props = np.ascontiguousarray(proposals.detach().cpu().double().numpy())
    gts = np.ascontiguousarray(boxes.detach().cpu().double().numpy())
    n_props = proposal_count.cpu().numpy().astype(np.int64)
    n_gts = box_count.cpu().numpy().astype(np.int64)
    out = np.full(B, math.nan)
    no_score = np.zeros(B, dtype=bool)
    nonfinite = np.zeros(B, dtype=bool)
    args = (h, v, props, n_props, gts, n_gts, float(p["alpha"]), float(p["iou"]))
    args += (p["rule"] == ">", top_only)

    def block(start: int, stop: int) -> None:
        _rank_rows(*args, start, stop, out, no_score, nonfinite)

    map_blocks(block, B, pixels=heatmap[0].numel() if B else 1)
    codes = [
        (torch.from_numpy(nonfinite), Undefined.NAN_INPUT),
        (box_count.cpu() == 0, Undefined.NO_BOX),
        (proposal_count.cpu() == 0, Undefined.NO_PROPOSAL),
    ]
    if top_only:
        codes.append((torch.from_numpy(no_score), Undefined.NO_POSITIVE_SCORE))
    else:
        codes.append((torch.from_numpy(np.isnan(out)), Undefined.NO_CORRECT_PROPOSAL))
    code = reasons(*codes)
    return MetricOutput(values=finish(torch.from_numpy(out), code), undefined=code)


@register_metric(
    "rank_acc",
    needs=("heatmap", "boxes", "proposals"),
    higher_is_better=True,
    range=(0.0, 1.0),
    params=PARAMS,
)
def rank_acc(
    heatmap: torch.Tensor,
    *,
    region: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    box_count: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    pred_box: torch.Tensor | None = None,
    proposals: torch.Tensor | None = None,
    proposal_count: torch.Tensor | None = None,
    iou: float = 0.5,
    rule: str = ">=",
    alpha: float = 0.5,
) -> MetricOutput:
    """1 per sample when the top-scoring candidate box is correct, else 0.

    Args:
        heatmap: ``(B, Y, X)`` float maps at the evaluation size.
        valid: ``(B, Y, X)`` bool, False on padding (never summed); None = all valid.
        boxes, box_count: ``(B, K, 4)`` float ``xyxy`` ground-truth boxes and ``(B,)`` counts.
        proposals, proposal_count: ``(B, M, 4)`` float ``xyxy`` candidates and ``(B,)`` counts.
        region, pred_mask, pred_box: ignored.
        iou: the IoU threshold in ``(0, 1]``.
        rule: ``">="`` (ALBEF) or ``">"`` (ReCLIP).
        alpha: the area exponent of the score, in ``[0, 4]``.

    Returns:
        :class:`MetricOutput` on CPU: values ``(B,)`` float64, 0 or 1; undefined
        ``nan_input``, ``no_box``, ``no_proposal``, ``no_positive_score``.

    Example:
        >>> h = torch.zeros(1, 4, 4); h[0, 2:, 2:] = 1.0
        >>> gt = torch.tensor([[[2.0, 2.0, 4.0, 4.0]]])
        >>> cand = torch.tensor([[[0.0, 0.0, 2.0, 2.0], [2.0, 2.0, 4.0, 4.0]]])
        >>> rank_acc(h, boxes=gt, box_count=torch.tensor([1]), proposals=cand,
        ...          proposal_count=torch.tensor([2])).values.tolist()
        [1.0]
    """
    params = {"iou": iou, "rule": rule, "alpha": alpha}
    return _rank(heatmap, valid, boxes, box_count, proposals, proposal_count, params, True)


@register_metric(
    "proposal_rank",
    needs=("heatmap", "boxes", "proposals"),
    higher_is_better=False,
    range=(1.0, float("inf")),
    params=PARAMS,
)
def proposal_rank(
    heatmap: torch.Tensor,
    *,
    region: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    box_count: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    pred_box: torch.Tensor | None = None,
    proposals: torch.Tensor | None = None,
    proposal_count: torch.Tensor | None = None,
    iou: float = 0.5,
    rule: str = ">=",
    alpha: float = 0.5,
) -> MetricOutput:
    """The 1-based score rank of the best-ranked correct candidate box, per sample.

    Args and returns as :func:`rank_acc`, but values are ranks ``>= 1`` and the last
    undefined reason is ``no_correct_proposal`` (no candidate reaches the IoU).

    Example:
        >>> h = torch.zeros(1, 4, 4); h[0, :2, :2] = 1.0
        >>> gt = torch.tensor([[[2.0, 2.0, 4.0, 4.0]]])
        >>> cand = torch.tensor([[[0.0, 0.0, 2.0, 2.0], [2.0, 2.0, 4.0, 4.0]]])
        >>> proposal_rank(h, boxes=gt, box_count=torch.tensor([1]), proposals=cand,
        ...               proposal_count=torch.tensor([2])).values.tolist()
        [2.0]
    """
    params = {"iou": iou, "rule": rule, "alpha": alpha}
    return _rank(heatmap, valid, boxes, box_count, proposals, proposal_count, params, False)
