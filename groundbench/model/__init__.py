"""The reference model: grounding learned by masked reconstruction, read out of cross-attention.

Shape alphabet used in comments across this package (nanoGPT style, at the end of lines):

* ``B`` images in a batch, ``Q`` (phrase, hidden word) pairs per image, ``P`` words per
  query (``max_phrase_words``) or read-out passes (in ``infer``),
* ``H`` heads, ``d`` / ``e`` the per-head key and value widths, ``C`` encoder channels,
* ``N`` visual tokens (``N = h * w``), ``h × w`` the token grid, ``L`` attention layers of
  a read-out (1: the one grounding attention),
* ``V`` vocabulary size, ``R`` relation words.

Image size is always spelled ``height`` / ``width``.

Example:
    >>> from groundbench.model import create_model, list_models
    >>> "tiny" in list_models()
    True
"""

from __future__ import annotations

from groundbench.model.config import (
    Config,
    ConfigError,
    ModelConfig,
    TrainConfig,
    create_model,
    list_models,
    load_config,
)

__all__ = [
    "Config",
    "ConfigError",
    "ModelConfig",
    "TrainConfig",
    "create_model",
    "list_models",
    "load_config",
]
