"""The ``hf:`` family: Hugging Face ``transformers`` checkpoints through attribution recipes.

``--method hf:DIR:RECIPE?knob=value&...`` loads ``CLIPModel``, ``SiglipModel`` or
``BlipForImageTextRetrieval`` from a local ``save_pretrained`` directory (eager attention,
no remote code) and reads maps out with a recipe of :mod:`groundbench.attribution`.
transformers is imported only when such a method is built (``pip install "groundbench[vlm]"``).
"""

from __future__ import annotations

from groundbench.methods.base import METHODS


@METHODS.register(
    "hf", supervision="box-free unless declared", arg="DIR:RECIPE?knob=value (docs/methods.md)"
)
def hf_method(arg: str | None):
    """Build the method from ``hf:DIR:RECIPE?knob=value&...``."""
    from groundbench.methods.hf.method import HFMethod

    return HFMethod(arg or "")
