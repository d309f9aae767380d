"""Model-agnostic attribution recipes: pure functions over captured tensors.

Nothing here imports a model family. A family adapter (``groundbench.methods.hf`` and
others) loads a model, preprocesses, hooks the layers a recipe needs and hands the captured
attention, activations and gradients, or a batched score callable, to these functions.

* :func:`itm_gradcam` — Grad-CAM on an ITM head's cross-attention (ALBEF / AMC / SelfEQ,
  LAVIS ``compute_gradcam``).
* :func:`relevance`, :func:`pooled_relevance` — Chefer et al.'s gradient-weighted relevance
  propagation (``R = I + Σ Ā·R``).
* :func:`gradcam`, :func:`tokens_to_grid` — textbook Grad-CAM over ``(B, C, h, w)``
  activations, and the reshape that turns ViT tokens into such a grid.
* :func:`patchsim` — cosine of each patch embedding with the text embedding.
* :func:`rise`, :func:`rise_masks`, :func:`occlusion` — black-box recipes over a batched score
  callable ``score(images (N, 3, H, W)) -> (N,)``.
"""

from __future__ import annotations

from groundbench.attribution.gradcam import gradcam, tokens_to_grid
from groundbench.attribution.itm_gradcam import ITM_TOKEN_RULES, itm_gradcam
from groundbench.attribution.patchsim import patchsim
from groundbench.attribution.perturbation import occlusion, rise, rise_masks
from groundbench.attribution.relevance import pooled_relevance, relevance

__all__ = [
    "ITM_TOKEN_RULES",
    "gradcam",
    "itm_gradcam",
    "occlusion",
    "patchsim",
    "pooled_relevance",
    "relevance",
    "rise",
    "rise_masks",
    "tokens_to_grid",
]
