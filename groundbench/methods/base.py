"""The Method protocol and the ``methods`` registry.

A method spec on the command line is ``NAME`` or ``NAME:ARG`` (``centre_prior``,
``heatmaps:maps.npz``, ``plugin:pkg.module:callable``, ``checkpoint:run/model.safetensors``).
Each registry entry is a factory ``factory(arg: str | None) -> Method``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from groundbench.errors import MethodError
from groundbench.registry import Registry
from groundbench.types import GroundingSample, RawMaps


@runtime_checkable
class Method(Protocol):
    """Anything that turns samples into raw maps.

    Attributes:
        name: display name used in reports and on the leaderboard.
        supervision: one of ``box-free``, ``detector``, ``box-supervised``, ``training-free``.
        needs_images: whether :meth:`predict` reads pixels (if False, ``images`` is None).

    A method may also set ``fingerprint_complete = False`` when its fingerprint does not
    cover everything its maps depend on (a plugin that declares nothing): its records are
    then never resumed, and ``leaderboard add`` refuses its reports.
    """

    name: str
    supervision: str
    needs_images: bool

    def fingerprint(self) -> str:
        """Return a hash of everything the maps depend on (weights, files, code version)."""
        ...

    def predict(
        self,
        samples: Sequence[GroundingSample],
        images: Sequence[np.ndarray] | None,
        *,
        device: torch.device,
    ) -> RawMaps:
        """Return one raw map per sample, aligned with ``samples`` (ids in the same order).

        Args:
            samples: the batch.
            images: ``(height, width, 3)`` uint8 RGB per sample, or None if not ``needs_images``.
            device: where to compute.
        """
        ...


MethodFactory = Callable[[str | None], Method]
METHODS: Registry[MethodFactory] = Registry("methods")


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_float32_range(m: torch.Tensor, what: str) -> None:
    """Refuse a float64 map whose finite values overflow float32, where maps are evaluated.

    Args:
        m: a map of any shape.
        what: how the error names the map (``"method X: the map of sample 'a'"``).

    Raises:
        MethodError: a finite value beyond ±float32 max.
    """
    if m.dtype != torch.float64:
        return
    finite = m[torch.isfinite(m)]
    if finite.numel() and float(finite.abs().max()) > FLOAT32_MAX:
        raise MethodError(
            f"{what} holds finite values up to {float(finite.abs().max()):.3g}, beyond float32 "
            f"(±{FLOAT32_MAX:.3g}), where maps are evaluated; rescale the maps"
        )
