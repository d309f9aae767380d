"""Input checks, chunking and the per-map statistics several metrics share.

Every metric validates its tensors once with :func:`check_inputs`, then walks the batch in
chunks (:func:`iter_chunks`) so that temporaries stay bounded whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from groundbench.errors import DataFormatError
from groundbench.types import MetricOutput, Undefined

# Pixels per chunk: about 64 MB per float32 temporary (54 maps of 480×640). Chunks bound
# the temporaries of the torch path, the upcast of half maps and the masks of padded maps;
# unpadded float32/float64 maps on the CPU make none, so they run as one chunk.
CHUNK_PIXELS = 1 << 24

_HALF = (torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class Inputs:
    """One metric call's tensors, checked. Shapes: ``(B, Y, X)`` maps, ``(B, K, 4)`` boxes."""

    heatmap: torch.Tensor
    valid: torch.Tensor | None  # None: every pixel is valid
    region: torch.Tensor | None
    boxes: torch.Tensor | None
    box_count: torch.Tensor | None
    pred_mask: torch.Tensor | None
    pred_box: torch.Tensor | None


def _check_mask(name: str, metric: str, mask: torch.Tensor | None, shape: torch.Size) -> None:
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise DataFormatError(f"{metric}: {name} must be a bool tensor, got {got}")
    if mask.shape != shape:
        raise DataFormatError(
            f"{metric}: {name} must have the heatmap's shape {tuple(shape)}, got {tuple(mask.shape)}"
        )


def check_inputs(
    metric: str,
    heatmap: torch.Tensor,
    *,
    needs: tuple[str, ...],
    region: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    box_count: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    pred_box: torch.Tensor | None = None,
) -> Inputs:
    """Validate a metric's inputs and return them (heatmap still in its own dtype).

    Raises:
        DataFormatError: a needed input is missing, or a shape or dtype is wrong (the message
            gives the expected and actual shape or dtype).
    """
    if not isinstance(heatmap, torch.Tensor) or heatmap.ndim != 3:
        got = tuple(heatmap.shape) if isinstance(heatmap, torch.Tensor) else type(heatmap).__name__
        raise DataFormatError(f"{metric}: heatmap must be a (B, Y, X) tensor, got {got}")
    if heatmap.dtype not in (torch.float32, torch.float64, *_HALF):
        raise DataFormatError(
            f"{metric}: heatmap must be float32, float16 or bfloat16, got {heatmap.dtype}"
        )
    given = {"region": region, "boxes": boxes, "pred_mask": pred_mask, "pred_box": pred_box}
    for name in needs:
        if name in given and given[name] is None:
            raise DataFormatError(f"{metric}: needs {name!r}, but it was not given")
    if "boxes" in needs and box_count is None:
        raise DataFormatError(
            f"{metric}: needs 'box_count' (B,) with 'boxes', but it was not given"
        )
    shape = heatmap.shape
    B = shape[0]
    _check_mask("region", metric, region, shape)
    _check_mask("valid", metric, valid, shape)
    _check_mask("pred_mask", metric, pred_mask, shape)
    if boxes is not None:
        if boxes.ndim != 3 or boxes.shape[0] != B or boxes.shape[2] != 4:
            raise DataFormatError(
                f"{metric}: boxes must be (B={B}, K, 4) xyxy, got {tuple(boxes.shape)}"
            )
        if box_count is None or box_count.shape != (B,):
            got = None if box_count is None else tuple(box_count.shape)
            raise DataFormatError(f"{metric}: box_count must be ({B},) with boxes, got {got}")
    if pred_box is not None and pred_box.shape != (B, 4):
        raise DataFormatError(
            f"{metric}: pred_box must be ({B}, 4) xyxy (NaN row = none), got {tuple(pred_box.shape)}"
        )
    return Inputs(heatmap, valid, region, boxes, box_count, pred_mask, pred_box)


def iter_chunks(inputs: Inputs) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor | None]]:
    """Yield ``(rows, heatmap_float32, valid)`` chunks of at most :data:`CHUNK_PIXELS` pixels
    (unpadded float32/float64 CPU maps: one chunk).

    float16 and bfloat16 maps are upcast to float32 one chunk at a time (their ties stay ties);
    float64 maps are kept. A chunk whose pixels are all valid gets ``valid = None``.
    """
    B, Y, X = inputs.heatmap.shape
    step = max(1, CHUNK_PIXELS // max(1, Y * X))
    if inputs.valid is None and use_numpy(inputs.heatmap) and inputs.heatmap.dtype not in _HALF:
        step = max(B, 1)
    for start in range(0, B, step):
        rows = slice(start, min(B, start + step))
        h = inputs.heatmap[rows]
        if h.dtype in _HALF:
            h = h.float()
        v = None if inputs.valid is None else inputs.valid[rows]
        if v is not None and bool(v.numpy().all() if use_numpy(v) else v.all()):
            v = None  # the fast unmasked kernels give the same numbers
        yield rows, h, v


def use_numpy(t: torch.Tensor) -> bool:
    """Whether bulk work on ``t`` runs as numpy kernels (CPU) rather than torch ones (CUDA).

    numpy's SIMD reductions beat torch's on a few CPU cores, and torch's bulk CPU ops stall
    when other processes hold the cores; on a GPU the torch kernels stay on the device.
    """
    return t.device.type == "cpu"


def true_coords(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(b, y, x)`` int64 indices of the True pixels of a ``(B, Y, X)`` mask, on its device."""
    if use_numpy(mask):
        flat = np.flatnonzero(mask.numpy())
        return tuple(torch.from_numpy(i) for i in np.unravel_index(flat, mask.shape))
    return mask.nonzero(as_tuple=True)


def _flat(t: torch.Tensor) -> np.ndarray:
    """Zero-copy ``(B, Y*X)`` numpy view of a CPU tensor."""
    return t.detach().numpy().reshape(t.shape[0], -1)


def masked_minmax(
    h: torch.Tensor, valid: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return per-map ``(min, max, nonfinite)`` over valid pixels.

    NaN propagates through min and max and ±Inf reaches one of them, so the same passes flag
    every non-finite valid pixel. A map with no valid pixel gets ``(+inf, -inf, False)``.
    """
    if use_numpy(h):
        hn = _flat(h)
        if valid is None:
            lo, hi = hn.min(axis=1, initial=np.inf), hn.max(axis=1, initial=-np.inf)
        else:
            vn = _flat(valid)
            lo = hn.min(axis=1, where=vn, initial=np.inf)
            hi = hn.max(axis=1, where=vn, initial=-np.inf)
        lo, hi = torch.from_numpy(lo), torch.from_numpy(hi)
    elif valid is None:
        lo, hi = h.flatten(1).amin(dim=1).cpu(), h.flatten(1).amax(dim=1).cpu()
    else:
        lo = torch.where(valid, h, torch.inf).flatten(1).amin(dim=1).cpu()
        hi = torch.where(valid, h, -torch.inf).flatten(1).amax(dim=1).cpu()
    any_valid = n_valid(h, valid) > 0
    nonfinite = any_valid & ~(torch.isfinite(lo) & torch.isfinite(hi))
    return lo, hi, nonfinite


def count(mask: torch.Tensor, *more: torch.Tensor | None) -> torch.Tensor:
    """Per-map number of pixels True in ``mask`` and in every non-None mask of ``more``.

    Returns:
        CPU int64 ``(B,)``.
    """
    others = [m for m in more if m is not None]
    if use_numpy(mask):
        m = _flat(mask)
        for other in others:
            m = m & _flat(other)
        return torch.from_numpy(np.count_nonzero(m, axis=1).astype(np.int64))
    for other in others:
        mask = mask & other
    return mask.flatten(1).sum(dim=1).cpu()


def restrict(mask: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """``mask & valid`` (``mask`` itself when ``valid`` is None), with numpy on CPU."""
    if valid is None:
        return mask
    if use_numpy(mask):
        return torch.from_numpy(mask.numpy() & valid.numpy())
    return mask & valid


def masked_sum(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-map CPU float64 sum of ``h`` over the pixels where ``mask`` is True (None = all)."""
    if use_numpy(h):
        where = True if mask is None else _flat(mask)
        return torch.from_numpy(np.sum(_flat(h), axis=1, where=where, dtype=np.float64))
    x = h if mask is None else torch.where(mask, h, 0.0)
    return x.flatten(1).sum(dim=1, dtype=torch.float64).cpu()


def masked_sq_dev(
    h: torch.Tensor, valid: torch.Tensor | None, centre: torch.Tensor
) -> torch.Tensor:
    """Per-map CPU float64 ``Σ (h - centre)²`` over the valid pixels, computed in float64.

    Args:
        h: ``(B, Y, X)`` maps.
        valid: ``(B, Y, X)`` bool or None.
        centre: CPU float64 ``(B,)``, e.g. the map means (a two-pass variance).
    """
    if use_numpy(h):
        hn = _flat(h)
        vn = None if valid is None else _flat(valid)
        out = np.empty(hn.shape[0])
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite maps are flagged apart
            for i, c in enumerate(centre.tolist()):
                d = (hn[i] if vn is None else hn[i][vn[i]]).astype(np.float64)
                d -= c
                np.square(d, out=d)
                out[i] = d.sum()  # pairwise sum; np.dot would call a threaded BLAS
        return torch.from_numpy(out)
    d = h.double() - centre.to(h.device)[:, None, None]
    if valid is not None:
        d = torch.where(valid, d, 0.0)
    return (d.flatten(1) ** 2).sum(dim=1).cpu()


def equal_to(h: torch.Tensor, value: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """``(B, Y, X)`` bool on ``h``'s device: valid pixels equal to the per-map ``value`` (CPU ``(B,)``)."""
    if use_numpy(h):
        eq = _flat(h) == value.numpy()[:, None]
        if valid is not None:
            eq &= _flat(valid)
        return torch.from_numpy(eq).view(h.shape)
    eq = h == value.to(h.device)[:, None, None]
    return eq if valid is None else eq & valid


def n_valid(h: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Per-map number of valid pixels, int64 ``(B,)`` on CPU."""
    if valid is None:
        return torch.full((h.shape[0],), h.shape[1] * h.shape[2], dtype=torch.long)
    return count(valid, None).cpu()


def reasons(*conditions: tuple[torch.Tensor, Undefined]) -> torch.Tensor:
    """Combine ``(condition (B,) bool, code)`` pairs into ``(B,)`` int8 codes; the first wins."""
    out = torch.zeros(conditions[0][0].shape, dtype=torch.int8)
    for cond, code in reversed(conditions):
        out = torch.where(cond.cpu(), torch.tensor(int(code), dtype=torch.int8), out)
    return out


def finish(values: torch.Tensor, undefined: torch.Tensor) -> torch.Tensor:
    """Return ``values`` as CPU float64 with NaN wherever a reason code is set."""
    values = values.detach().to("cpu", torch.float64)
    return torch.where(undefined == 0, values, torch.nan)


def chunked_output(
    values: Sequence[torch.Tensor],
    codes: Sequence[torch.Tensor],
    extras: Mapping[str, torch.Tensor] | None = None,
) -> MetricOutput:
    """Join the per-chunk ``values`` (float64) and ``codes`` (int8); an empty batch gives ``(0,)``."""
    return MetricOutput(
        values=torch.cat(list(values)) if values else torch.zeros(0, dtype=torch.float64),
        undefined=torch.cat(list(codes)) if codes else torch.zeros(0, dtype=torch.int8),
        extras=dict(extras or {}),
    )
