"""Dataset adapters: turn the files users have on disk into GroundingSamples.

Each module registers one adapter class in :data:`ADAPTERS`; :func:`open_dataset` builds one
from a name, a root folder and adapter options.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from dataset_adapters.base import ADAPTERS, DatasetAdapter

# Modules that register adapters on import.
_ADAPTER_MODULES: tuple[str, ...] = (
    "refcoco",
    "flickr30k_entities",
    "visual_genome",
    "mdetr",
    "native",
    "coco_captions",
)

for _name in _ADAPTER_MODULES:
    importlib.import_module(f"dataset_adapters.{_name}")


def open_dataset(name: str, root: str | Path, **options: Any) -> DatasetAdapter:
    """Return the adapter registered as ``name``, reading the dataset under ``root``."""
    return ADAPTERS.get(name)(Path(root), **options)


__all__ = ["ADAPTERS", "DatasetAdapter", "open_dataset"]
