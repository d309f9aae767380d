"""Validate a post-processing config and fill in every default (the canonical form).

The canonical config is a plain dict of str / float / int / list / None that a protocol
hashes: two configs that mean the same thing canonicalise to the same dict (``1`` and
``1.0`` are the same ``sigma_px``), and every key is present.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from groundbench.errors import ProtocolError, did_you_mean
from groundbench.postprocess.aggregate import HEAD_MODES, REDUCE_MODES
from groundbench.postprocess.average import PASS_MODES
from groundbench.postprocess.normalise import NORMALISE_MODES
from groundbench.postprocess.regions import MAP_RULES, MASS_ALPHA, REGION_RULES
from groundbench.postprocess.threshold import THRESHOLD_METHODS
from groundbench.postprocess.upsample import ALIGN_MODES, UPSAMPLE_MODES

ROOT = "pipeline"

DEFAULT_CONFIG: dict[str, Any] = {
    "average": {"passes": "mean"},
    "aggregate": {"layers": "all", "heads": "mean", "reduce": "mean"},
    "normalise": "minmax",
    "upsample": {"mode": "bilinear", "align": "patch"},
    "smooth": {"sigma_px": 0.0},
    "threshold": {"method": "fraction_of_max", "value": 0.5},
    "regions": "largest_component",
}

_MISSING = object()

# default `value` per threshold method; None = the method takes no value, absent = required
_THRESHOLD_VALUES: dict[str, float | None] = {
    "fraction_of_max": 0.5,
    "top_k_percent": 10.0,
    "mean": None,
    "otsu": None,
}


def _choice(value: Any, options: tuple[str, ...], path: str) -> str:
    if isinstance(value, str) and value in options:
        return value
    hint = did_you_mean(value, list(options)) if isinstance(value, str) else ""
    raise ProtocolError(
        f"{path}: {value!r} is not a valid value; valid values: {', '.join(options)}{hint}"
    )


def _regions(value: Any, path: str) -> str | dict[str, Any]:
    """A mask rule as its name; a rule on the map itself as ``{"rule", "alpha"}``."""
    if isinstance(value, Mapping):
        _reject_unknown(value, path, ["rule", "alpha"])
        if "rule" not in value:
            raise ProtocolError(f"{path}: a mapping needs 'rule', e.g. {{rule: mass_minus_area}}")
        rule = _choice(value["rule"], REGION_RULES, f"{path}.rule")
        if rule not in MAP_RULES and "alpha" in value:
            raise ProtocolError(
                f"{path}.alpha: only {', '.join(MAP_RULES)} takes alpha; remove it for {rule!r}"
            )
    else:
        rule, value = _choice(value, REGION_RULES, path), {}
    if rule not in MAP_RULES:
        return rule  # the name alone, as before map rules existed: hashes hold
    return {
        "rule": rule,
        "alpha": _number(value.get("alpha", MASS_ALPHA), f"{path}.alpha", 0.0, 100.0),
    }


def _number(value: Any, path: str, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"{path}: expected a number, got {value!r}")
    x = float(value)
    too_low = x <= low if low_open else x < low
    if not math.isfinite(x) or too_low or x > high:
        bracket = "(" if low_open else "["
        raise ProtocolError(
            f"{path}: {value!r} is out of range; use a value in {bracket}{low}, {high}]"
        )
    return x


def _indices(value: Any, path: str, modes: tuple[str, ...]) -> str | list[int]:
    if isinstance(value, str):
        return _choice(value, modes, path)
    if (
        not isinstance(value, (list, tuple))
        or not value
        or any(isinstance(i, bool) or not isinstance(i, int) for i in value)
    ):
        raise ProtocolError(
            f"{path}: expected one of {', '.join(modes)} or a non-empty list of integer "
            f"indices, got {value!r}"
        )
    if len(set(value)) != len(value):
        raise ProtocolError(f"{path}: indices must be unique, got {list(value)}")
    return [int(i) for i in value]


def _section(cfg: Any, path: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    if cfg is None:
        return dict(defaults)
    if not isinstance(cfg, Mapping):
        raise ProtocolError(
            f"{path}: expected a mapping with keys {', '.join(defaults)}, got {cfg!r}"
        )
    _reject_unknown(cfg, path, list(defaults))
    return {**defaults, **cfg}


def _reject_unknown(cfg: Mapping[str, Any], path: str, valid: list[str]) -> None:
    for key in cfg:
        if key not in valid:
            raise ProtocolError(
                f"unknown key {path}.{key}; valid keys under {path}: {', '.join(valid)}"
                f"{did_you_mean(str(key), valid)}"
            )


def _threshold(cfg: Any, path: str) -> dict[str, Any] | None:
    if cfg is None:
        return None
    sec = _section(cfg, path, {"method": "fraction_of_max", "value": _MISSING})
    method = _choice(sec["method"], THRESHOLD_METHODS, f"{path}.method")
    value = sec["value"]
    if value is _MISSING:
        if method not in _THRESHOLD_VALUES:
            raise ProtocolError(
                f"{path}.value: method {method!r} needs a value (the level to keep)"
            )
        value = _THRESHOLD_VALUES[method]
    if method in ("mean", "otsu"):
        if value is not None:
            raise ProtocolError(f"{path}.value: method {method!r} takes no value; remove it")
    elif method == "fixed":
        value = _number(value, f"{path}.value", -math.inf, math.inf)
    elif method == "fraction_of_max":
        value = _number(value, f"{path}.value", 0.0, 1.0)
    else:
        value = _number(value, f"{path}.value", 0.0, 100.0, low_open=True)
    return {"method": method, "value": value}


def canonical_config(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``cfg`` and return it with every default filled in.

    Args:
        cfg: the ``pipeline`` section of a protocol (None or ``{}`` = all defaults).

    Returns:
        A new plain dict with the keys of :data:`DEFAULT_CONFIG`.

    Raises:
        ProtocolError: an unknown step or key (naming its key path, the valid keys and the
            closest match), a bad value, or contradictory settings.

    Example:
        >>> canonical_config({"smooth": {"sigma_px": 2}})["smooth"]
        {'sigma_px': 2.0}
    """
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, Mapping):
        raise ProtocolError(f"{ROOT}: expected a mapping of steps, got {cfg!r}")
    _reject_unknown(cfg, ROOT, list(DEFAULT_CONFIG))
    d = DEFAULT_CONFIG
    p = ROOT

    avg = _section(cfg.get("average"), f"{p}.average", d["average"])
    agg = _section(cfg.get("aggregate"), f"{p}.aggregate", d["aggregate"])
    up = _section(cfg.get("upsample"), f"{p}.upsample", {**d["upsample"], "clip": False})
    smooth = _section(cfg.get("smooth"), f"{p}.smooth", d["smooth"])
    out = {
        "average": {"passes": _choice(avg["passes"], PASS_MODES, f"{p}.average.passes")},
        "aggregate": {
            "layers": _indices(agg["layers"], f"{p}.aggregate.layers", ("all",)),
            "heads": _indices(agg["heads"], f"{p}.aggregate.heads", HEAD_MODES),
            "reduce": _choice(agg["reduce"], REDUCE_MODES, f"{p}.aggregate.reduce"),
        },
        "normalise": _choice(
            cfg.get("normalise", d["normalise"]), NORMALISE_MODES, f"{p}.normalise"
        ),
        "upsample": {
            "mode": _choice(up["mode"], UPSAMPLE_MODES, f"{p}.upsample.mode"),
            "align": _choice(up["align"], ALIGN_MODES, f"{p}.upsample.align"),
        },  # clip joins only when set, so the canonical form of older protocols holds
        "smooth": {"sigma_px": _number(smooth["sigma_px"], f"{p}.smooth.sigma_px", 0.0, 1e4)},
        "threshold": _threshold(cfg.get("threshold", d["threshold"]), f"{p}.threshold"),
        "regions": None,
    }
    if up["clip"] is not False:
        if up["clip"] is not True:
            raise ProtocolError(f"{p}.upsample.clip: expected true or false, got {up['clip']!r}")
        out["upsample"]["clip"] = True
    regions = cfg.get("regions", d["regions"])
    if regions is not None:
        out["regions"] = _regions(regions, f"{p}.regions")
    if out["aggregate"]["heads"] == "gate" and out["aggregate"]["reduce"] != "mean":
        raise ProtocolError(
            f"{p}.aggregate.reduce: heads 'gate' takes a weighted mean over layers and heads, "
            "so reduce must be 'mean'"
        )
    if isinstance(out["regions"], dict) and out["threshold"] is not None:
        raise ProtocolError(
            f"{p}.regions: {out['regions']['rule']!r} finds its box on the map itself and reads "
            f"no thresholded mask; set {p}.threshold to null"
        )
    if out["regions"] is not None and out["threshold"] is None and isinstance(out["regions"], str):
        raise ProtocolError(
            f"{p}.regions: {out['regions']!r} needs a thresholded mask, but {p}.threshold is "
            "null; set a threshold or set regions to null"
        )
    return copy.deepcopy(out)
