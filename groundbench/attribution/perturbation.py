"""Black-box recipes over a batched image–text score: RISE and occlusion.

``score(images) -> scores`` takes ``(N, 3, H, W)`` model-ready images (normalised, so 0 is
the mean colour) and returns ``(N,)`` scores of one fixed text, or ``(N, T)`` scores of ``T``
texts of the same image (a dual encoder scores every phrase of an image from one pass over
each perturbed image: the maps are those of ``T`` one-text calls, for ``1/T`` of the image
passes); any model (or a plugin that exposes a score) can be explained this way.

RISE follows TorchRay's ``rise()`` (the defaults ``num_masks=8000, num_cells=7, p=0.5,
seed=0``, masks made 32 at a time, sigmoid of the score, sum of ``sigmoid(score) · mask``
divided by ``num_masks``). The original RISE code (Petsiuk et al. 2018) used 6000 masks of
8×8 cells with ``p=0.1`` and divided by ``N·p``, a constant factor.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from groundbench.errors import MethodError

Score = Callable[[torch.Tensor], torch.Tensor]
RISE_OUTPUTS = ("sigmoid", "identity")
_MASK_CHUNK = 32  # TorchRay draws its masks 32 at a time; the draw order depends on it
_SCORE_BATCH = 32


def _upsample_reflect(grid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    # reflection-pad by one cell, bilinear-upsample, cut the middle (TorchRay's helper)
    cells = grid.shape[2:]
    cell = [math.ceil(s / c) for s, c in zip(size, cells, strict=True)]
    padded = [cell[i] * (cells[i] + 2) for i in range(2)]
    up = F.interpolate(
        F.pad(grid, (1, 1, 1, 1), mode="reflect"), padded, mode="bilinear", align_corners=False
    )
    return up[:, :, cell[0] : cell[0] + size[0], cell[1] : cell[1] + size[1]]


def rise_masks(
    num_masks: int, num_cells: int, p: float, size: tuple[int, int], generator: torch.Generator
):
    """Yield TorchRay's RISE masks, ``(n, 1, H, W)`` float32 chunks of at most 32.

    Each cell of a ``num_cells²`` grid is kept (1) with probability ``p``; the grid is
    upsampled bilinearly to ``(H + cH, W + cW)`` (``cH = ceil(H / num_cells)``) with
    reflection at the border and cut at a random shift below one cell. ``generator``
    seeded with ``s`` gives the masks of TorchRay's ``torch.manual_seed(s)``.
    """
    H, W = size
    cell = (math.ceil(H / num_cells), math.ceil(W / num_cells))
    up_size = (H + cell[0], W + cell[1])
    for start in range(0, num_masks, _MASK_CHUNK):
        n = min(num_masks - start, _MASK_CHUNK)
        grid = (torch.rand(n, 1, num_cells, num_cells, generator=generator) < p).float()
        up = _upsample_reflect(grid, up_size)
        sy = torch.randint(0, cell[0], (n,), generator=generator)
        sx = torch.randint(0, cell[1], (n,), generator=generator)
        yield torch.stack([up[i, :, sy[i] : sy[i] + H, sx[i] : sx[i] + W] for i in range(n)])


def rise(
    score: Score,
    image: torch.Tensor,
    *,
    num_masks: int = 8000,
    num_cells: int = 7,
    p: float = 0.5,
    seed: int = 0,
    output: str = "sigmoid",
) -> torch.Tensor:
    """Return the RISE saliency ``Σ_i f(score(image · m_i)) · m_i / num_masks``.

    Args:
        score: batched score of one text (module docstring).
        image: ``(3, H, W)`` model-ready image.
        num_masks, num_cells, p, seed: TorchRay's parameters (its defaults).
        output: ``f``: ``sigmoid`` (TorchRay) or ``identity`` (the raw score).

    Returns:
        ``(H, W)`` float64 saliency at the input resolution; ``(T, H, W)`` when ``score``
        returns ``(N, T)``.
    """
    if output not in RISE_OUTPUTS:
        raise MethodError(f"rise: output must be one of {RISE_OUTPUTS}, got {output!r}")
    if num_masks < 1 or num_cells < 1 or not 0.0 < p <= 1.0:
        raise MethodError(
            f"rise: need num_masks >= 1, num_cells >= 1 and 0 < p <= 1, got {num_masks}, "
            f"{num_cells}, {p}"
        )
    H, W = image.shape[1:]
    gen = torch.Generator().manual_seed(seed)
    sal, single = None, True
    for masks in rise_masks(num_masks, num_cells, p, (H, W), gen):
        masks = masks.to(image.device)
        s = score(image[None] * masks).to(torch.float64)
        if output == "sigmoid":
            s = torch.sigmoid(s)
        single = s.ndim == 1
        s = s.reshape(len(masks), -1)
        part = s.T @ masks.reshape(len(masks), H * W).to(torch.float64)
        sal = part if sal is None else sal + part
    sal = (sal / num_masks).reshape(-1, H, W)
    return sal[0] if single else sal


def occlusion(
    score: Score, image: torch.Tensor, *, window: int, baseline: float = 0.0
) -> torch.Tensor:
    """Return the score drop when each ``window × window`` tile is set to ``baseline``.

    The tiles are the non-overlapping windows (stride = window, as captum's ``Occlusion``
    with ``strides = sliding_window_shapes``), so with the patch size as window there is one
    value per patch: ``score(image) − score(image with that tile occluded)``.

    Args:
        score: batched score of one text.
        image: ``(3, H, W)`` model-ready image; H and W multiples of ``window``.
        window: tile side in input pixels.
        baseline: value of an occluded pixel (0 = the mean colour after normalisation).

    Returns:
        ``(H / window, W / window)`` float64; ``(T, H / window, W / window)`` when ``score``
        returns ``(N, T)``.
    """
    H, W = image.shape[1:]
    if window < 1 or H % window or W % window:
        raise MethodError(f"occlusion: window {window} px does not tile a {H}×{W} image")
    h, w = H // window, W // window
    base = score(image[None]).to(torch.float64)[0]  # () or (T,)
    drops = []
    for start in range(0, h * w, _SCORE_BATCH):
        idx = range(start, min(start + _SCORE_BATCH, h * w))
        batch = image[None].repeat(len(idx), 1, 1, 1)
        for k, t in enumerate(idx):
            r, c = divmod(t, w)
            batch[k, :, r * window : (r + 1) * window, c * window : (c + 1) * window] = baseline
        drops.append(base - score(batch).to(torch.float64))
    drops = torch.cat(drops)  # (h·w,) or (h·w, T)
    return drops.reshape(h, w) if drops.ndim == 1 else drops.T.reshape(-1, h, w)
