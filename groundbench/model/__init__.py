"""The reference model: grounding learned by masked reconstruction, read out of cross-attention.

Shape alphabet used in comments across this package (nanoGPT style, at the end of lines):

* ``B`` batch, ``L`` decoder layers, ``H`` heads, ``D`` model width,
* ``T`` text tokens, ``N`` visual tokens (``N = h * w``), ``h × w`` the visual token grid,
* ``V`` vocabulary size, ``P`` read-out passes, ``C`` pixels per patch (``3 * patch²``).

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
