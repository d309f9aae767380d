"""The adapter contract: a dataset root on disk → GroundingSamples (eval) and captions (train)."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

from groundbench.registry import Registry
from groundbench.types import CaptionRecord, GroundingSample

ADAPTERS: Registry[type[DatasetAdapter]] = Registry("adapters")


class DatasetAdapter(abc.ABC):
    """Reads one dataset family from its original on-disk layout.

    Subclasses register with ``@ADAPTERS.register("name")`` and take the dataset root plus
    keyword options (documented per adapter in ``docs/adapters.md``). Constructing an adapter
    is cheap; files are read by :meth:`load_samples` / :meth:`load_captions`.

    Raises (from every method):
        DataFormatError: a file is missing or malformed; the message names the file, the
            record and the fix.

    Attributes:
        load_warnings: what the last :meth:`load_samples` / :meth:`load_captions` had to
            leave out of well-formed files (records it cannot place), one line each, naming
            the file, the count and the fix. Adapters also log them as warnings, and
            ``groundbench data check`` prints them: nothing is dropped silently.
    """

    name: ClassVar[str]

    def __init__(self, root: Path, **options: Any) -> None:
        self.root = Path(root)
        self.options = options
        self.load_warnings: list[str] = []

    @abc.abstractmethod
    def splits(self) -> tuple[str, ...]:
        """Return the split names this dataset root provides."""

    @abc.abstractmethod
    def load_samples(self, split: str) -> list[GroundingSample]:
        """Return the split's phrases with their boxes, in a stable order, ids unique."""

    @abc.abstractmethod
    def load_captions(self, split: str) -> list[CaptionRecord]:
        """Return the split's image–caption pairs for training; no boxes are read into them."""
