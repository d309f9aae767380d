"""Gaussian smoothing of image-resolution maps, with the blur radius in pixels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from groundbench.postprocess import PIPELINE_STEPS

TRUNCATE_SIGMAS = 4.0  # kernel radius in sigmas; scipy.ndimage's default truncate


def gaussian_kernel(sigma_px: float, *, device: torch.device | None = None) -> torch.Tensor:
    """Return the normalised 1-D Gaussian taps, radius ``int(4·sigma + 0.5)`` (as scipy).

    Example:
        >>> gaussian_kernel(0.5).shape
        torch.Size([5])
    """
    radius = int(TRUNCATE_SIGMAS * sigma_px + 0.5)
    x = torch.arange(-radius, radius + 1, device=device, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma_px) ** 2)
    return (k / k.sum()).to(torch.float32)


def _reflect_index(n: int, radius: int, device: torch.device) -> torch.Tensor:
    # half-sample symmetric reflection (d c b a | a b c d | d c b a), any radius
    i = torch.arange(-radius, n + radius, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


@PIPELINE_STEPS.register(
    "smooth", config_key="smooth", input="(B, Y, X) float", output="(B, Y, X) float32"
)
def smooth_maps(maps: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Blur every map with a separable Gaussian of standard deviation ``sigma_px`` pixels.

    Matches ``scipy.ndimage.gaussian_filter(m, sigma_px, mode="reflect", truncate=4.0)``:
    the kernel is cut at ``int(4·sigma + 0.5)`` pixels and borders reflect about the edge
    (the edge pixel repeats). ``sigma_px == 0`` returns the maps unchanged.

    Args:
        maps: ``(B, Y, X)`` float maps (one image size; pad after smoothing, not before).
        sigma_px: standard deviation in pixels, ``>= 0``.

    Returns:
        ``(B, Y, X)`` float32 maps. A NaN spreads over its kernel footprint.

    Example:
        >>> m = torch.zeros(1, 5, 5); m[0, 2, 2] = 1.0
        >>> round(float(smooth_maps(m, 1.0).sum()), 6)
        1.0
    """
    if sigma_px < 0:
        raise ValueError(f"smooth_maps: sigma_px must be >= 0, got {sigma_px}")
    maps = maps.to(torch.float32)
    if sigma_px == 0 or maps.shape[0] == 0:
        return maps
    k = gaussian_kernel(sigma_px, device=maps.device)
    r = (k.numel() - 1) // 2
    B, Y, X = maps.shape
    # one depthwise conv per axis (maps as channels): ~2x faster than B single-channel convs
    x = maps[None, :, :, _reflect_index(X, r, maps.device)]  # 1 B Y X+2r
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(B, 1, 1, -1), groups=B)
    x = x[:, :, _reflect_index(Y, r, maps.device), :]  # 1 B Y+2r X
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(B, 1, -1, 1), groups=B)
    return x[0]
