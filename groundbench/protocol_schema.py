"""Validate a merged protocol mapping into its canonical form: every key checked, every default filled.

The canonical form is a plain dict of str / float / int / list / None (JSON-ready) with the
keys of :data:`TOP_LEVEL_KEYS` minus ``about``. :func:`canonicalise` is idempotent: feeding a
canonical dict back in returns an equal dict, so the hash of a protocol does not depend on
how it was written (key order, ``1`` vs ``1.0``, defaults spelled out or left implicit).
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Mapping
from typing import Any

from groundbench.errors import GroundbenchError, ProtocolError, did_you_mean
from groundbench.metrics import METRICS
from groundbench.metrics.suite import check_specs
from groundbench.postprocess import canonical_config

SCHEMA_VERSION = 1
TOP_LEVEL_KEYS: tuple[str, ...] = (
    "schema",
    "about",
    "extends",
    "dataset",
    "select",
    "resolution",
    "region",
    "pipeline",
    "metrics",
    "bootstrap",
    "control",
    "proposals",
    "split_metrics",
)
DATASET_KEYS: tuple[str, ...] = ("adapter", "name", "split", "options", "on_size_mismatch")
#: What an image whose real size differs from its record's does: stop the run (the default),
#: or leave the sample unscored, undefined with reason ``image_size_mismatch``.
SIZE_MISMATCH_RULES: tuple[str, ...] = ("refuse", "undefined")
SELECT_DEFAULTS: dict[str, Any] = {"include_tags": [], "exclude_tags": [], "min_area_fraction": 0.0}
BOOTSTRAP_DEFAULTS: dict[str, Any] = {"resamples": 1000, "seed": 0, "cluster": None}
#: What ``bootstrap.cluster`` may group samples by (``null``: samples are independent).
CLUSTERS: tuple[str, ...] = ("image",)
REGIONS: tuple[str, ...] = ("boxes", "mask")
#: Upper bounds that keep a valid protocol within memory: more resamples do not move a
#: 95% interval's third digit, and larger evaluation grids only allocate.
MAX_RESAMPLES = 1_000_000
MAX_RESOLUTION_PX = 8192
CONTROLS: tuple[str, ...] = ("blind",)
#: Split-level metrics (a number of the whole split, not a per-sample mean) and their keys.
MAXBOXACC_DEFAULTS: dict[str, Any] = {"calibration_split": None, "deltas": [0.3, 0.5, 0.7]}

#: Settings that cannot change a number: never in a protocol, always a CLI flag.
OPERATIONAL_KEYS: dict[str, str] = {
    "device": "--device",
    "batch_size": "--batch-size",
    "num_workers": "--num-workers",
    "workers": "--num-workers",
    "out": "--out",
    "out_dir": "--out",
    "output_dir": "--out",
    "data_root": "--data-root",
    "root": "--data-root",
    "resume": "--resume/--no-resume",
    "limit": "--limit",
    "progress": "--quiet",
}

#: Selection a pointing variant implies in its literature (filled in unless written explicitly).
VARIANT_PRESETS: dict[str, dict[str, Any]] = {
    "mg": {"min_area_fraction": 0.05, "exclude_tags": ["notvisual"]},
}


def reject_unknown(where: str, cfg: Mapping[str, Any], path: str, valid: list[str]) -> None:
    """Raise :class:`ProtocolError` on the first key of ``cfg`` not in ``valid``.

    ``path`` is the key path of ``cfg`` (empty at the top level); operational keys get a
    message naming the CLI flag to use instead.
    """
    for key in cfg:
        full = f"{path}.{key}" if path else str(key)
        if key in valid:
            continue
        if key in OPERATIONAL_KEYS:
            raise ProtocolError(
                f"{where}: {full} is an operational setting, not part of a protocol (it cannot "
                f"change a number and is never hashed); remove it and use the CLI flag "
                f"{OPERATIONAL_KEYS[key]}"
            )
        under = f"under {path}" if path else "at the top level"
        raise ProtocolError(
            f"{where}: unknown key {full}; valid keys {under}: {', '.join(valid)}{did_you_mean(key, valid)}"
        )


def _mapping(where: str, value: Any, path: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    if value is None:
        return copy.deepcopy(dict(defaults))
    if not isinstance(value, Mapping):
        raise ProtocolError(
            f"{where}: {path} must be a mapping with keys {', '.join(defaults)}, got {value!r}"
        )
    reject_unknown(where, value, path, list(defaults))
    return {**copy.deepcopy(dict(defaults)), **value}


def _text(where: str, value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{where}: {path} must be a non-empty string, got {value!r}")
    return value


def _choice(where: str, value: Any, path: str, options: tuple[str, ...]) -> str:
    if isinstance(value, str) and value in options:
        return value
    raise ProtocolError(
        f"{where}: {path}: {value!r} is not a valid value; valid values: {', '.join(options)}"
        f"{did_you_mean(value, list(options))}"
    )


def _integer(where: str, value: Any, path: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ProtocolError(f"{where}: {path} must be an integer >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ProtocolError(f"{where}: {path}: {value!r} is too large; use at most {high}")
    return int(value)


def _tags(where: str, value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
        raise ProtocolError(f"{where}: {path} must be a list of tag strings, got {value!r}")
    return sorted(set(value))


def _dataset(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ProtocolError(
            f"{where}: dataset must be a mapping like {{adapter: native, name: synth, "
            f"split: test}}, got {value!r}"
        )
    reject_unknown(where, value, "dataset", list(DATASET_KEYS))
    for key in ("adapter", "split"):
        if key not in value:
            raise ProtocolError(f"{where}: dataset.{key} is missing; name the dataset's {key}")
    adapter = _text(where, value["adapter"], "dataset.adapter")
    options = value.get("options") or {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise ProtocolError(f"{where}: dataset.options must be a mapping, got {options!r}")
    _check_adapter(where, adapter, dict(options))
    section = {
        "adapter": adapter,
        "name": _text(where, value.get("name", adapter), "dataset.name"),
        "split": _text(where, value["split"], "dataset.split"),
        "options": copy.deepcopy(dict(options)),
    }
    rule = _choice(
        where,
        value.get("on_size_mismatch", "refuse"),
        "dataset.on_size_mismatch",
        SIZE_MISMATCH_RULES,
    )
    if rule != "refuse":  # absent, not "refuse", by default: older hashes hold
        section["on_size_mismatch"] = rule
    return section


def _check_adapter(where: str, adapter: str, options: dict[str, Any]) -> None:
    """Check the adapter exists and takes options of these names (it checks values on opening)."""
    from dataset_adapters import ADAPTERS

    try:
        cls = ADAPTERS.get(adapter, asked_by=f"{where} dataset.adapter")
    except GroundbenchError as exc:
        raise ProtocolError(str(exc)) from exc
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        known = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY]
        reject_unknown(where, options, "dataset.options", known)


def _select(where: str, value: Any) -> dict[str, Any]:
    sec = _mapping(where, value, "select", SELECT_DEFAULTS)
    include = _tags(where, sec["include_tags"], "select.include_tags")
    exclude = _tags(where, sec["exclude_tags"], "select.exclude_tags")
    both = sorted(set(include) & set(exclude))
    if both:
        raise ProtocolError(
            f"{where}: select: tags {both} are both included and excluded, so nothing would be "
            "selected; remove them from one list"
        )
    fraction = sec["min_area_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise ProtocolError(
            f"{where}: select.min_area_fraction must be a number in [0, 1), got {fraction!r}"
        )
    if not (math.isfinite(fraction) and 0.0 <= fraction < 1.0):
        raise ProtocolError(
            f"{where}: select.min_area_fraction: {fraction!r} is out of range; use a value in [0, 1)"
        )
    return {"include_tags": include, "exclude_tags": exclude, "min_area_fraction": float(fraction)}


def _resolution(where: str, value: Any) -> str | list[int] | dict[str, int]:
    if value == "image":
        return "image"
    if isinstance(value, Mapping):
        reject_unknown(where, value, "resolution", ["max_side"])
        if "max_side" not in value:
            raise ProtocolError(f"{where}: resolution needs max_side, e.g. {{max_side: 1024}}")
        side = _integer(where, value["max_side"], "resolution.max_side", 1, MAX_RESOLUTION_PX)
        return {"max_side": side}
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        if max(value) > MAX_RESOLUTION_PX:
            raise ProtocolError(
                f"{where}: resolution {value!r} is too large; each side must be at most "
                f"{MAX_RESOLUTION_PX} pixels"
            )
        return [int(value[0]), int(value[1])]
    raise ProtocolError(
        f"{where}: resolution must be 'image', [height, width] in positive pixels or "
        f"{{max_side: N}}, got {value!r}"
    )


def _proposals(where: str, value: Any) -> str | dict[str, str] | None:
    """``gt``, ``{file: NAME}`` (a JSON file under the dataset root), or None (no ranking)."""
    if value is None or value == "gt":
        return value
    if isinstance(value, Mapping) and set(value) == {"file"} and isinstance(value["file"], str):
        name = value["file"]
        parts = name.replace("\\", "/").split("/")
        if name and not name.startswith("/") and ".." not in parts:
            return {"file": name}
    raise ProtocolError(
        f"{where}: proposals must be gt or {{file: NAME}} with NAME a path under the dataset "
        f"root (e.g. refcoco+_dets_dict.json), got {value!r}"
    )


def _metrics(
    where: str, value: Any, pipeline: Mapping[str, Any], proposals: Any = None
) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise ProtocolError(
            f"{where}: metrics must be a non-empty list like [{{name: pointing, variant: albef}}], "
            f"got {value!r}"
        )
    for i, m in enumerate(value):
        if isinstance(m, Mapping) and "name" in m and str(m["name"]) in METRICS:
            _check_needs(where, f"metrics.{i}", str(m["name"]), pipeline, proposals)
    return [spec.to_dict() for spec in check_specs(value, where=where)]


def _check_needs(
    where: str, path: str, name: str, pipeline: Mapping[str, Any], proposals: Any
) -> None:
    needs = METRICS.meta(name).get("needs", ())
    if "proposals" in needs and proposals is None:
        raise ProtocolError(
            f"{where}: {path}: metric {name!r} ranks candidate boxes, but the protocol has no "
            "proposals; set proposals: {file: NAME} (a detector file) or proposals: gt"
        )
    if "pred_mask" in needs and pipeline["threshold"] is None:
        raise ProtocolError(
            f"{where}: {path}: metric {name!r} reads the thresholded mask, but "
            "pipeline.threshold is null; set a threshold or drop the metric"
        )
    if "pred_box" in needs and pipeline["regions"] is None:
        raise ProtocolError(
            f"{where}: {path}: metric {name!r} reads the predicted box, but pipeline.regions "
            "is null; set a regions rule or drop the metric"
        )


def apply_presets(raw: dict[str, Any]) -> dict[str, Any]:
    """Make the selection implied by a pointing variant explicit (``mg`` → area and tag filters).

    Keys written in the protocol win over the preset; the result is what gets validated and
    hashed, so a protocol that spells the preset out hashes the same as one that relies on it.
    """
    metrics = raw.get("metrics")
    if not isinstance(metrics, list):
        return raw
    variants = {m.get("variant") for m in metrics if isinstance(m, Mapping)}
    out = dict(raw)
    for variant, preset in VARIANT_PRESETS.items():
        if variant not in variants:
            continue
        select = out.get("select")
        select = dict(select) if isinstance(select, Mapping) else {}
        for key, value in preset.items():
            select.setdefault(key, copy.deepcopy(value))
        out["select"] = select
    return out


def canonicalise(where: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a merged protocol mapping and return its canonical dict (``about`` dropped).

    Args:
        where: the file (and overrides) the mapping came from, for error messages.
        raw: the protocol after ``extends``, overrides and presets.

    Raises:
        ProtocolError: an unknown or operational key, a missing required key, a bad value.
    """
    reject_unknown(where, raw, "", [k for k in TOP_LEVEL_KEYS if k != "extends"])
    if raw.get("schema") != SCHEMA_VERSION:
        raise ProtocolError(
            f"{where}: schema must be {SCHEMA_VERSION} (this groundbench reads protocol schema "
            f"{SCHEMA_VERSION}), got {raw.get('schema')!r}"
        )
    for key in ("dataset", "metrics"):
        if key not in raw:
            raise ProtocolError(f"{where}: the protocol has no {key} section; add one")
    try:
        pipeline = canonical_config(raw.get("pipeline"))
    except ProtocolError as exc:
        raise ProtocolError(f"{where}: {exc}") from exc
    control = raw.get("control")
    proposals = _proposals(where, raw.get("proposals"))
    canonical = {
        "schema": SCHEMA_VERSION,
        "dataset": _dataset(where, raw["dataset"]),
        "select": _select(where, raw.get("select")),
        "resolution": _resolution(where, raw.get("resolution", "image")),
        "region": _choice(where, raw.get("region", "boxes"), "region", REGIONS),
        "pipeline": pipeline,
        "metrics": _metrics(where, raw["metrics"], pipeline, proposals),
        "bootstrap": _bootstrap(where, raw.get("bootstrap")),
        "control": None if control is None else _choice(where, control, "control", CONTROLS),
    }
    if proposals is not None:  # absent, not null, when nothing is ranked: older hashes hold
        canonical["proposals"] = proposals
    if raw.get("split_metrics") is not None:  # absent when unused, as proposals
        canonical["split_metrics"] = _split_metrics(
            where, raw["split_metrics"], canonical["dataset"]["split"]
        )
    return canonical


def _split_metrics(where: str, value: Any, split: str) -> dict[str, Any]:
    """``{maxboxacc: {calibration_split, deltas}, pxap: {}}``, either or both."""
    if not isinstance(value, Mapping) or not value:
        raise ProtocolError(
            f"{where}: split_metrics must be a mapping like {{maxboxacc: {{calibration_split: "
            f"val}}}}, got {value!r}"
        )
    reject_unknown(where, value, "split_metrics", ["maxboxacc", "pxap"])
    out: dict[str, Any] = {}
    if "pxap" in value:
        _mapping(where, value["pxap"], "split_metrics.pxap", {})  # no settings: {} or null
        out["pxap"] = {}
    if "maxboxacc" not in value:
        return out
    sec = _mapping(where, value["maxboxacc"], "split_metrics.maxboxacc", MAXBOXACC_DEFAULTS)
    path = "split_metrics.maxboxacc"
    cal = sec["calibration_split"]
    if cal is not None:
        cal = _text(where, cal, f"{path}.calibration_split")
        if cal == split:
            raise ProtocolError(
                f"{where}: {path}.calibration_split is {cal!r}, the evaluated split itself; name "
                "another split (e.g. val), or null for the uncalibrated maximum only"
            )
    deltas = sec["deltas"]
    ok = (
        isinstance(deltas, list)
        and deltas
        and all(isinstance(d, (int, float)) and not isinstance(d, bool) for d in deltas)
        and all(0.0 < d <= 1.0 for d in deltas)
        and len(set(deltas)) == len(deltas)
    )
    if not ok:
        raise ProtocolError(
            f"{where}: {path}.deltas must be a list of distinct IoU levels in (0, 1], got "
            f"{deltas!r}"
        )
    out["maxboxacc"] = {"calibration_split": cal, "deltas": sorted(float(d) for d in deltas)}
    return out


def _bootstrap(where: str, value: Any) -> dict[str, Any]:
    boot = _mapping(where, value, "bootstrap", BOOTSTRAP_DEFAULTS)
    cluster = boot["cluster"]
    return {
        "resamples": _integer(where, boot["resamples"], "bootstrap.resamples", 1, MAX_RESAMPLES),
        "seed": _integer(where, boot["seed"], "bootstrap.seed", 0),
        "cluster": None
        if cluster is None
        else _choice(where, cluster, "bootstrap.cluster", CLUSTERS),
    }
