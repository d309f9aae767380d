"""The ``checkpoint:PATH`` method: the reference model's grounding-attention read-out.

Example spec: ``checkpoint:runs/small/model.safetensors``, or the run folder
``checkpoint:runs/small`` (its ``model.safetensors`` is read). The method is box-free (trained
on captions only), reads pixels, and its fingerprint is the sha256 of the checkpoint bytes
(which include the config and the vocabulary).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from groundbench.errors import MethodError
from groundbench.methods.base import METHODS
from groundbench.types import GroundingSample, RawMaps


class CheckpointMethod:
    """A trained :mod:`groundbench.model` checkpoint used as an evaluation method.

    Args:
        path: the ``model.safetensors`` file written by ``groundbench train``, or the run
            folder holding it.
        passes: ``full`` (one query with every referent word) or ``masked`` (the mean of
            passes that each hide one word); see :func:`groundbench.model.infer.read_out`.
    """

    supervision = "box-free"
    needs_images = True

    def __init__(self, path: str | Path, *, passes: str = "full") -> None:
        from groundbench.model.checkpoint import load_checkpoint

        self.path = Path(path)
        if (self.path / "model.safetensors").is_file():  # a run folder
            self.path = self.path / "model.safetensors"
        self.name = "checkpoint"
        self.passes = passes
        self._ckpt = load_checkpoint(self.path)
        # what the model saw, for the report's computed model card
        self.data_fingerprint = self._ckpt.data_fingerprint
        self.training_data = self._ckpt.training_sources
        self.training_images = self._ckpt.training_images
        self._devices: dict[str, torch.nn.Module] = {}

    def fingerprint(self) -> str:
        """Return the sha256 hex of the checkpoint file's bytes and the read-out settings."""
        h = hashlib.sha256()
        with self.path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(f"passes={self.passes}".encode())
        return h.hexdigest()

    def predict(
        self,
        samples: Sequence[GroundingSample],
        images: Sequence[np.ndarray] | None,
        *,
        device: torch.device,
    ) -> RawMaps:
        """Return ``(1, H, h, w)`` attention per sample (``(P, 1, H, h, w)`` with masked passes)."""
        from groundbench.model.infer import read_out

        if images is None:
            raise MethodError("checkpoint method needs images; the caller passed none")
        key = str(device)
        if key not in self._devices:
            self._devices[key] = self._ckpt.model.to(device)
        return read_out(
            self._devices[key],
            self._ckpt.vocab,
            samples,
            images,
            device=device,
            passes=self.passes,
        )


@METHODS.register(
    "checkpoint", supervision="box-free", arg="PATH to model.safetensors or its run folder"
)
def checkpoint_method(arg: str | None) -> CheckpointMethod:
    """Build the method from ``checkpoint:PATH``.

    Raises:
        MethodError: no path was given.
        CheckpointError: the file is missing, corrupt or mismatched.
    """
    if not arg:
        raise MethodError(
            "the checkpoint method needs a path: --method checkpoint:RUN_DIR/model.safetensors"
        )
    return CheckpointMethod(arg)
