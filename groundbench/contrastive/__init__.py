"""A box-free contrastive baseline: a small CLIP (``transformers.CLIPModel``) trained on captions.

:func:`train_clip` trains it from :class:`~groundbench.types.CaptionRecord` (no box field)
and writes a ``save_pretrained`` directory (weights, config, a word-level tokenizer and the
image processor) that ``hf:DIR:RECIPE`` evaluates like any user's checkpoint. Needs the
``vlm`` extra (``transformers``, ``tokenizers``), imported only when used.
"""

from __future__ import annotations

from groundbench.contrastive.config import ClipTrainConfig
from groundbench.contrastive.train import ClipTrainResult, train_clip

__all__ = ["ClipTrainConfig", "ClipTrainResult", "train_clip"]
