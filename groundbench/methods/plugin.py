"""``plugin:module:callable``: any Python callable that grounds a batch.

The callable is called as ``fn(samples, images)`` and returns :class:`RawMaps` aligned with
``samples``. It declares its supervision class as an attribute (``fn.supervision =
"box-free"``) and may set ``fn.needs_images = False`` to skip image decoding.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Sequence
from importlib import metadata

import torch

from groundbench.errors import MethodError
from groundbench.methods.base import METHODS
from groundbench.types import SUPERVISION_CLASSES, GroundingSample, RawMaps


class Plugin:
    """Wrap ``module:callable`` as a method."""

    def __init__(self, target: str) -> None:
        module_name, _, attr = target.partition(":")
        if not module_name or not attr:
            raise MethodError(f"plugin:{target}: expected plugin:package.module:callable")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise MethodError(
                f"plugin:{target}: cannot import {module_name!r} ({exc}); is it on PYTHONPATH?"
            ) from exc
        fn = getattr(module, attr, None)
        if not callable(fn):
            raise MethodError(f"plugin:{target}: {module_name} has no callable {attr!r}")
        supervision = getattr(fn, "supervision", None)
        if supervision not in SUPERVISION_CLASSES:
            raise MethodError(
                f"plugin:{target}: declare the supervision class, e.g. {attr}.supervision = 'box-free' "
                f"(one of {', '.join(SUPERVISION_CLASSES)}); got {supervision!r}"
            )
        self.target, self.module, self.fn = target, module, fn
        self.name = attr
        self.supervision = supervision
        self.needs_images = bool(getattr(fn, "needs_images", True))

    def fingerprint(self) -> str:
        """Hash of the import path, the package version and the module's source."""
        top = self.module.__name__.split(".")[0]
        try:
            version = metadata.version(top)
        except metadata.PackageNotFoundError:
            version = getattr(self.module, "__version__", "")
        try:
            source = inspect.getsource(self.module)
        except (OSError, TypeError):
            source = ""
        return hashlib.sha256(f"{self.target}\0{version}\0{source}".encode()).hexdigest()

    def predict(
        self, samples: Sequence[GroundingSample], images, *, device: torch.device
    ) -> RawMaps:
        try:
            out = self.fn(samples, images)
        except Exception as exc:  # any bug of the plugin: name it and the batch
            first = samples[0].id if samples else None
            raise MethodError(
                f"plugin:{self.target} raised {type(exc).__name__}: {exc} on a batch of "
                f"{len(samples)} samples (first: {first!r}); fix the plugin or run it on that "
                "sample to debug"
            ) from exc
        if not isinstance(out, RawMaps):
            raise MethodError(
                f"plugin:{self.target} returned {type(out).__name__}; it must return RawMaps"
            )
        if out.ids != tuple(s.id for s in samples):
            raise MethodError(
                f"plugin:{self.target} returned maps for other ids than the batch's, or reordered"
            )
        return out


@METHODS.register("plugin", supervision="declared by the callable", arg="package.module:callable")
def plugin(arg: str | None) -> Plugin:
    """``plugin:module:callable``."""
    if not arg:
        raise MethodError("method plugin needs a target: plugin:package.module:callable")
    return Plugin(arg)
