"""Protocols: load a YAML file → resolve ``extends`` → apply overrides and presets → validate → hash.

A protocol names every setting that can change a number (docs/protocols.md). Loading:

1. parse with a safe YAML loader that rejects duplicate keys (the error names file and line);
2. merge a one-level ``extends:`` base (deep merge: mappings merge, anything else replaces);
3. apply ``--set a.b=VALUE`` overrides (values parsed as YAML; list items by index,
   ``metrics.1.iou=0.3``);
4. make variant presets explicit (``pointing`` variant ``mg`` → ``select.min_area_fraction:
   0.05`` and ``select.exclude_tags: [notvisual]``);
5. validate and fill every default (:mod:`groundbench.protocol_schema`);
6. hash: sha256 of the canonical JSON (sorted keys, compact separators, UTF-8,
   ``allow_nan=False``); ``about`` and the file name are not part of it, overrides are.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import yaml

from groundbench.errors import ProtocolError
from groundbench.protocol_schema import apply_presets, canonicalise

if TYPE_CHECKING:
    from groundbench.protocol_scorer import ProtocolScorer

_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class DatasetSpec:
    """Which data a protocol reads: adapter name, display name, split and adapter options.

    ``on_size_mismatch`` says what an image whose real size is not its record's does:
    ``refuse`` (stop the run) or ``undefined`` (the sample is left unscored).
    """

    adapter: str
    name: str
    split: str
    options: Mapping[str, Any]
    on_size_mismatch: str = "refuse"


@dataclass(frozen=True)
class SelectSpec:
    """Which samples a protocol keeps (applied by :func:`groundbench.probes.select_samples`).

    Attributes:
        include_tags: keep a sample only if it has **all** of these tags.
        exclude_tags: drop a sample that has **any** of these tags.
        min_area_fraction: when > 0, keep a sample only if its union box (clipped to the
            image) covers strictly more than this fraction of the image area.
    """

    include_tags: tuple[str, ...]
    exclude_tags: tuple[str, ...]
    min_area_fraction: float


@dataclass(frozen=True)
class BootstrapSpec:
    """Interval settings: resample count, seed, and what samples cluster by (None or ``image``)."""

    resamples: int
    seed: int
    cluster: str | None = None


@dataclass(frozen=True)
class Protocol:
    """A loaded, validated protocol (frozen; ``canonical`` and ``pipeline`` return copies).

    Attributes:
        name: the shipped name (``synth_test.albef``) or the file name without ``.yaml``.
        path: the YAML file it was read from.
        about: free text from the file (not hashed).
        hash: sha256 hex of the canonical JSON (:func:`protocol_hash`).
        dataset, select, resolution, region, metrics, bootstrap, control: the typed sections;
            ``resolution`` is ``"image"``, ``(height, width)`` pixels or ``{"max_side": N}``
            (read it through :meth:`evaluation_size`), ``metrics`` a tuple of
            ``{"name": ..., **params}`` dicts with every parameter filled in.
        overrides: the ``--set KEY=VALUE`` strings applied over the file, in order (their
            effect is in ``canonical`` and the hash; they are kept to title reports).
    """

    name: str
    path: str
    about: str
    hash: str
    dataset: DatasetSpec
    select: SelectSpec
    resolution: str | tuple[int, int] | Mapping[str, int]
    region: str
    metrics: tuple[Mapping[str, Any], ...]
    bootstrap: BootstrapSpec
    control: str | None
    _canonical: Mapping[str, Any] = field(repr=False)
    overrides: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """The short protocol id people see: the first 12 hex characters of the hash."""
        return self.hash[:12]

    @property
    def canonical(self) -> dict[str, Any]:
        """A copy of the canonical dict: every default filled, JSON-ready, ``about`` dropped."""
        return copy.deepcopy(dict(self._canonical))

    def evaluation_size(self, height: int, width: int) -> tuple[int, int]:
        """The ``(height, width)`` in pixels at which an image of ``height × width`` is scored.

        ``image``: its own size; ``[h, w]``: that size; ``{max_side: N}``: its own size when
        its longer side is at most ``N``, else scaled so that the longer side is ``N`` (the
        other rounded half up, at least 1).

        Example:
            >>> p = load_protocol("synth_test.albef", ["resolution={max_side: 1000}"])
            >>> p.evaluation_size(3000, 4000), p.evaluation_size(480, 640)
            ((750, 1000), (480, 640))
        """
        res = self.resolution
        if res == "image":
            return int(height), int(width)
        if isinstance(res, tuple):
            return int(res[0]), int(res[1])
        side, longest = int(res["max_side"]), max(int(height), int(width))
        if longest <= side:
            return int(height), int(width)
        # round half up in integers: floor(x * side / longest + 1/2)
        return tuple(
            max(1, (2 * int(v) * side + longest) // (2 * longest)) for v in (height, width)
        )

    def scorer(self, device: str | Any = "cpu", proposals: Any = None) -> ProtocolScorer:
        """A one-call scorer of raw maps under this protocol (:mod:`groundbench.protocol_scorer`).

        A region-ranking protocol also needs its candidate boxes (``proposals``, as
        :func:`dataset_adapters.proposals.read_proposals` returns them).

        Example:
            >>> scorer = load_protocol("synth_test.albef").scorer("cpu")
            >>> scorer.keys[0]
            'pointing[albef]'
        """
        from groundbench.protocol_scorer import ProtocolScorer

        return ProtocolScorer(self, device, proposals)

    @property
    def proposals(self) -> str | dict[str, str] | None:
        """The candidate boxes region ranking scores: ``"gt"``, ``{"file": NAME}`` or None."""
        return copy.deepcopy(self._canonical.get("proposals"))

    @property
    def split_metrics(self) -> dict[str, Any] | None:
        """Split-level metrics (``{"maxboxacc": {"calibration_split", "deltas"}}``), or None."""
        return copy.deepcopy(self._canonical.get("split_metrics"))

    @property
    def pipeline(self) -> dict[str, Any]:
        """A copy of the canonical post-processing config (for ``Pipeline.from_config``)."""
        return copy.deepcopy(self._canonical["pipeline"])


def protocol_hash(canonical: Mapping[str, Any]) -> str:
    """Return the sha256 hex digest of the canonical JSON of ``canonical``.

    Raises:
        ProtocolError: a value JSON cannot represent exactly (NaN, Inf, a non-string key).

    Example:
        >>> protocol_hash({"b": 1, "a": [1.0]}) == protocol_hash({"a": [1.0], "b": 1})
        True
    """
    try:
        blob = json.dumps(
            canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"protocol cannot be hashed as canonical JSON: {exc}") from exc
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise ProtocolError(
                    f"{self.name}:{line}: key {key!r} is not a string; protocol keys are words"
                )
            if key in seen:
                raise ProtocolError(
                    f"{self.name}:{line}: duplicate key {key!r} (first at line {seen[key]}); "
                    "remove one of them"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> Any:
    """Parse ``text`` (from ``source``, for messages) with the duplicate-refusing safe loader."""
    loader = _UniqueKeyLoader(text)
    loader.name = source
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ProtocolError(f"{source}: not valid protocol YAML: {exc}") from exc
    finally:
        loader.dispose()


def _read_mapping(path: Any, source: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ProtocolError(f"{source}: no such protocol file") from exc
    data = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise ProtocolError(f"{source}: a protocol is a YAML mapping of sections, got {data!r}")
    return data


def _deep_merge(base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve_extends(data: dict[str, Any], folder: Any, source: str) -> dict[str, Any]:
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.endswith(_SUFFIXES) or "/" in parent:
        raise ProtocolError(
            f"{source}: extends must name a YAML file in the same folder, e.g. "
            f"_base_synth.yaml, got {parent!r}"
        )
    base_source = f"{source} -> extends {parent}"
    base = _read_mapping(folder.joinpath(parent), base_source)
    if "extends" in base:
        raise ProtocolError(
            f"{base_source}: a base protocol cannot extend another (one level only); "
            "merge the two bases into one file"
        )
    return _deep_merge(base, data)


# --------------------------------------------------------------------------- overrides


def _apply_override(data: dict[str, Any], override: str, source: str) -> None:
    path, sep, text = override.partition("=")
    keys = path.strip().split(".")
    if not sep or not all(keys):
        raise ProtocolError(
            f"{source}: override {override!r} is not KEY.PATH=VALUE, e.g. pipeline.smooth.sigma_px=4"
        )
    value = parse_yaml(text, f"override {override!r}")
    node: Any = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ProtocolError(
                    f"{source}: override {override!r}: {'.'.join(keys[:depth])} is a list of "
                    f"{len(node)} items; use an index 0..{len(node) - 1} at {where}"
                )
            key = int(key)
        elif not isinstance(node, dict):
            raise ProtocolError(
                f"{source}: override {override!r}: {'.'.join(keys[:depth])} is {node!r}, not a "
                "mapping, so it has no key " + repr(key)
            )
        if last:
            node[key] = value
        else:
            if isinstance(node, dict) and node.get(key) is None:  # absent or null: a new section
                node[key] = {}
            node = node[key]


# --------------------------------------------------------------------------- loading


def _shipped_folder() -> Any:
    """The shipped protocols: package data of an installed wheel, else the source tree's folder."""
    try:
        return resources.files("groundbench.shipped_protocols")
    except ModuleNotFoundError:  # source checkout or editable install: protocols/ at the top
        return Path(__file__).resolve().parents[1] / "protocols"


def list_protocols() -> list[str]:
    """Return the names of the shipped protocols, sorted (files starting with ``_`` are bases).

    Example:
        >>> "synth_test.albef" in list_protocols()
        True
    """
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in _shipped_folder().iterdir()
        if entry.name.endswith(".yaml") and not entry.name.startswith("_")
    )


def _locate(name_or_path: str) -> tuple[str, Any, Any]:
    """Return (name, file, folder) for a shipped name or a YAML path."""
    as_path = Path(name_or_path)
    if name_or_path.endswith(_SUFFIXES) or as_path.is_file():
        name = as_path.name
        for suffix in _SUFFIXES:
            name = name.removesuffix(suffix)
        return name, as_path, as_path.parent
    names = list_protocols()
    if name_or_path not in names:
        close = difflib.get_close_matches(name_or_path, names, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ProtocolError(
            f"unknown protocol {name_or_path!r}{hint} Give a shipped name "
            "(groundbench protocols list) or a path to a .yaml file."
        )
    folder = _shipped_folder()
    return name_or_path, folder.joinpath(f"{name_or_path}.yaml"), folder


def load_protocol(name_or_path: str, overrides: Sequence[str] = ()) -> Protocol:
    """Load, validate and hash a protocol.

    Args:
        name_or_path: a shipped name (``synth_test.albef``) or a path to a YAML file.
        overrides: ``KEY.PATH=VALUE`` strings (values parsed as YAML) applied before
            validation, in order; they are part of the hash.

    Returns:
        The frozen :class:`Protocol`.

    Raises:
        ProtocolError: unknown protocol, bad YAML or duplicate key (file and line), unknown
            or operational key (file, key path, closest valid key), bad value or override.

    Example:
        >>> p = load_protocol("synth_test.albef", ["pipeline.smooth.sigma_px=4"])
        >>> p.canonical["pipeline"]["smooth"], len(p.id)
        ({'sigma_px': 4.0}, 12)
    """
    name, path, folder = _locate(str(name_or_path))
    source = str(path)
    data = _resolve_extends(_read_mapping(path, source), folder, source)
    about = data.get("about", "")
    if not isinstance(about, str):
        raise ProtocolError(f"{source}: about must be free text, got {about!r}")
    where = source
    for override in overrides:
        _apply_override(data, override, source)
    if overrides:
        where = f"{source} (with --set {' --set '.join(overrides)})"
    canonical = canonicalise(where, apply_presets(data))
    return _build(name, source, about.strip(), canonical, tuple(overrides))


def _build(
    name: str, path: str, about: str, canonical: dict[str, Any], overrides: tuple[str, ...] = ()
) -> Protocol:
    ds, sel, boot = canonical["dataset"], canonical["select"], canonical["bootstrap"]
    res = canonical["resolution"]
    return Protocol(
        name=name,
        path=path,
        about=about,
        hash=protocol_hash(canonical),
        dataset=DatasetSpec(
            ds["adapter"],
            ds["name"],
            ds["split"],
            copy.deepcopy(ds["options"]),
            ds.get("on_size_mismatch", "refuse"),
        ),
        select=SelectSpec(
            tuple(sel["include_tags"]), tuple(sel["exclude_tags"]), sel["min_area_fraction"]
        ),
        resolution=(
            res
            if res == "image"
            else MappingProxyType(dict(res))
            if isinstance(res, dict)
            else (res[0], res[1])
        ),
        region=canonical["region"],
        metrics=tuple(dict(m) for m in canonical["metrics"]),
        bootstrap=BootstrapSpec(boot["resamples"], boot["seed"], boot["cluster"]),
        control=canonical["control"],
        _canonical=copy.deepcopy(canonical),
        overrides=overrides,
    )


def protocol_from_mapping(data: Mapping[str, Any], *, name: str = "inline") -> Protocol:
    """Build a protocol from an in-memory mapping (no ``extends``); for tests and notebooks.

    Example:
        >>> p = protocol_from_mapping({"schema": 1, "dataset": {"adapter": "native",
        ...     "split": "test"}, "metrics": [{"name": "soft_iou"}]})
        >>> p.dataset.name, p.canonical["select"]["min_area_fraction"]
        ('native', 0.0)
    """
    raw = copy.deepcopy(dict(data))
    if "extends" in raw:
        raise ProtocolError(f"{name}: extends is only resolved for protocol files; merge it first")
    about = raw.get("about", "")
    canonical = canonicalise(name, apply_presets(raw))
    return _build(name, name, str(about).strip(), canonical)


__all__ = [
    "BootstrapSpec",
    "DatasetSpec",
    "Protocol",
    "SelectSpec",
    "list_protocols",
    "load_protocol",
    "parse_yaml",
    "protocol_from_mapping",
    "protocol_hash",
]
