"""Distribution metrics against the ground-truth saliency map: ``cc``, ``kl`` and ``sim``.

The ground-truth saliency map ``G`` is the region indicator (``sigma_px = 0``) or that
indicator blurred by a Gaussian of ``sigma_px`` pixels (as ``spearman``'s target), over the
valid pixels. The conventions are pysaliency's (``pysaliency/metrics.py``), which reproduce
the MIT/Tübingen saliency benchmark:

* ``cc``: Pearson's correlation of ``H`` and ``G`` (``CC``). A constant map scores 0.
* ``kl``: ``Σ p · log(ε + p / (q + ε))`` with ``p = G / ΣG``, ``q`` the map's density and
  ``ε = 2.2204e-16`` (``MIT_KLDiv``: Matlab's ``eps`` in the benchmark's code). Lower is
  better; 0 when ``q = p``.
* ``sim``: ``Σ min(p, q)`` (``SIM``, histogram intersection), in ``[0, 1]``.

The map's density ``q`` is pysaliency's ``convert_saliency_map_to_density``: the map minus
its minimum *only when that minimum is negative*, divided by its sum (a map summing to 0
becomes uniform). The MIT Matlab code min-max normalises the map first for SIM and does not
shift it for KL; the two agree on maps whose minimum is 0 (docs/metrics.md).

Undefined: ``nan_input``, ``empty_region`` (``G`` is 0: no density) and ``full_region`` (the
region covers every valid pixel: nothing is located).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from groundbench.metrics import MAX_DISTANCE_PX, Param, Params, _inputs, _scan, register_metric
from groundbench.metrics._inputs import (
    check_inputs,
    chunked_output,
    count,
    finish,
    iter_chunks,
    masked_minmax,
    masked_sq_dev,
    masked_sum,
    n_valid,
    reasons,
    restrict,
)
from groundbench.metrics._permap import (
    _BITS,
    SPREAD,
    SUMS,
    map_blocks,
    map_threads,
    summarise,
)
from groundbench.metrics._ranks import per_map_arrays, shared_summaries
from groundbench.metrics._scan import _add
from groundbench.metrics.spearman import blur_region
from groundbench.types import MetricOutput, Undefined

#: The KL regularisation of the MIT/Tübingen benchmark (pysaliency's ``MIT_KLDiv``).
KL_EPSILON = 2.2204e-16

PARAMS = Params(
    Param("sigma_px", 0.0, low=0.0, high=MAX_DISTANCE_PX),
    key=lambda name, v: f"{name}@sigma{v['sigma_px']:g}px" if v["sigma_px"] else name,
)

_CC, _KL, _SIM = 0, 1, 2


@numba.njit(nogil=True, cache=True, fastmath={"reassoc"})
def _block_sim(values, region, shift, scale, inv_p):  # pragma: no cover - compiled
    acc = 0.0
    for i in range(values.size):
        q = (np.float64(values[i]) - shift) * scale
        acc += min(q, inv_p) if region[i] else 0.0
    return acc


@numba.njit(nogil=True, cache=True)
def _kl_quotients(values, region, shift, scale, inv_p, out):  # pragma: no cover - compiled
    """Write ``ε + 1/P / (q + ε)`` of each region pixel to ``out``; return how many. Skips
    8 region bytes at a time where none is set (the logs then run vectorised in numpy)."""
    m = 0
    n = values.size
    words = region[: n - n % 8].view(np.uint64)
    for w in range(words.size + 1):
        if w < words.size and words[w] == 0:
            continue
        for i in range(8 * w, min(8 * w + 8, n) if w < words.size else n):
            if region[i]:
                q = (np.float64(values[i]) - shift) * scale
                out[m] = KL_EPSILON + inv_p / (q + KL_EPSILON)
                m += 1
    return m


@numba.njit(nogil=True, cache=True)
def _sim_terms(values, region, shift, total, inv_p):  # pragma: no cover - compiled
    """``Σ_R min(q, 1/P)``, ``q = (h - shift) / total``: sums reordered within blocks of 4096
    pixels (so they vectorise), blocks added with compensation."""
    acc = comp = 0.0
    scale = 1.0 / total
    for start in range(0, values.size, 4096):
        stop = min(values.size, start + 4096)
        term = _block_sim(values[start:stop], region[start:stop], shift, scale, inv_p)
        acc, comp = _add(acc, comp, term)
    return acc + comp


@numba.njit(nogil=True, cache=True)
def _shifted_sum(values, shift):  # pragma: no cover - compiled
    acc = comp = 0.0
    for i in range(values.size):
        acc, comp = _add(acc, comp, np.float64(values[i]) - shift)
    return acc + comp


def _density(x: np.ndarray) -> np.ndarray:
    """pysaliency's ``convert_saliency_map_to_density`` (minimum 0), float64."""
    x = x.astype(np.float64)
    if x.min() < 0:
        x = x - x.min()
    total = x.sum()
    return x / total if total else np.full(x.shape, 1.0 / x.size)


def _one_map(h: np.ndarray, g: np.ndarray, kind: int) -> float:
    """The metric of one map from its valid values and target ``g`` (float64), any target."""
    if kind == _CC:
        hc = h.astype(np.float64) - h.mean(dtype=np.float64)
        gc = g - g.mean()
        sh = float(np.dot(hc, hc))
        if sh == 0:
            return 0.0
        return float(np.dot(hc, gc)) / math.sqrt(sh * float(np.dot(gc, gc)))
    p, q = _density(g), _density(h)
    if kind == _SIM:
        return float(np.minimum(p, q).sum())
    return float(np.sum(p * np.log(KL_EPSILON + p / (q + KL_EPSILON))))


def _indicator_cpu(h, v, reg, s, kind: int) -> tuple[torch.Tensor, ...]:
    """KL or SIM against the plain indicator on the CPU: ``(lo, hi, nonfinite, n, n_pos,
    values)`` per map.

    Without shared summaries ``s``, each map is summarised just before its region pass, so
    that pass reads the map from the cache.
    """
    B = h.shape[0]
    h_np = np.ascontiguousarray(h.numpy().reshape(B, -1))
    int_type, uint_type, constants = _BITS[h_np.dtype]
    r_np = reg.numpy().reshape(B, -1).view(np.uint8)
    v_np = None if v is None else v.numpy().reshape(B, -1)
    if s is not None:
        numbers = torch.stack([s.lo, s.hi, s.nonfinite.double(), s.n_pos.double(), s.total], 1)
        numbers, n = numbers.numpy().copy(), s.n.numpy().copy()
    else:
        numbers, n = np.zeros((B, 5)), np.zeros(B, dtype=np.int64)
    out = np.full(B, np.nan)

    def block(start: int, stop: int) -> None:
        for i in range(start, stop):
            x, r = (h_np[i], r_np[i]) if v_np is None else (h_np[i][v_np[i]], r_np[i][v_np[i]])
            if s is None:
                got = _scan.summary(x, x.view(int_type), x.view(uint_type), r, *constants, SUMS)
                numbers[i] = (got[0], got[1], got[2], got[3], got[5])
                n[i] = x.size
            lo, _, nonfinite, n_pos, total = numbers[i]
            if n_pos == 0 or nonfinite:
                continue
            shift = min(float(lo), 0.0)
            mass = float(total) if shift == 0 else _shifted_sum(x, shift)
            inv_p = 1.0 / n_pos
            if mass == 0:  # pysaliency: a map summing to 0 becomes uniform, q = 1 / n
                q = 1.0 / float(n[i])
                if kind == _KL:
                    out[i] = math.log(KL_EPSILON + inv_p / (q + KL_EPSILON))
                else:
                    out[i] = n_pos * min(q, inv_p)
            elif kind == _KL:
                quotients = np.empty(int(n_pos))
                m = _kl_quotients(x, r, shift, 1.0 / mass, inv_p, quotients)
                out[i] = inv_p * float(np.log(quotients[:m]).sum())
            else:
                out[i] = _sim_terms(x, r, shift, mass, inv_p)

    map_blocks(block, B, pixels=max(h_np.shape[1], 1))
    col = torch.from_numpy(numbers)
    n_pos = col[:, 3].long()
    return col[:, 0], col[:, 1], col[:, 2] != 0, torch.from_numpy(n), n_pos, torch.from_numpy(out)


def _indicator_torch(h, v, reg, kind: int) -> torch.Tensor:
    """All three against the plain indicator, batched torch float64 (GPU)."""
    hd = h.double()
    if v is not None:
        hd = torch.where(v, hd, 0.0)
    lo, _, _ = masked_minmax(h, v)
    n = n_valid(h, v).to(h.device).double()
    n_pos = count(reg, None).to(h.device).double()
    shift = lo.to(h.device).clamp(max=0.0)
    shifted = hd - shift[:, None, None]
    if v is not None:
        shifted = torch.where(v, shifted, 0.0)
    mass = shifted.flatten(1).sum(dim=1)
    q = torch.where(
        mass[:, None, None] != 0,
        shifted / mass.clamp(min=1e-300)[:, None, None],
        1.0 / n.clamp(min=1)[:, None, None],
    )
    inv_p = (1.0 / n_pos.clamp(min=1))[:, None, None]
    if kind == _SIM:
        terms = torch.minimum(q, inv_p)
    else:
        terms = inv_p * torch.log(KL_EPSILON + inv_p / (q + KL_EPSILON))
    return torch.where(reg, terms, 0.0).flatten(1).sum(dim=1).cpu()


def _cc_from_sums(total, region_total, sq_dev, n, n_pos, lo, hi) -> torch.Tensor:
    """Pearson's r with an indicator: ``(mean_R H - mean H) / std H · sqrt(P / N)``."""
    nd, pd = n.double().clamp(min=1), n_pos.double()
    lift = region_total / pd.clamp(min=1) - total / nd
    std = (sq_dev / nd).sqrt()
    r = lift / std.clamp(min=1e-300) * (pd / (nd - pd).clamp(min=1)).sqrt()
    return torch.where(lo == hi, 0.0, r)


def _saliency(name: str, kind: int, heatmap, region, valid, sigma_px) -> MetricOutput:
    sigma_px = PARAMS.check({"sigma_px": sigma_px}, metric=name)["sigma_px"]
    inputs = check_inputs(name, heatmap, needs=("heatmap", "region"), region=region, valid=valid)
    values, codes = [], []
    for rows, h, v in iter_chunks(inputs):
        reg = restrict(inputs.region[rows], v)
        s = shared_summaries(inputs, rows, h, v)
        fused = kind != _CC and not sigma_px and _inputs.use_numpy(h)
        if fused:  # KL and SIM read each map twice: summarised just before, it stays cached
            lo, hi, nonfinite, n, n_pos, score = _indicator_cpu(h, v, reg, s, kind)
        else:
            if s is None and _inputs.use_numpy(h):
                s = summarise(h, v, inputs.region[rows], SPREAD)
            if s is not None:
                lo, hi, nonfinite, n, n_pos = s.lo, s.hi, s.nonfinite, s.n, s.n_pos
            else:
                lo, hi, nonfinite = masked_minmax(h, v)
                n, n_pos = n_valid(h, v), count(reg, None)
        code = reasons(
            (nonfinite, Undefined.NAN_INPUT),
            (n_pos == 0, Undefined.EMPTY_REGION),
            (n_pos == n, Undefined.FULL_REGION),
        )
        if sigma_px:
            usable = (code == 0).tolist()
            get = per_map_arrays(h, reg, v, usable)
            reg_np = reg.cpu().numpy()
            v_np = None if v is None else v.cpu().numpy()

            def one(i: int, get=get, reg_np=reg_np, v_np=v_np) -> float:
                arrays = get(i)
                if arrays is None:
                    return math.nan
                target = blur_region(reg_np[i], sigma_px)
                target = target.ravel() if v_np is None else target[v_np[i]]
                return _one_map(arrays[0], target, kind)

            score = torch.tensor(
                map_threads(one, h.shape[0], pixels=h[0].numel()), dtype=torch.float64
            )
        elif kind == _CC:
            if s is None:
                total = masked_sum(h, v)
                sums = (total, masked_sum(h, reg), masked_sq_dev(h, v, total / n.clamp(min=1)))
            else:
                sums = (s.total, s.region_total, s.sq_dev)
            score = _cc_from_sums(*sums, n, n_pos, lo, hi)
        elif not fused:
            score = _indicator_torch(h, v, reg, kind)
        values.append(finish(score, code))
        codes.append(code)
    return chunked_output(values, codes)


@register_metric(
    "cc", needs=("heatmap", "region"), higher_is_better=True, range=(-1.0, 1.0), params=PARAMS
)
def cc(
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
    """Pearson's correlation per map between the heatmap and the target (0 for a constant map).

    Args:
        heatmap: ``(B, Y, X)`` float32/float16/bfloat16 maps.
        region: ``(B, Y, X)`` bool ground-truth region.
        valid: ``(B, Y, X)`` bool, False on padding; None = all valid.
        boxes, box_count, pred_mask, pred_box: ignored.
        sigma_px: Gaussian blur of the target in pixels; 0 = the plain indicator.

    Returns:
        :class:`MetricOutput` on CPU: values ``(B,)`` float64; undefined ``nan_input``,
        ``empty_region`` and ``full_region``.

    Example:
        >>> h = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
        >>> cc(h, region=h > 0).values.tolist()
        [1.0]
    """
    return _saliency("cc", _CC, heatmap, region, valid, sigma_px)


@register_metric(
    "kl",
    needs=("heatmap", "region"),
    higher_is_better=False,
    range=(float("-inf"), float("inf")),  # >= 0 up to ε: a map equal to its target gives ~ -ε·n
    params=PARAMS,
)
def kl(
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
    """KL divergence per map of the map's density from the target's (MIT convention, nats).

    Args and returns as :func:`cc`.

    Example:
        >>> h = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
        >>> same, apart = kl(h, region=h > 0), kl(h, region=h == 0)
        >>> abs(same.values.item()) < 1e-15, round(apart.values.item(), 3)
        (True, 35.351)
    """
    return _saliency("kl", _KL, heatmap, region, valid, sigma_px)


@register_metric(
    "sim", needs=("heatmap", "region"), higher_is_better=True, range=(0.0, 1.0), params=PARAMS
)
def sim(
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
    """Histogram intersection per map of the map's density and the target's.

    Args and returns as :func:`cc`.

    Example:
        >>> h = torch.tensor([[[3.0, 1.0], [0.0, 0.0]]])
        >>> sim(h, region=torch.tensor([[[True, True], [False, False]]])).values.tolist()
        [0.75]
    """
    return _saliency("sim", _SIM, heatmap, region, valid, sigma_px)
