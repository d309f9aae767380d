"""The ``open_clip:`` method family: open_clip ViT models by name + a local weights file.

open_clip needs torchvision; it is imported only when such a method is built (the
``open_clip`` extra, not installed by the project's CI).
"""

from __future__ import annotations

from groundbench.methods.base import METHODS


@METHODS.register("open_clip", supervision="box-free", arg="MODEL_NAME:WEIGHTS:RECIPE?knob=value")
def open_clip_method(arg: str | None):
    """Build the method from ``open_clip:NAME:WEIGHTS:RECIPE?knob=value``.

    Raises:
        MethodError: a malformed spec, open_clip not importable, an unknown model or recipe.
        CheckpointError: the weights file is missing or does not fit the model.
    """
    from groundbench.methods.open_clip.method import OpenClipMethod

    return OpenClipMethod(arg or "")
