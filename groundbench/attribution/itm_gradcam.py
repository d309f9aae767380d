"""Grad-CAM on the cross-attention of an image–text matching (ITM) head.

ALBEF (``Grounding.py``, ``--gradcam_mode itm``), AMC and SelfEQ: the cross-attention
probabilities of one fusion layer (post-softmax, pre-dropout) times the gradient of the ITM
head's positive logit (pre-softmax) clamped at 0, mean over heads, mean over the text
positions, image [CLS] key dropped. LAVIS ``compute_gradcam`` (BLIP) returns the same
product reduced over the word tokens only, or the first ([ENC]) row.
"""

from __future__ import annotations

import torch

from groundbench.errors import MethodError

# how the text rows of the per-token maps are reduced to one map
ITM_TOKEN_RULES = ("all", "words", "first")


def itm_gradcam(
    attention: torch.Tensor,
    gradient: torch.Tensor,
    text_mask: torch.Tensor,
    *,
    tokens: str = "all",
    image_prefix: int = 1,
) -> torch.Tensor:
    """Return one ITM Grad-CAM map per sample over the image tokens.

    Args:
        attention: ``(B, H, T, N)`` cross-attention probabilities, text queries × image keys.
        gradient: ``(B, H, T, N)`` gradient of the ITM positive logit w.r.t. ``attention``.
        text_mask: ``(B, T)`` 1 on real text tokens ([CLS]/[ENC], words, [SEP]), 0 on padding.
        tokens: ``all`` — ALBEF: the sum over every real text position ([CLS] and [SEP]
            included) divided by that count (ALBEF's mean over the padded length equals this
            at batch size 1; with padding it scales each map by a constant); ``words`` — LAVIS:
            rows ``1 .. n-2`` (first token and [SEP] excluded) divided by ``n - 2``;
            ``first`` — the first row alone (LAVIS's [ENC]-token map).
        image_prefix: leading image tokens to drop (1 for a [CLS] token, 0 without).

    Returns:
        ``(B, N - image_prefix)`` maps, in the dtype of ``attention``; both factors are
        non-negative and nothing is normalised.

    Example:
        >>> a = torch.ones(1, 1, 3, 3) / 3
        >>> itm_gradcam(a, torch.ones_like(a), torch.ones(1, 3)).tolist()
        [[0.3333333432674408, 0.3333333432674408]]
    """
    if attention.shape != gradient.shape or attention.ndim != 4:
        raise MethodError(
            f"itm_gradcam: attention and gradient must both be (B, H, T, N), got "
            f"{tuple(attention.shape)} and {tuple(gradient.shape)}"
        )
    if tokens not in ITM_TOKEN_RULES:
        raise MethodError(f"itm_gradcam: tokens must be one of {ITM_TOKEN_RULES}, got {tokens!r}")
    cam = attention[..., image_prefix:] * gradient[..., image_prefix:].clamp(min=0)
    mask = text_mask.to(cam.dtype)  # B T
    cam = cam.mean(1) * mask[..., None]  # B T N
    if tokens == "first":
        return cam[:, 0]
    n = mask.sum(1)  # B
    if tokens == "all":
        return cam.sum(1) / n[:, None]
    # words: drop the first row and the last real row ([SEP]) of each sample
    last = torch.nn.functional.one_hot((n - 1).long(), cam.shape[1]).to(cam.dtype)  # B T
    words = mask.clone()
    words[:, 0] = 0
    words = words - last
    if bool((n <= 2).any()):
        raise MethodError(
            "itm_gradcam: tokens=words needs at least one word between [ENC] and [SEP]"
        )
    return (cam * words[..., None]).sum(1) / (n - 2)[:, None]
