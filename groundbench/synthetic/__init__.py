"""The seeded synthetic grounding benchmark, written in the native dataset format.

:func:`generate` writes a dataset; :func:`ensure_default_dataset` makes the default one
once and returns its root. See ``docs/formats.md`` for the files and the split recipes.
"""

from __future__ import annotations

from groundbench.synthetic.settings import PROBE_SPLITS, SPLITS, Settings, SynthesisError
from groundbench.synthetic.writer import (
    default_root,
    ensure_default_dataset,
    generate,
    make_scene,
)

__all__ = [
    "PROBE_SPLITS",
    "SPLITS",
    "Settings",
    "SynthesisError",
    "default_root",
    "ensure_default_dataset",
    "generate",
    "make_scene",
]
