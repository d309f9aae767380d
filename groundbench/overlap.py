"""Image overlap between training data and the splits shipped protocols evaluate.

A model trained on the images a protocol evaluates has seen the answers' pictures; its
score on that protocol is not a held-out number. :func:`protocol_overlaps` names each
shipped protocol whose split shares images with a training set (``groundbench train``
warns with it and stores it in the checkpoint; model cards report it). Images are
compared by their normalised absolute path, so two adapters reading one image folder
match.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundbench.errors import GroundbenchError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProtocolOverlap:
    """Training images that a shipped protocol's split also holds.

    Attributes:
        protocol: the shipped protocol's name, e.g. ``flickr30k_test.mg``.
        split: the split it evaluates.
        shared_images: images in both sets.
        training_images: distinct training images.
        evaluated_images: distinct images of the protocol's split (before its selection:
            the images of the split's records).
    """

    protocol: str
    split: str
    shared_images: int
    training_images: int
    evaluated_images: int

    def describe(self) -> str:
        """One line, e.g. ``flickr30k_test.mg (split test): 2 of its 2 images``."""
        return (
            f"{self.protocol} (split {self.split}): {self.shared_images} of its "
            f"{self.evaluated_images} images"
        )


def image_key(path: str | Path) -> str:
    """The name an image is compared by: its absolute, normalised path."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def protocol_overlaps(
    adapter: str,
    root: str | Path,
    training_images: Iterable[str | Path],
) -> list[ProtocolOverlap]:
    """Return the shipped protocols reading ``adapter`` whose split shares images with
    ``training_images``, read from ``root`` with each protocol's own adapter options.

    A protocol whose split cannot be loaded from ``root`` (another subset, a partial copy)
    is skipped and logged at INFO level.

    Args:
        adapter: the training data's adapter name (``flickr30k_entities``).
        root: its dataset root.
        training_images: the training records' image paths.
    """
    from dataset_adapters import open_dataset
    from groundbench.protocol import list_protocols, load_protocol

    train = {image_key(p) for p in training_images}
    loaded: dict[tuple, set[str] | None] = {}
    out = []
    for name in list_protocols():
        ds = load_protocol(name).dataset
        if ds.adapter != adapter:
            continue
        key = (_frozen(ds.options), ds.split)
        if key not in loaded:
            try:
                # captions name the split's images without building samples (tags, masks)
                records = open_dataset(adapter, root, **dict(ds.options)).load_captions(ds.split)
                loaded[key] = {image_key(r.image_path) for r in records}
            except GroundbenchError as exc:
                log.info("overlap with %s not computed: %s", name, exc)
                loaded[key] = None
        evaluated = loaded[key]
        if evaluated and train & evaluated:
            out.append(
                ProtocolOverlap(name, ds.split, len(train & evaluated), len(train), len(evaluated))
            )
    return out


def _frozen(options: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in options.items()))
