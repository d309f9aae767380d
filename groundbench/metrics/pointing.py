"""The pointing game: does the heatmap's peak land on the phrase's referent?

A map *hits* when its argmax pixel lies in the ground-truth region ``R`` (or within
``tolerance_px`` of it), or — for the box-based variants — inside a ground-truth box.
Distances are Euclidean, between pixel centres ``(j + 0.5, i + 0.5)``, and inclusive
(``d <= tolerance_px``).

**Ties** (``ties``). ``"expected"``: when several valid pixels share the maximum, the score is
the fraction of them that hit, the expected score of a uniformly random tie-break.
``"first"``: only the first maximum in row-major order counts (``np.argmax``,
``(h == h.max()).nonzero()[0]``), as the lineages' code does. ``extras["tie_count"]`` holds the
number of tied maxima per map either way, so a flat map (every pixel tied) is easy to spot.

**Point** (``coords``, box variants). ``"index"``: the integer index ``(j, i)`` is tested
against the box, as the lineages' code does; ``"centre"``: the pixel centre
``(j + 0.5, i + 0.5)``. ``box_convention`` says how the lineage's loader stores the box the
index is compared with: ``"xyxy"`` (groundbench's own numbers: COCO ``x, x + w``), or the
integer corners ``"corners_1based"`` (``[x0 + 1, y0 + 1, x1, y1]``, Flickr30k's XML as MG
reads it) and ``"corners_0based"`` (``[x0, y0, x1 - 1, y1 - 1]``, the XML minus 1, as WWbL's
and SelfEQ's Flickr30k boxes).

**Variants** (docs/metrics.md gives their sources; ``None`` for ``coords``/``ties`` means the
variant's own rule):

* ``None``: hit in ``R`` dilated by ``tolerance_px`` (default 0: in ``R`` itself); pixel
  centres, ties ``expected``.
* ``"zhang2016"``: tolerance 15 px to ``R``, inclusive (TorchRay uses strict ``d < 15``);
  pixel centres, ties ``expected``.
* ``"mg"``: argmax index inside any ground-truth box, boundaries included, first maximum
  (MG's ``isCorrectHit``).
* ``"albef"``: argmax index strictly inside any ground-truth box, first maximum (SelfEQ /
  AMC ``point_in_box``).

``coords="centre", ties="expected"`` with ``mg`` or ``albef`` is the pixel-centre rule
groundbench used before it followed the lineages' code (display key
``pointing[mg,centre,expected]``).

The sample selection a variant implies in the literature (``mg`` drops small phrases) is the
protocol's job, never the metric's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from groundbench.metrics import MAX_DISTANCE_PX, Param, Params, _inputs, register_metric
from groundbench.metrics._inputs import (
    check_inputs,
    chunked_output,
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
POINTING_COORDS: tuple[str, ...] = ("index", "centre")
POINTING_TIES: tuple[str, ...] = ("first", "expected")
BOX_CONVENTIONS: tuple[str, ...] = ("xyxy", "corners_1based", "corners_0based")
ZHANG2016_TOLERANCE_PX = 15.0
# Tied maxima per map up to which the tolerance test gathers a disc around each of them;
# maps with more ties (flat maps) use an exact distance transform instead.
_GATHER_TIE_LIMIT = 256


class Rule(NamedTuple):
    """A resolved pointing rule: what is tested, against what, and how ties count."""

    kind: str  # "region", "closed_box" or "open_box"
    tolerance_px: float
    coords: str  # "index" or "centre"
    ties: str  # "first" or "expected"
    box_convention: str


def _conflict(values: Mapping[str, Any]) -> str | None:
    """Why checked ``values`` do not make one rule, or None."""
    variant, tol = values["variant"], values["tolerance_px"]
    if variant is not None and tol != 0:
        return f"variant {variant!r} fixes its own tolerance; drop tolerance_px={tol:g}"
    if variant not in ("mg", "albef") and (
        values["coords"] == "index" or values["box_convention"] != "xyxy"
    ):
        return (
            "coords and box_convention apply to the box variants 'mg' and 'albef'; the region "
            f"rule of variant {variant!r} tests pixels of R, drop them"
        )
    return None


def resolve_rule(values: Mapping[str, Any]) -> Rule:
    """The :class:`Rule` of checked parameters, ``coords``/``ties`` filled from the variant."""
    variant, coords, ties = values["variant"], values["coords"], values["ties"]
    if variant in ("mg", "albef"):
        kind = "closed_box" if variant == "mg" else "open_box"
        return Rule(kind, 0.0, coords or "index", ties or "first", values["box_convention"])
    tol = ZHANG2016_TOLERANCE_PX if variant == "zhang2016" else values["tolerance_px"]
    return Rule("region", tol, "centre", ties or "expected", "xyxy")


def _explicit(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with the variant's own ``coords`` and ``ties`` written out, so a spec that
    relies on them and one that spells them out hash the same."""
    rule = resolve_rule(values)
    return {**values, "coords": rule.coords, "ties": rule.ties}


def _pointing_key(name: str, values: Mapping[str, Any]) -> str:
    """``pointing``, ``pointing@15px``, ``pointing[mg]``; a rule other than the variant's own
    is appended: ``pointing[mg,centre,expected]``, ``pointing[mg,corners_1based]``."""
    variant = values["variant"]
    own = resolve_rule({**values, "coords": None, "ties": None, "box_convention": "xyxy"})
    rule = resolve_rule(values)
    fields = ("coords", "ties", "box_convention")
    shown = [getattr(rule, f) for f in fields if getattr(rule, f) != getattr(own, f)]
    if variant is not None:
        return f"{name}[{','.join([variant, *shown])}]"
    tol = values["tolerance_px"]
    base = f"{name}@{tol:g}px" if tol else name
    return f"{base}[{','.join(shown)}]" if shown else base


PARAMS = Params(
    Param("variant", None, choices=POINTING_VARIANTS, kind=str),
    Param("tolerance_px", 0.0, low=0.0, high=MAX_DISTANCE_PX),
    Param("coords", None, choices=(None, *POINTING_COORDS), kind=str),
    Param("ties", None, choices=(None, *POINTING_TIES), kind=str),
    Param("box_convention", "xyxy", choices=BOX_CONVENTIONS),
    rule=_conflict,
    key=_pointing_key,
    resolve=_explicit,
)


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
    rule: Rule,
) -> torch.Tensor:
    """Per map, the number of the given pixels whose point (index or centre) is in a real box.

    ``coords`` are the ``(b, y, x)`` int64 of the pixels, on the device of the result; the
    boxes are first written in ``rule.box_convention``.
    """
    b, y, x = coords
    dev = b.device
    shift = 0.5 if rule.coords == "centre" else 0.0
    py = (y.double() + shift)[:, None]
    px = (x.double() + shift)[:, None]
    bx = boxes.to(dev, torch.float64)[b]  # T K 4
    if rule.box_convention == "corners_1based":
        bx = bx + bx.new_tensor([1.0, 1.0, 0.0, 0.0])
    elif rule.box_convention == "corners_0based":
        bx = bx - bx.new_tensor([0.0, 0.0, 1.0, 1.0])
    real = torch.arange(bx.shape[1], device=dev)[None, :] < box_count.to(dev)[b, None]
    if rule.kind == "open_box":
        inside = (bx[..., 0] < px) & (px < bx[..., 2]) & (bx[..., 1] < py) & (py < bx[..., 3])
    else:
        inside = (bx[..., 0] <= px) & (px <= bx[..., 2]) & (bx[..., 1] <= py) & (py <= bx[..., 3])
    hit = (inside & real).any(dim=1)
    hits = torch.zeros(B, dtype=torch.long, device=dev)
    return hits.index_add_(0, b, hit.long())


def _first_of_each(coords: tuple, tie_count: torch.Tensor) -> tuple:
    """The first of each map's tied pixels (row-major order), from all of them in order."""
    if isinstance(coords[0], torch.Tensor):
        counts = tie_count.to(coords[0].device)
        starts = (torch.cumsum(counts, 0) - counts)[counts > 0]
    else:
        n = tie_count.numpy()
        starts = (np.cumsum(n) - n)[n > 0]
    return tuple(c[starts] for c in coords)


def _hits_in_region(coords: tuple, region: torch.Tensor, B: int) -> torch.Tensor:
    """Per map, how many of the given pixels lie in the (valid) region (CPU int64)."""
    b, y, x = (torch.as_tensor(c, device=region.device) for c in coords)
    hits = torch.zeros(B, dtype=torch.long, device=region.device)
    return hits.index_add_(0, b, region[b, y, x].long()).cpu()


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
    coords: str | None = None,
    ties: str | None = None,
    box_convention: str = "xyxy",
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
        coords: ``"index"`` or ``"centre"``: the point the box variants test; None = the
            variant's own (``index``).
        ties: ``"first"`` or ``"expected"``; None = the variant's own (``first`` for ``mg``
            and ``albef``, ``expected`` for the region rules).
        box_convention: ``"xyxy"``, ``"corners_1based"`` or ``"corners_0based"``: the box
            numbers a box variant compares the point with (module docstring).

    Returns:
        :class:`MetricOutput` on CPU: values ``(B,)`` float64 in ``[0, 1]``; undefined codes
        ``nan_input`` (NaN/Inf on a valid pixel), ``empty_region`` (no valid region pixel, or
        no valid pixel at all), ``no_box`` (box variants, ``box_count == 0``);
        ``extras["tie_count"]`` ``(B,)`` int64, the number of tied maxima.

    Raises:
        ProtocolError: unknown variant or rule value, a tolerance given together with a
            variant, or ``coords``/``box_convention`` given to a region rule.
        DataFormatError: missing or misshapen inputs.

    Example:
        >>> h = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
        >>> region = torch.tensor([[[False, True], [False, False]]])
        >>> out = pointing(h, region=region)
        >>> out.values.tolist(), out.extras["tie_count"].tolist()
        ([0.5], [2])
    """
    given = {"variant": variant, "tolerance_px": tolerance_px, "coords": coords, "ties": ties}
    rule = resolve_rule(
        PARAMS.check({**given, "box_convention": box_convention}, metric="pointing")
    )
    needs = ("heatmap", "region") if rule.kind == "region" else ("heatmap", "boxes")
    inputs = check_inputs(
        "pointing",
        heatmap,
        needs=needs,
        region=region,
        valid=valid,
        boxes=boxes,
        box_count=box_count,
    )
    first = rule.ties == "first"
    values, codes, ties_out = [], [], []
    for rows, h, v in iter_chunks(inputs):
        B = h.shape[0]
        reg = inputs.region[rows] if rule.kind == "region" else None
        s = shared_summaries(inputs, rows, h, v) if reg is not None else None
        if s is None and _inputs.use_numpy(h):
            s = summarise(h, v, reg, ANY)  # n_pos only tells an empty region
        if s is not None:
            hits, n_pos, nonfinite, tie_count = s.tied_in_region, s.n_pos, s.nonfinite, s.tie_count
            points = _peak_coords(s.tied, tie_count, h.shape[2])
        else:
            _, hi, nonfinite = masked_minmax(h, v)
            tied = equal_to(h, torch.where(nonfinite, torch.nan, hi), v)
            tie_count = count(tied, None)
            hits = count(tied, reg) if reg is not None else None
            n_pos = count(reg, v) if reg is not None else None
            points = true_coords(tied)
        if first:
            points = _first_of_each(points, tie_count)
            scored = (tie_count > 0).long()
        else:
            scored = tie_count
        if rule.kind == "region":
            if rule.tolerance_px != 0:
                b, y, x = (c.cpu().numpy() if isinstance(c, torch.Tensor) else c for c in points)
                reg_np = restrict(reg, v).cpu().numpy()
                hits = _hits_near_region((b, y, x), reg_np, scored.cpu().numpy(), rule.tolerance_px)
            elif first:
                hits = _hits_in_region(points, reg, B)
            missing = (n_pos == 0, Undefined.EMPTY_REGION)
        else:
            bc = inputs.box_count[rows]
            points = tuple(torch.as_tensor(c, device=inputs.boxes.device) for c in points)
            hits = _hits_in_boxes(points, B, inputs.boxes[rows], bc, rule).cpu()
            missing = (bc.cpu() == 0, Undefined.NO_BOX)
        no_pixel = (tie_count == 0) & ~nonfinite
        code = reasons(
            (nonfinite, Undefined.NAN_INPUT), missing, (no_pixel, Undefined.EMPTY_REGION)
        )
        values.append(finish(hits.double() / scored.cpu().clamp(min=1).double(), code))
        codes.append(code)
        ties_out.append(tie_count.cpu())
    ties = torch.cat(ties_out) if ties_out else torch.zeros(0, dtype=torch.long)
    return chunked_output(values, codes, {"tie_count": ties})
