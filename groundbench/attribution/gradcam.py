"""Grad-CAM (Selvaraju et al. 2017) over a ``(B, C, h, w)`` activation and its gradient.

``cam = relu(Σ_c α_c A_c)`` with ``α_c`` the spatial mean of the gradient: the textbook
formula, as ``pytorch-grad-cam``'s ``GradCAM`` before its per-image min-max and resize.
ViT tokens become such a grid with :func:`tokens_to_grid` (prefix tokens dropped).
"""

from __future__ import annotations

import torch

from groundbench.errors import MethodError


def gradcam(
    activations: torch.Tensor, gradients: torch.Tensor, *, relu: bool = True
) -> torch.Tensor:
    """Return ``(B, h, w)`` Grad-CAM maps.

    Args:
        activations: ``(B, C, h, w)`` the layer's output.
        gradients: ``(B, C, h, w)`` the target score's gradient w.r.t. it.
        relu: clamp the weighted sum at 0 (Grad-CAM's ReLU).

    Example:
        >>> a = torch.arange(4.0).reshape(1, 1, 2, 2)
        >>> gradcam(a, torch.ones_like(a)).tolist()
        [[[0.0, 1.0], [2.0, 3.0]]]
    """
    if activations.shape != gradients.shape or activations.ndim != 4:
        raise MethodError(
            f"gradcam: activations and gradients must both be (B, C, h, w), got "
            f"{tuple(activations.shape)} and {tuple(gradients.shape)}"
        )
    weights = gradients.mean(dim=(2, 3), keepdim=True)  # B C 1 1
    cam = (weights * activations).sum(1)  # B h w
    return cam.clamp(min=0) if relu else cam


def tokens_to_grid(tokens: torch.Tensor, grid: tuple[int, int], *, prefix: int = 1) -> torch.Tensor:
    """Turn ``(B, prefix + h·w, C)`` ViT tokens (row-major patches) into ``(B, C, h, w)``.

    Example:
        >>> tokens_to_grid(torch.arange(7.0).reshape(1, 7, 1), (2, 3)).tolist()
        [[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]]
    """
    h, w = grid
    B, N, C = tokens.shape
    if N != prefix + h * w:
        raise MethodError(
            f"tokens_to_grid: {N} tokens do not make {prefix} prefix tokens and a {h}×{w} grid"
        )
    return tokens[:, prefix:].reshape(B, h, w, C).permute(0, 3, 1, 2)  # B C h w
