"""A metric's parameters, declared once at registration (torchmetrics' class attributes).

Each metric registers a :class:`Params` declaration: every parameter's name, type, default,
range or choices, a rule between parameters, and the metric's display key. A protocol's
metric spec is checked against it once (:meth:`Params.check`): unknown keys, types (``1`` →
``1.0`` in a float parameter), ranges and choices, all with the spec's key path; no metric
runs to find out whether its parameters are valid.

Example:
    >>> p = Params(Param("iou", 0.5, low=0.0, high=1.0, low_open=True),
    ...            key=lambda name, v: f"{name}@{v['iou']:g}")
    >>> p.check({"iou": 1}, metric="box_acc")
    {'iou': 1.0}
    >>> p.key("box_acc", p.check({}, metric="box_acc"))
    'box_acc@0.5'
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from groundbench.errors import GroundbenchError, ProtocolError, did_you_mean

#: Largest distance parameter (``*_px``) a spec may give: larger ones only allocate.
MAX_DISTANCE_PX = 4096.0

# Keyword arguments every metric accepts for its inputs; the rest of its keywords are params.
INPUT_NAMES: tuple[str, ...] = ("region", "valid", "boxes", "box_count", "pred_mask", "pred_box")


@dataclass(frozen=True)
class Param:
    """One parameter: its default fixes its type (``float``, ``int``, ``str``, ``bool``).

    Args:
        name: the keyword (units in the name: ``tolerance_px``).
        default: the value a spec that leaves it out gets.
        choices: the allowed values (``None`` may be one), or None for a numeric range.
        low, high: the numeric range; ``low_open``/``high_open`` exclude an end.
        kind: the type when ``default`` is None (a choice of strings: ``str``).
    """

    name: str
    default: Any
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    kind: type | None = None

    @property
    def type(self) -> type:
        """The parameter's type: ``kind`` when given, else the default's."""
        return self.kind or type(self.default)

    def interval(self) -> str:
        """The range as text, e.g. ``(0, 1]``."""
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"

    def describe(self) -> str:
        """``name=default`` with its range or choices, e.g. ``iou=0.5 in (0, 1]``."""
        if self.choices is not None:
            return f"{self.name}={self.default!r} of {'|'.join(map(repr, self.choices))}"
        if self.low is None and self.high is None:
            return f"{self.name}={self.default!r}"
        return f"{self.name}={self.default!r} in {self.interval()}"

    def check(self, value: Any, at: str) -> Any:
        """Return ``value`` coerced to the parameter's type; raise :class:`ProtocolError`."""
        if self.choices is not None:
            if value not in self.choices or isinstance(value, bool) != isinstance(
                self.default, bool
            ):
                valid = ", ".join(map(repr, self.choices))
                raise ProtocolError(f"{at}: unknown value {value!r}; valid values: {valid}")
            return value
        kind = self.type
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            noun = "a number" if kind in (float, int) else f"a {kind.__name__}"
            raise ProtocolError(f"{at} must be {noun}, got {value!r}")
        if kind in (float, int) and not self._in_range(value):
            what = "a distance in pixels" if self.name.endswith("_px") else "a value"
            raise ProtocolError(f"{at}: {value!r} is out of range; use {what} in {self.interval()}")
        return value

    def _in_range(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (
            value > self.high or (self.high_open and value == self.high)
        )


def _generic_key(name: str, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in sorted(values.items()) if v != defaults[k]}
    if not shown:
        return name
    return f"{name}[{','.join(f'{k}={v}' for k, v in shown.items())}]"


@dataclass(frozen=True)
class Params:
    """Every parameter of one metric, a rule between them, and its display key.

    Args:
        *params: the :class:`Param` declarations, in signature order.
        rule: ``rule(values) -> message or None``, run after each value is checked (e.g.
            pointing: a variant fixes its own tolerance).
        key: ``key(name, values) -> display key``; default: the name, then the parameters
            that differ from their defaults (``nss[x=2]``).
        resolve: ``resolve(values) -> values``, run last: fills in defaults that depend on
            other parameters (pointing: a variant's own ``coords`` and ``ties``), so the
            checked values are explicit; it must give the same values when run again.
    """

    params: tuple[Param, ...] = ()
    rule: Callable[[Mapping[str, Any]], str | None] | None = None
    key_fn: Callable[[str, Mapping[str, Any]], str] | None = None
    resolve: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None

    def __init__(
        self,
        *params: Param,
        rule: Callable[[Mapping[str, Any]], str | None] | None = None,
        key: Callable[[str, Mapping[str, Any]], str] | None = None,
        resolve: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        object.__setattr__(self, "params", tuple(params))
        object.__setattr__(self, "rule", rule)
        object.__setattr__(self, "key_fn", key)
        object.__setattr__(self, "resolve", resolve)

    def defaults(self) -> dict[str, Any]:
        """``{name: default}`` in declaration order."""
        return {p.name: p.default for p in self.params}

    def check(
        self, given: Mapping[str, Any], *, metric: str, path: str = "", where: str = ""
    ) -> dict[str, Any]:
        """Check ``given`` (a spec without its ``name``) and fill in every default.

        Args:
            given: ``{parameter: value}``.
            metric: the metric's name, for messages.
            path: the spec's key path (``metrics.1``); default: the metric's name.
            where: the file the spec came from, for messages.

        Returns:
            ``{parameter: value}`` for every declared parameter, types coerced.

        Raises:
            ProtocolError: an unknown key, a wrong type, a value out of range or not among
                the choices, or a broken rule; the message names the key path.
        """
        path = path or metric
        at = f"{where}: {path}" if where else path
        valid = ["name", *(p.name for p in self.params)]
        for key in given:
            if key not in valid[1:]:
                hint = did_you_mean(key, valid)
                raise ProtocolError(
                    f"{where or 'metric spec'}: unknown key {path}.{key}; valid keys under "
                    f"{path}: {', '.join(valid)}{hint}"
                )
        values = {
            p.name: p.check(given.get(p.name, p.default), f"{at}.{p.name}") for p in self.params
        }
        broken = self.rule(values) if self.rule is not None else None
        if broken:
            raise ProtocolError(f"{at}: {metric}: {broken}")
        return self.resolve(values) if self.resolve is not None else values

    def key(self, name: str, values: Mapping[str, Any]) -> str:
        """The display key of metric ``name`` with checked ``values`` (report columns)."""
        if self.key_fn is not None:
            return self.key_fn(name, values)
        return _generic_key(name, values, self.defaults())

    def agree_with(self, fn: Callable[..., Any], name: str) -> None:
        """Raise :class:`GroundbenchError` unless ``fn``'s keyword parameters match these."""
        found = signature_defaults(fn)
        if found != self.defaults():
            raise GroundbenchError(
                f"metric {name!r}: its keyword parameters {found} differ from the declared "
                f"{self.defaults()}; declare each parameter once, with the signature's default"
            )


def signature_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """``{keyword: default}`` of ``fn``'s keyword-only parameters that are not inputs."""
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in INPUT_NAMES
    }


def params_from_signature(fn: Callable[..., Any]) -> Params:
    """A declaration read off a plug-in metric's signature: types from defaults, no ranges."""
    return Params(
        *(
            Param(k, v, kind=None if v is not None else object)
            for k, v in signature_defaults(fn).items()
        )
    )
