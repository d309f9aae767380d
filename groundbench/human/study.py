"""The study file: load → validate → canonicalise → hash, as a protocol is.

A study names every setting that can change what an annotator sees or how answers are
scored. Its **design** (type, methods by protocol hash, method name and fingerprint, the
sample selection, annotators, gold rate, rendering, seed) is hashed into the ``study_id``
that seeds the slot order; its **analysis** settings (``min_response_ms`` and the
``exclude`` lists) are hashed separately, so writing an exclusion into the file never
reshuffles a screen. ``about`` and ``data_root`` are not hashed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundbench.errors import GroundbenchError
from groundbench.protocol import parse_yaml, protocol_hash

STUDY_SCHEMA = 1
STUDY_TYPES = ("pairwise", "choose", "click")
COLORMAPS = ("inferno", "viridis", "magma", "jet")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_TOP = {
    "schema", "about", "type", "methods", "annotators", "per_item", "sample", "gold_rate",
    "min_response_ms", "rendering", "exclude", "seed", "data_root", "k",
}  # fmt: skip
_DEFAULTS: dict[str, Any] = {
    "per_item": 3,
    "gold_rate": 0.1,
    "min_response_ms": 1500,
    "seed": 0,
    "sample": {"n": 30, "stratify": "tags"},
    "rendering": {"colormap": "inferno", "alpha": 0.5, "upsample": "bilinear", "width": 320},
    "exclude": {"annotators": [], "items": []},
}


class StudyError(GroundbenchError):
    """A study file, a study folder or a judgement is invalid."""


@dataclass(frozen=True)
class MethodRef:
    """One evaluated method: its report folder and the identity the study hashes."""

    report_dir: Path
    name: str
    spec: str
    fingerprint: str
    protocol_hash: str
    protocol_canonical: Mapping[str, Any]


@dataclass(frozen=True)
class Study:
    """A validated study.

    Attributes:
        path: the study file.
        type: ``pairwise`` (two methods' maps of one phrase: which is better) or ``choose``
            (``k`` maps of one method for phrases of one image: which shows this phrase) or
            ``click`` (the bare image: click the named object; the methods are compared by
            their pointing metrics only).
        k: candidate maps per ``choose`` item (2 for ``pairwise``, 1 for ``click``).
        methods: the compared methods, in file order (slot 0 is the first).
        annotators: annotator ids, in file order.
        per_item: annotators who judge each non-gold item.
        sample_n: phrases drawn from the samples every method's report scored.
        stratify: ``tags`` (proportional over each sample's sorted tag set) or ``none``.
        gold_rate: gold items per non-gold item shown to an annotator (0 turns them off).
        min_response_ms: answers faster than this are flagged (never dropped silently).
        rendering: colormap, overlay alpha (0–1), upsampling and display width (px).
        exclude_annotators / exclude_items: excluded from the analysis, by id.
        seed: seeds the selection, the assignment and the bootstrap.
        data_root: the dataset folder (None = the protocol's default); not hashed.
        design: canonical design mapping; ``study_id`` is its hash.
        analysis: canonical analysis mapping; ``analysis_hash`` is its hash.
    """

    path: Path
    type: str
    k: int
    methods: tuple[MethodRef, ...]
    annotators: tuple[str, ...]
    per_item: int
    sample_n: int
    stratify: str
    gold_rate: float
    min_response_ms: int
    rendering: Mapping[str, Any]
    exclude_annotators: frozenset[str]
    exclude_items: frozenset[str]
    seed: int
    data_root: Path | None
    design: Mapping[str, Any]
    analysis: Mapping[str, Any]

    @property
    def study_id(self) -> str:
        """sha256 of the canonical design."""
        return protocol_hash(self.design)

    @property
    def analysis_hash(self) -> str:
        """sha256 of the canonical analysis settings."""
        return protocol_hash(self.analysis)


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; report folders are relative to the file's folder.

    Raises:
        StudyError: a key is unknown or has the wrong type or range, a report folder is
            missing, or the methods were evaluated under different protocols.
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{path}: no such study file")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except GroundbenchError as exc:
        raise StudyError(str(exc).replace("protocol", "study")) from None
    if not isinstance(data, dict):
        raise StudyError(f"{path}: a study is a YAML mapping, got {type(data).__name__}")
    return study_from_mapping(data, path)


def study_from_mapping(data: Mapping[str, Any], path: Path) -> Study:
    """Validate a parsed study mapping (``path`` locates relative folders and messages)."""
    where = str(path)
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise StudyError(f"{where}: unknown key {unknown[0]!r}; valid keys: {sorted(_TOP)}")
    if data.get("schema") != STUDY_SCHEMA:
        raise StudyError(f"{where}: schema must be {STUDY_SCHEMA}, got {data.get('schema')!r}")
    kind = data.get("type")
    if kind not in STUDY_TYPES:
        raise StudyError(f"{where}: type must be one of {list(STUDY_TYPES)}, got {kind!r}")
    d = {k: data.get(k, v) for k, v in _DEFAULTS.items()}
    sample = _section(d["sample"], {"n", "stratify", "seed"}, f"{where}: sample")
    rendering = {**_DEFAULTS["rendering"]}
    rendering.update(_section(d["rendering"], set(rendering), f"{where}: rendering"))
    seed = _int(d["seed"], f"{where}: seed", 0)
    methods = _methods(data.get("methods"), path, 2 if kind == "pairwise" else 1)
    annotators = _annotators(data.get("annotators"), where)
    per_item = _int(d["per_item"], f"{where}: per_item", 1)
    if per_item > len(annotators):
        raise StudyError(
            f"{where}: per_item is {per_item} but only {len(annotators)} annotators are named; "
            "name more annotators or lower per_item"
        )
    n = _int(sample.get("n", 30), f"{where}: sample.n", 1)
    stratify = sample.get("stratify", "tags")
    if stratify not in ("tags", "none"):
        raise StudyError(f"{where}: sample.stratify must be 'tags' or 'none', got {stratify!r}")
    gold = _number(d["gold_rate"], f"{where}: gold_rate", 0.0, 1.0)
    fixed = {"pairwise": 2, "click": 1}.get(kind)
    k = _int(data.get("k", fixed or 3), f"{where}: k", 1 if fixed else 2)
    if fixed is not None and k != fixed:
        raise StudyError(
            f"{where}: k is {k}, but a {kind} item always shows {fixed} image(s); drop k"
        )
    if rendering["colormap"] not in COLORMAPS:
        raise StudyError(f"{where}: rendering.colormap must be one of {list(COLORMAPS)}")
    if rendering["upsample"] != "bilinear":
        raise StudyError(f"{where}: rendering.upsample must be 'bilinear'")
    alpha = _number(rendering["alpha"], f"{where}: rendering.alpha", 0.0, 1.0)
    width = _int(rendering["width"], f"{where}: rendering.width", 32)
    rendering = {**rendering, "alpha": alpha, "width": width}
    design = {
        "schema": STUDY_SCHEMA,
        "type": kind,
        "k": k,
        "methods": [
            {"protocol": m.protocol_hash, "name": m.name, "fingerprint": m.fingerprint}
            for m in methods
        ],
        "annotators": list(annotators),
        "per_item": per_item,
        "sample": {
            "n": n,
            "stratify": stratify,
            "seed": _int(sample.get("seed", seed), f"{where}: sample.seed", 0),
        },
        "gold_rate": gold,
        "rendering": rendering,
        "seed": seed,
    }
    analysis = analysis_settings(data, where)
    min_ms = analysis["min_response_ms"]
    ex_a, ex_i = analysis["exclude"]["annotators"], analysis["exclude"]["items"]
    root = data.get("data_root")
    return Study(
        path=path,
        type=kind,
        k=k,
        methods=methods,
        annotators=annotators,
        per_item=per_item,
        sample_n=n,
        stratify=stratify,
        gold_rate=gold,
        min_response_ms=min_ms,
        rendering=rendering,
        exclude_annotators=frozenset(ex_a),
        exclude_items=frozenset(ex_i),
        seed=seed,
        data_root=None if root is None else (path.parent / str(root)),
        design=design,
        analysis=analysis,
    )


def analysis_settings(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The canonical analysis settings of a parsed study: ``min_response_ms`` and ``exclude``."""
    exclude = {**_DEFAULTS["exclude"]}
    exclude.update(_section(data.get("exclude", exclude), set(exclude), f"{where}: exclude"))
    min_ms = data.get("min_response_ms", _DEFAULTS["min_response_ms"])
    return {
        "min_response_ms": _int(min_ms, f"{where}: min_response_ms", 0),
        "exclude": {
            "annotators": sorted(_names(exclude["annotators"], f"{where}: exclude.annotators")),
            "items": sorted(_names(exclude["items"], f"{where}: exclude.items", r"^[0-9a-f]{16}$")),
        },
    }


def read_analysis_settings(path: str | Path) -> dict[str, Any]:
    """Read only the analysis settings of a study file (the study folder's copy)."""
    path = Path(path)
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        raise StudyError(
            f"{path}: missing; the study folder keeps a copy of its study file"
        ) from None
    except GroundbenchError as exc:
        raise StudyError(str(exc).replace("protocol", "study")) from None
    if not isinstance(data, dict):
        raise StudyError(f"{path}: a study is a YAML mapping")
    return analysis_settings(data, str(path))


def canonical_json(obj: Any) -> str:
    """Sorted keys, compact separators, UTF-8, no NaN: the form every hash is taken of."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _section(value: Any, keys: set[str], where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise StudyError(f"{where} must be a mapping, got {value!r}")
    bad = sorted(set(value) - keys)
    if bad:
        raise StudyError(f"{where}: unknown key {bad[0]!r}; valid keys: {sorted(keys)}")
    return dict(value)


def _int(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise StudyError(f"{where} must be an integer >= {low}, got {value!r}")
    return value


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise StudyError(f"{where} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _names(value: Any, where: str, pattern: str = _NAME.pattern) -> list[str]:
    if not isinstance(value, list) or not all(
        isinstance(v, str) and re.match(pattern, v) for v in value
    ):
        raise StudyError(f"{where} must be a list of ids matching {pattern}, got {value!r}")
    if len(set(value)) != len(value):
        raise StudyError(f"{where} names an id twice: {value!r}")
    return list(value)


def _annotators(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return tuple(f"a{i + 1}" for i in range(value))
    if not value:
        raise StudyError(
            f"{where}: annotators must be a count or a list of ids (e.g. [ann1, ann2])"
        )
    return tuple(_names(value, f"{where}: annotators"))


def _methods(value: Any, path: Path, minimum: int) -> tuple[MethodRef, ...]:
    where = f"{path}: methods"
    if (
        not isinstance(value, list)
        or len(value) < minimum
        or not all(isinstance(v, str) for v in value)
    ):
        raise StudyError(f"{where} must list at least {minimum} evaluated report folder(s)")
    refs = []
    for entry in value:
        folder = path.parent / entry
        report_path = folder / "report.json"
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
            method, protocol = report["method"], report["protocol"]
            refs.append(
                MethodRef(
                    folder,
                    method["name"],
                    method.get("spec", method["name"]),
                    method["fingerprint"],
                    protocol["hash"],
                    protocol["canonical"],
                )  # fmt: skip
            )
        except FileNotFoundError:
            raise StudyError(
                f"{where}: {report_path} does not exist; run `groundbench evaluate`"
            ) from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise StudyError(
                f"{where}: {report_path} is not a groundbench report ({exc})"
            ) from None
    if len({r.protocol_hash for r in refs}) != 1:
        raise StudyError(f"{where}: the reports were evaluated under different protocols")
    names = [r.name for r in refs]
    if len(set(names)) != len(names):
        raise StudyError(f"{where}: a method is listed twice ({names})")
    return tuple(refs)
