"""``plugin:module:callable``: any Python callable that grounds a batch (docs/plugins.md).

The callable is called as ``fn(samples, images)`` and returns :class:`RawMaps` aligned with
``samples``. It declares its supervision class as an attribute (``fn.supervision =
"box-free"``) and may set ``fn.needs_images = False`` to skip image decoding.

What its maps depend on beyond its code (weights, a checkpoint, a config) it declares with
``fn.depends_on = [paths]`` (files or folders whose bytes are hashed; ``[]`` = nothing) and/or
``fn.fingerprint = callable`` returning a string (e.g. a hash of the loaded state). A plugin
that declares neither has an incomplete fingerprint (import path, package version and module
source only): it may evaluate from scratch, but its cached records are never resumed and its
reports are refused by ``leaderboard add``.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import torch

from groundbench.errors import MethodError
from groundbench.methods.base import METHODS
from groundbench.types import SUPERVISION_CLASSES, GroundingSample, RawMaps


def declare_hint(attr: str) -> str:
    """How to declare what a plugin's maps depend on (one sentence for error messages)."""
    return (
        f"declare what its maps depend on beyond its code: {attr}.depends_on = "
        f"['path/to/weights', ...] (files or folders, hashed by their bytes; [] if nothing) "
        f"and/or {attr}.fingerprint = a function returning a string that changes with the "
        "weights (docs/plugins.md)"
    )


class Plugin:
    """Wrap ``module:callable`` as a method.

    Attributes:
        fingerprint_complete: True when the callable declares ``depends_on`` or
            ``fingerprint``; False when its fingerprint covers its code only.
    """

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
        self._depends_on = _depends_on(target, getattr(fn, "depends_on", None))
        self._declared_fp = getattr(fn, "fingerprint", None)
        if self._declared_fp is not None and not callable(self._declared_fp):
            raise MethodError(
                f"plugin:{target}: {attr}.fingerprint must be a function returning a string, "
                f"got {type(self._declared_fp).__name__}"
            )
        self.fingerprint_complete = self._depends_on is not None or self._declared_fp is not None

    def incomplete_hint(self) -> str:
        """The sentence telling the user how to make this plugin's fingerprint complete."""
        return declare_hint(self.name)

    def fingerprint(self) -> str:
        """Hash of the import path, package version, module source and the declared dependencies.

        Raises:
            MethodError: a declared path is missing, or ``fingerprint()`` fails or returns
                something other than a non-empty string.
        """
        top = self.module.__name__.split(".")[0]
        try:
            version = metadata.version(top)
        except metadata.PackageNotFoundError:
            version = getattr(self.module, "__version__", "")
        try:
            source = inspect.getsource(self.module)
        except (OSError, TypeError):
            source = ""
        h = hashlib.sha256(f"{self.target}\0{version}\0{source}".encode())
        for path in self._depends_on or ():
            h.update(b"\0file\0")
            _hash_path(h, path, self.target)
        if self._declared_fp is not None:
            try:
                declared = self._declared_fp()
            except Exception as exc:  # the plugin's own bug: name it
                raise MethodError(
                    f"plugin:{self.target}: {self.name}.fingerprint() raised "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(declared, str) or not declared:
                raise MethodError(
                    f"plugin:{self.target}: {self.name}.fingerprint() must return a non-empty "
                    f"string, got {declared!r}"
                )
            h.update(b"\0declared\0" + declared.encode())
        return h.hexdigest()

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


def _depends_on(target: str, value) -> tuple[Path, ...] | None:
    """The declared paths (None when nothing is declared)."""
    if value is None:
        return None
    if isinstance(value, (str, Path)) or not all(isinstance(p, (str, Path)) for p in value):
        raise MethodError(
            f"plugin:{target}: depends_on must be a list of file or folder paths, got {value!r}"
        )
    return tuple(Path(p) for p in value)


def _hash_path(h, path: Path, target: str) -> None:
    """Feed a file's bytes, or every file under a folder (sorted, with relative names), to ``h``."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        names = [p.relative_to(path).as_posix() for p in files]
    elif path.is_file():
        files, names = [path], [path.name]
    else:
        raise MethodError(
            f"plugin:{target}: depends_on names {str(path)!r}, which does not exist; "
            "declare the files the plugin really loads"
        )
    for f, name in zip(files, names, strict=True):
        h.update(name.encode() + b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)


@METHODS.register("plugin", supervision="declared by the callable", arg="package.module:callable")
def plugin(arg: str | None) -> Plugin:
    """``plugin:module:callable``."""
    if not arg:
        raise MethodError("method plugin needs a target: plugin:package.module:callable")
    return Plugin(arg)
