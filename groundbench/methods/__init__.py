"""Methods: anything that turns grounding samples into raw maps.

``resolve_method("centre_prior")``, ``resolve_method("heatmaps:maps.npz")``,
``resolve_method("plugin:pkg.mod:fn")``, ``resolve_method("checkpoint:run/model.safetensors")``.
"""

from __future__ import annotations

from groundbench.methods import baselines, checkpoint, heatmap_file, hf, plugin  # noqa: F401  (register)
from groundbench.methods.base import METHODS, Method


def resolve_method(spec: str) -> Method:
    """Build the method a ``NAME[:ARG]`` spec names.

    Raises:
        UnknownNameError: no method is registered as ``NAME`` (lists the valid ones).
        MethodError: the argument is missing or wrong for that method.

    Example:
        >>> resolve_method("centre_prior:0.3").name
        'centre_prior:0.3'
    """
    name, sep, arg = spec.partition(":")
    return METHODS.get(name, asked_by=f"--method {spec}")(arg if sep else None)


__all__ = ["METHODS", "Method", "resolve_method"]
