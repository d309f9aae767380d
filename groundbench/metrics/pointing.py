"""The pointing game: does the heatmap's peak land on the phrase's referent?

A map *hits* when its argmax pixel lies in the ground-truth region ``R`` (or within
``tolerance_px`` of it), or — for the box-based variants — inside a ground-truth box.
Distances are Euclidean, between pixel centres ``(j + 0.5, i + 0.5)``, and inclusive
(``d <= tolerance_px``).

**Ties.** When several valid pixels share the maximum, the score is the fraction of them that
hit: the expected score of a uniformly random tie-break. ``extras["tie_count"]`` holds the
number of tied maxima per map, so a flat map (every pixel tied) is easy to spot.

**Variants** (docs/metrics.md gives their sources):

* ``None``: hit in ``R`` dilated by ``tolerance_px`` (default 0: in ``R`` itself).
* ``"zhang2016"``: tolerance 15 px to ``R``, inclusive (TorchRay uses strict ``d < 15``).
* ``"mg"``: argmax pixel centre inside any ground-truth box, boundaries included.
* ``"albef"``: argmax pixel centre strictly inside any ground-truth box (open box).

The sample selection a variant implies in the literature (``mg`` drops small phrases) is the
protocol's job, never the metric's.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from groundbench.metrics import MAX_DISTANCE_PX, Param, Params, _inputs, register_metric
from groundbench.metrics._inputs import (
    check_inputs,
    count,
    equal_to,
    finish,
    iter_chunks,
    masked_minmax,
    reasons,
    restrict,
    true_coords,
)
from groundbench.metrics._permap import ANY, summarise
from groundbench.metrics._ranks import shared_summaries
from groundbench.types import MetricOutput, Undefined

POINTING_VARIANTS: tuple[str | None, ...] = (None, "zhang2016", "mg", "albef")
ZHANG2016_TOLERANCE_PX = 15.0
# Tied maxima per map up to which the tolerance test gathers a disc around each of them;
# maps with more ties (flat maps) use an exact distance transform instead.
_GATHER_TIE_LIMIT = 256


def _one_tolerance(values: dict) -> str | None:
    variant, tol = values["variant"], values["tolerance_px"]
    if variant is not None and tol != 0:
        return f"variant {variant!r} fixes its own tolerance; drop tolerance_px={tol:g}"
    return None


def _pointing_key(name: str, values: dict) -> str:
    if values["variant"] is not None:
        return f"{name}[{values['variant']}]"
    tol = values["tolerance_px"]
    return f"{name}@{tol:g}px" if tol else name


PARAMS = Params(
    Param("variant", None, choices=POINTING_VARIANTS, kind=str),
    Param("tolerance_px", 0.0, low=0.0, high=MAX_DISTANCE_PX),
    rule=_one_tolerance,
    key=_pointing_key,
)


def _rule(variant: str | None, tolerance_px: float) -> tuple[str, float]:
    """The hit rule (``region``, ``closed_box``, ``open_box``) and its tolerance in pixels."""
    if variant == "zhang2016":
        return "region", ZHANG2016_TOLERANCE_PX
    if variant == "mg":
        return "closed_box", 0.0
    if variant == "albef":
        return "open_box", 0.0
    return "region", tolerance_px


def _disc_offsets(tolerance_px: float) -> tuple[np.ndarray, np.ndarray]:
    r = int(math.floor(tolerance_px))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = (dy * dy + dx * dx).astype(np.float64) <= tolerance_px * tolerance_px
    return dy[inside], dx[inside]


def _hits_near_region(
    coords: tuple[np.ndarray, np.ndarray, np.ndarray],
    region: np.ndarray,
    tie_count: np.ndarray,
    tolerance_px: float,
) -> torch.Tensor:
    """Per map, the number of tied pixels within ``tolerance_px`` of a region pixel (CPU int64).

    ``coords`` are the ``(b, y, x)`` of the tied pixels, ``region`` the ``(B, Y, X)`` valid
    region. A few gathers per tied pixel, or an exact Euclidean distance transform for maps
    with many ties.
    """
    from scipy.ndimage import distance_transform_edt

    B, Y, X = region.shape
    hits = np.zeros(B, dtype=np.int64)
    few = tie_count <= _GATHER_TIE_LIMIT
    b, y, x = coords
    keep = few[b]
    if keep.any():
        bk, yk, xk = b[keep], y[keep], x[keep]
        dy, dx = _disc_offsets(tolerance_px)
        ny, nx = yk[:, None] + dy, xk[:, None] + dx  # T D
        inside = (ny >= 0) & (ny < Y) & (nx >= 0) & (nx < X)
        near = (region[bk[:, None], ny.clip(0, Y - 1), nx.clip(0, X - 1)] & inside).any(axis=1)
        np.add.at(hits, bk, near)
    for i in np.flatnonzero(~few):
        if region[i].any():
            # distance from each pixel centre to the nearest region pixel centre
            near = distance_transform_edt(~region[i]) <= tolerance_px
            mine = b == i
            hits[i] = np.count_nonzero(near[y[mine], x[mine]])
    return torch.from_numpy(hits)


def _hits_in_boxes(
    coords: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    B: int,
    boxes: torch.Tensor,
    box_count: torch.Tensor,
    strict: bool,
) -> torch.Tensor:
    """Per map, the number of tied pixels whose centre is in a real box (closed or open).

    ``coords`` are the ``(b, y, x)`` int64 of the tied pixels, on the device of the result.
    """
    b, y, x = coords
    dev = b.device
    cy = (y.double() + 0.5)[:, None]
    cx = (x.double() + 0.5)[:, None]
    bx = boxes.to(dev, torch.float64)[b]  # T K 4
    real = torch.arange(bx.shape[1], device=dev)[None, :] < box_count.to(dev)[b, None]
    if strict:
        inside = (bx[..., 0] < cx) & (cx < bx[..., 2]) & (bx[..., 1] < cy) & (cy < bx[..., 3])
    else:
        inside = (bx[..., 0] <= cx) & (cx <= bx[..., 2]) & (bx[..., 1] <= cy) & (cy <= bx[..., 3])
    hit = (inside & real).any(dim=1)
    hits = torch.zeros(B, dtype=torch.long, device=dev)
    return hits.index_add_(0, b, hit.long())


def _peak_coords(
    tied: np.ndarray, tie_count: torch.Tensor, X: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(b, y, x)`` of flat tied pixel indices, ``tie_count`` of them per map in order."""
    b = np.repeat(np.arange(tie_count.shape[0]), tie_count.numpy())
    y, x = np.divmod(tied, X)
    return b, y, x


@register_metric(
    "pointing",
    needs=("heatmap", "region", "boxes"),
    higher_is_better=True,
    range=(0.0, 1.0),
    params=PARAMS,
)
def pointing(
    heatmap: torch.Tensor,
    *,
    region: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    box_count: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    pred_box: torch.Tensor | None = None,
    variant: str | None = None,
    tolerance_px: float = 0.0,
) -> MetricOutput:
    """Score the pointing game per map (1 = hit, 0 = miss, fractions on ties).

    Args:
        heatmap: ``(B, Y, X)`` float32/float16/bfloat16 maps.
        region: ``(B, Y, X)`` bool ground-truth region; needed unless ``variant`` is ``mg``
            or ``albef``.
        valid: ``(B, Y, X)`` bool, False on padding (never a maximum); None = all valid.
        boxes: ``(B, K, 4)`` float ``xyxy`` pixels; needed by ``mg`` and ``albef``.
        box_count: ``(B,)`` long, real boxes per map.
        pred_mask: ignored.
        pred_box: ignored.
        variant: ``None``, ``"zhang2016"``, ``"mg"`` or ``"albef"`` (module docstring).
        tolerance_px: hit distance in pixels for ``variant=None`` (inclusive).

    Returns:
        :class:`MetricOutput` on CPU: values ``(B,)`` float64 in ``[0, 1]``; undefined codes
        ``nan_input`` (NaN/Inf on a valid pixel), ``empty_region`` (no valid region pixel, or
        no valid pixel at all), ``no_box`` (box variants, ``box_count == 0``);
        ``extras["tie_count"]`` ``(B,)`` int64, the number of tied maxima.

    Raises:
        ProtocolError: unknown variant, or a tolerance given together with a variant.
        DataFormatError: missing or misshapen inputs.

    Example:
        >>> h = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
        >>> region = torch.tensor([[[False, True], [False, False]]])
        >>> out = pointing(h, region=region)
        >>> out.values.tolist(), out.extras["tie_count"].tolist()
        ([0.5], [2])
    """
    checked = PARAMS.check({"variant": variant, "tolerance_px": tolerance_px}, metric="pointing")
    rule, tol = _rule(checked["variant"], checked["tolerance_px"])
    needs = ("heatmap", "region") if rule == "region" else ("heatmap", "boxes")
    inputs = check_inputs(
        "pointing",
        heatmap,
        needs=needs,
        region=region,
        valid=valid,
        boxes=boxes,
        box_count=box_count,
    )
    values, codes, ties = [], [], []
    for rows, h, v in iter_chunks(inputs):
        reg = inputs.region[rows] if rule == "region" else None
        s = shared_summaries(inputs, rows, h, v) if reg is not None else None
        if s is None and _inputs.use_numpy(h):
            s = summarise(h, v, reg, ANY)  # n_pos only tells an empty region
        if s is not None:
            hits, n_pos, nonfinite, tie_count = s.tied_in_region, s.n_pos, s.nonfinite, s.tie_count
            coords = _peak_coords(s.tied, tie_count, h.shape[2])
        else:
            _, hi, nonfinite = masked_minmax(h, v)
            tied = equal_to(h, torch.where(nonfinite, torch.nan, hi), v)
            tie_count = count(tied, None)
            hits = count(tied, reg) if reg is not None else None
            n_pos = count(reg, v) if reg is not None else None
            coords = true_coords(tied)
        if rule == "region":
            if tol != 0:
                b, y, x = (c.cpu().numpy() if isinstance(c, torch.Tensor) else c for c in coords)
                reg_np = restrict(reg, v).cpu().numpy()
                hits = _hits_near_region((b, y, x), reg_np, tie_count.cpu().numpy(), tol)
            missing = (n_pos == 0, Undefined.EMPTY_REGION)
        else:
            bc = inputs.box_count[rows]
            coords = tuple(torch.as_tensor(c, device=inputs.boxes.device) for c in coords)
            hits = _hits_in_boxes(
                coords, h.shape[0], inputs.boxes[rows], bc, strict=rule == "open_box"
            ).cpu()
            missing = (bc.cpu() == 0, Undefined.NO_BOX)
        no_pixel = (tie_count == 0) & ~nonfinite
        code = reasons(
            (nonfinite, Undefined.NAN_INPUT), missing, (no_pixel, Undefined.EMPTY_REGION)
        )
        values.append(finish(hits.double() / tie_count.clamp(min=1).double(), code))
        codes.append(code)
        ties.append(tie_count.cpu())
    return MetricOutput(
        values=torch.cat(values) if values else torch.zeros(0, dtype=torch.float64),
        undefined=torch.cat(codes) if codes else torch.zeros(0, dtype=torch.int8),
        extras={"tie_count": torch.cat(ties) if ties else torch.zeros(0, dtype=torch.long)},
    )
