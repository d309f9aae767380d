"""One small registry class, instantiated once per kind of plug-in.

Built-ins register with the ``register`` decorator; third-party packages add entries through
the entry-point group ``groundbench.<kind>``, loaded lazily on first lookup. A broken plug-in
is logged by name and never hides the built-ins.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

from groundbench.errors import GroundbenchError, UnknownNameError

T = TypeVar("T")
log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object with the metadata declared at registration."""

    name: str
    obj: T
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Name → object mapping for one kind (``metrics``, ``adapters``, ``methods``, ...).

    Example:
        >>> colours = Registry("colours")
        >>> @colours.register("red", rgb=(255, 0, 0))
        ... def red():
        ...     return "red"
        >>> colours.get("red")()
        'red'
        >>> colours.meta("red")["rgb"]
        (255, 0, 0)
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._plugins_loaded = False

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorate ``obj`` to register it under ``name`` (lowercase snake_case)."""

        def decorator(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return decorator

    def add(self, name: str, obj: T, **meta: Any) -> None:
        """Register ``obj`` under ``name``; a duplicate name is an error."""
        if not _NAME.match(name):
            raise GroundbenchError(
                f"cannot register {self.kind} {name!r}: names are lowercase snake_case ASCII "
                "(letters, digits, underscores, starting with a letter)"
            )
        if name in self._entries:
            raise GroundbenchError(
                f"{self.kind} {name!r} is registered twice; pick another name for the second one"
            )
        self._entries[name] = Entry(name, obj, dict(meta))

    def get(self, name: str, *, asked_by: str | None = None) -> T:
        """Return the object registered as ``name``.

        Raises:
            UnknownNameError: ``name`` is unknown; the message lists the valid names, the
                closest matches and (when given) the file or flag that asked.
        """
        return self.entry(name, asked_by=asked_by).obj

    def entry(self, name: str, *, asked_by: str | None = None) -> Entry[T]:
        """Return the full :class:`Entry` registered as ``name``."""
        self._load_plugins()
        if name in self._entries:
            return self._entries[name]
        where = f" (asked for by {asked_by})" if asked_by else ""
        close = difflib.get_close_matches(name, self._entries, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else "."
        valid = ", ".join(sorted(self._entries)) or "none"
        raise UnknownNameError(f"unknown {self.kind} {name!r}{where}{hint} Valid names: {valid}.")

    def meta(self, name: str) -> dict[str, Any]:
        """Return the metadata declared when ``name`` was registered."""
        return self.entry(name).meta

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        self._load_plugins()
        return sorted(self._entries)

    def describe(self) -> list[Entry[T]]:
        """Return every entry, sorted by name (feeds ``groundbench list``)."""
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in metadata.entry_points(group=f"groundbench.{self.kind}"):
            try:
                obj = ep.load()
                if ep.name not in self._entries:
                    self.add(ep.name, obj, plugin=ep.value)
            except Exception as exc:  # a broken plug-in must not hide the built-ins
                log.warning("skipping %s plug-in %r (%s): %s", self.kind, ep.name, ep.value, exc)
