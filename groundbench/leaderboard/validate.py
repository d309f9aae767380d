"""Check a report directory before it may join the leaderboard.

A report is accepted only when everything that makes its numbers comparable holds:

- ``report.json`` follows schema 1 (every section and field the board reads);
- the protocol hash recomputed from ``protocol.canonical`` equals ``protocol.hash`` and its
  first 12 hex characters equal ``protocol.id`` (an edited protocol fails here);
- the protocol's dataset section names the report's dataset, and its metrics give exactly
  the report's metric display keys;
- ``samples.csv`` exists, its sha256 equals ``samples.sha256``, it has ``samples.n`` =
  ``dataset.n_samples`` rows, one per sample id (a truncated or altered file fails here);
- every published number is recomputed from ``samples.csv``: for every metric and for
  ``all`` and every tag, ``mean``, ``ci_low``/``ci_high`` (bootstrap with the protocol's
  ``resamples`` and ``seed``), ``n``, ``n_defined`` and the undefined counts (an edited
  aggregate fails here);
- samples left unscored because their image's size is not their record's
  (``image_size_mismatch``) appear only under ``dataset.on_size_mismatch: undefined``, and
  ``dataset.size_mismatches`` counts and names them as ``samples.csv`` does.
- a protocol with ``split_metrics`` has them in ``report.json`` and they are recomputed from
  the file they name (``maxboxacc_hits.csv``: every sample's hits over the threshold sweep,
  its sha256 in the report, its evaluated ids exactly ``samples.csv``'s): the calibrated
  MaxBoxAccV2, its chosen thresholds and the uncalibrated maximum.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundbench.errors import DataFormatError, GroundbenchError, ProtocolError
from groundbench.metrics import display_key
from groundbench.metrics.maxboxacc import PXAP_EDGES, THRESHOLDS
from groundbench.protocol import protocol_hash
from groundbench.protocol_schema import MAX_RESAMPLES
from groundbench.report.records import (
    Records,
    aggregates_to_dict,
    parse_samples_csv,
    size_mismatches,
)
from groundbench.report.split_metrics import (
    CALIBRATION,
    EVALUATED,
    maxboxacc_numbers,
    parse_hits_csv,
    parse_pxap_csv,
    pxap_numbers,
)
from groundbench.types import SUPERVISION_CLASSES, UNDECLARED

REPORT_SCHEMA = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_AGGREGATE_FIELDS = ("mean", "ci_low", "ci_high", "n", "n_defined", "undefined")


class SubmissionError(GroundbenchError):
    """A report cannot join the leaderboard (invalid, edited, incomplete or a duplicate)."""


@dataclass(frozen=True)
class Submission:
    """A validated report: its ``report.json`` content and its per-sample table.

    Attributes:
        report: the parsed ``report.json``.
        samples_csv: the exact bytes of ``samples.csv`` (their sha256 is ``report.samples.sha256``).
        table: the parsed per-sample values.
        split_files: the files of the split-level metrics, by name (``maxboxacc_hits.csv``).
    """

    report: Mapping[str, Any]
    samples_csv: bytes
    table: Records
    split_files: Mapping[str, bytes] = dataclasses.field(default_factory=dict)


def protocol_metric_keys(canonical: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """Return the display keys of a canonical protocol's metrics, in protocol order.

    The first key is the protocol's primary metric: it ranks the board.

    Raises:
        SubmissionError: ``metrics`` is missing or names an unknown metric or parameter.

    Example:
        >>> protocol_metric_keys({"metrics": [{"name": "pointing", "variant": "albef"},
        ...                                   {"name": "soft_iou"}]}, "report.json")
        ('pointing[albef]', 'soft_iou')
    """
    metrics = canonical.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise SubmissionError(f"{where}: protocol.canonical.metrics must be a non-empty list")
    keys = []
    for i, spec in enumerate(metrics):
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise SubmissionError(f"{where}: protocol.canonical.metrics[{i}] needs a 'name'")
        params = {k: v for k, v in spec.items() if k != "name"}
        try:
            keys.append(display_key(spec["name"], params))
        except GroundbenchError as exc:
            raise SubmissionError(f"{where}: protocol.canonical.metrics[{i}]: {exc}") from None
    return tuple(keys)


def validate_report_dir(report_dir: str | Path) -> Submission:
    """Validate a report directory written by ``groundbench evaluate``.

    Args:
        report_dir: the directory holding ``report.json`` and ``samples.csv``.

    Returns:
        The validated :class:`Submission`.

    Raises:
        SubmissionError: the report breaks one of the rules in this module's docstring;
            the message names the file, the field and how to fix it.
    """
    report_dir = Path(report_dir)
    report_path = report_dir / "report.json"
    if not report_path.is_file():
        raise SubmissionError(
            f"{report_dir}: no report.json; pass the directory that `groundbench evaluate --out` wrote"
        )
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SubmissionError(f"{report_path}: not valid JSON ({exc})") from None
    check_report_schema(report, str(report_path))
    check_protocol_hash(report, str(report_path))
    samples_path = report_dir / report["samples"]["file"]
    if not samples_path.is_file():
        raise SubmissionError(
            f"{samples_path}: missing; a report needs its per-sample file (report.json names "
            f"samples.file = {report['samples']['file']!r})"
        )
    data = samples_path.read_bytes()
    submission = check_samples(report, data, str(samples_path))
    files = {}
    for section in (report.get("split_metrics") or {}).values():
        name = section.get("file") if isinstance(section, Mapping) else None
        if isinstance(name, str) and Path(name).name == name and (report_dir / name).is_file():
            files[name] = (report_dir / name).read_bytes()
    check_split_metrics(report, files, submission.table, str(report_path))
    return dataclasses.replace(submission, split_files=files)


def check_split_metrics(
    report: Mapping[str, Any], files: Mapping[str, bytes], table: Records, where: str
) -> None:
    """Recompute ``report``'s split-level metrics from their files; refuse any that differs.

    Raises:
        SubmissionError: the protocol's ``split_metrics`` and the report's disagree, the hits
            file is missing or altered, its evaluated ids are not ``samples.csv``'s, or a
            number differs from what the file gives.
    """
    cfg = report["protocol"]["canonical"].get("split_metrics")
    given = report.get("split_metrics")
    if not cfg and not given:
        return
    if not cfg or not isinstance(given, Mapping) or sorted(given) != sorted(cfg):
        raise SubmissionError(
            f"{where}: split_metrics has {sorted(given or {})} but the protocol's split_metrics "
            f"name {sorted(cfg or {})}; re-run groundbench evaluate"
        )
    if "pxap" in cfg:
        _check_pxap(given["pxap"], files, table, where)
    if "maxboxacc" in cfg:
        _check_maxboxacc(given["maxboxacc"], cfg["maxboxacc"], files, table, where)


def _split_file(section: Any, metric: str, files: Mapping[str, bytes], where: str) -> bytes:
    """The bytes of the file a split-level section names, checked against its sha256."""
    if not isinstance(section, Mapping) or not isinstance(section.get("file"), str):
        raise SubmissionError(f"{where}: split_metrics.{metric} must name its file")
    name = section["file"]
    if name not in files:
        raise SubmissionError(
            f"{where}: split_metrics.{metric}.file {name!r} is missing beside report.json; "
            f"a report with {metric} needs its file"
        )
    data = files[name]
    if hashlib.sha256(data).hexdigest() != section.get("sha256"):
        raise SubmissionError(
            f"{where}: {name} does not match split_metrics.{metric}.sha256; the file was "
            "changed after the run"
        )
    return data


def _check_pxap(section: Any, files: Mapping[str, bytes], table: Records, where: str) -> None:
    data = _split_file(section, "pxap", files, where)
    name = section["file"]
    if section.get("edges") != list(PXAP_EDGES):
        raise SubmissionError(f"{where}: split_metrics.pxap.edges differ from {list(PXAP_EDGES)}")
    try:
        ids, pos, neg = parse_pxap_csv(data.decode("utf-8"), len(PXAP_EDGES) - 1, where=name)
    except (DataFormatError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{where}: {exc}") from None
    if tuple(sorted(ids)) != tuple(sorted(table.ids)):
        raise SubmissionError(
            f"{where}: {name} has {len(ids)} samples whose ids are not samples.csv's "
            f"{len(table)}; the two files come from different runs"
        )
    for key, value in pxap_numbers(pos, neg).items():
        if not _same_tree(section.get(key), value):
            raise SubmissionError(
                f"{where}: split_metrics.pxap.{key} is {section.get(key)!r} but {name} gives "
                f"{value!r}; the report was changed after the run: re-run groundbench evaluate"
            )


def _check_maxboxacc(
    section: Any,
    settings: Mapping[str, Any],
    files: Mapping[str, bytes],
    table: Records,
    where: str,
) -> None:
    data = _split_file(section, "maxboxacc", files, where)
    name = section["file"]
    deltas = settings["deltas"]
    if section.get("thresholds") != list(THRESHOLDS) or section.get("deltas") != deltas:
        raise SubmissionError(
            f"{where}: split_metrics.maxboxacc thresholds/deltas differ from the protocol's "
            f"sweep (0, 0.01, ..., 0.99; deltas {deltas})"
        )
    try:
        parts = parse_hits_csv(data.decode("utf-8"), deltas, len(THRESHOLDS), where=name)
    except (DataFormatError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{where}: {exc}") from None
    ids, hits = parts.get(EVALUATED, ((), None))
    if tuple(sorted(ids)) != tuple(sorted(table.ids)):
        raise SubmissionError(
            f"{where}: {name} has {len(ids)} evaluated samples whose ids are not samples.csv's "
            f"{len(table)}; the two files come from different runs"
        )
    cal_split = settings["calibration_split"]
    calibration = section.get("calibration")
    if (cal_split is None) != (CALIBRATION not in parts) or (
        cal_split is not None
        and (not isinstance(calibration, Mapping) or calibration.get("split") != cal_split)
    ):
        raise SubmissionError(
            f"{where}: split_metrics.maxboxacc: the protocol calibrates on {cal_split!r} but "
            f"the report's calibration is {calibration!r} with "
            f"{'' if CALIBRATION in parts else 'no '}calibration rows in {name}"
        )
    cal_hits = parts[CALIBRATION][1] if CALIBRATION in parts else None
    expected = maxboxacc_numbers(hits, cal_hits, deltas, THRESHOLDS)
    for key, value in expected.items():
        if not _same_tree(section.get(key), value):
            raise SubmissionError(
                f"{where}: split_metrics.maxboxacc.{key} is {section.get(key)!r} but {name} "
                f"gives {value!r}; the report was changed after the run: re-run groundbench "
                "evaluate"
            )


def _same_tree(given: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        return (
            isinstance(given, Mapping)
            and sorted(given) == sorted(expected)
            and all(_same_tree(given[k], expected[k]) for k in expected)
        )
    return _same(given, expected)


def check_report_schema(report: Any, where: str) -> None:
    """Raise :class:`SubmissionError` unless ``report`` has every schema-1 field the board reads."""
    _field(report, "", dict, where)
    if report.get("schema") != REPORT_SCHEMA:
        raise SubmissionError(
            f"{where}: schema is {report.get('schema')!r}; this groundbench reads report schema "
            f"{REPORT_SCHEMA}; re-run `groundbench evaluate` to write a current report"
        )
    for key in ("name", "id", "hash"):
        _field(report, f"protocol.{key}", str, where)
    _field(report, "protocol.canonical", dict, where)
    for key in ("adapter", "name", "split", "fingerprint"):
        _field(report, f"dataset.{key}", str, where)
    _field(report, "dataset.n_samples", int, where)
    for key in ("spec", "name", "fingerprint", "supervision"):
        _field(report, f"method.{key}", str, where)
    _field(report, "samples.file", str, where)
    _field(report, "samples.n", int, where)
    _field(report, "samples.sha256", str, where)
    _field(report, "environment", dict, where)
    for path in ("protocol.hash", "dataset.fingerprint", "samples.sha256"):
        if not _HEX64.fullmatch(_get(report, path)):
            raise SubmissionError(f"{where}: {path} must be 64 lowercase hex characters")
    name = report["samples"]["file"]
    if not name or Path(name).name != name or name in (".", ".."):
        raise SubmissionError(
            f"{where}: samples.file must be a file name inside the report directory, got {name!r}"
        )
    if report["method"]["supervision"] not in (*SUPERVISION_CLASSES, UNDECLARED):
        raise SubmissionError(
            f"{where}: method.supervision is {report['method']['supervision']!r}; "
            f"expected one of {[*SUPERVISION_CLASSES, UNDECLARED]}"
        )
    metrics = _field(report, "metrics", dict, where)
    if not metrics:
        raise SubmissionError(f"{where}: metrics is empty; a report needs at least one metric")
    for key in metrics:
        _field(metrics[key], "", dict, f"{where}: metrics.{key}")
        for tag, agg in metrics[key].items():
            _field(agg, "", dict, f"{where}: metrics.{key}.{tag}")
            for name in _AGGREGATE_FIELDS:
                kind = dict if name == "undefined" else (int if name.startswith("n") else float)
                _field(agg, name, kind, f"{where}: metrics.{key}.{tag}")
        if "all" not in metrics[key]:
            raise SubmissionError(f"{where}: metrics.{key} has no 'all' aggregate")


def check_protocol_hash(report: Mapping[str, Any], where: str) -> None:
    """Raise :class:`SubmissionError` unless the protocol (hash, id, dataset, metrics) matches."""
    protocol = report["protocol"]
    try:
        recomputed = protocol_hash(protocol["canonical"])
    except ProtocolError as exc:
        raise SubmissionError(f"{where}: protocol.canonical: {exc}") from None
    if recomputed != protocol["hash"]:
        raise SubmissionError(
            f"{where}: protocol.hash {protocol['hash'][:12]}… does not match its canonical "
            f"settings (they hash to {recomputed[:12]}…): the protocol was edited after the run; "
            "re-run `groundbench evaluate` with the protocol you mean to submit"
        )
    if protocol["id"] != protocol["hash"][:12]:
        raise SubmissionError(
            f"{where}: protocol.id {protocol['id']!r} is not the first 12 characters of "
            f"protocol.hash ({protocol['hash'][:12]!r})"
        )
    keys = protocol_metric_keys(protocol["canonical"], where)
    if sorted(keys) != sorted(report["metrics"]):
        raise SubmissionError(
            f"{where}: metrics has keys {sorted(report['metrics'])} but the protocol's metrics "
            f"give {sorted(keys)}; the report does not belong to its protocol"
        )
    section = protocol["canonical"].get("dataset")
    if isinstance(section, Mapping):
        for key in ("adapter", "name", "split"):
            if key in section and section[key] != report["dataset"][key]:
                raise SubmissionError(
                    f"{where}: dataset.{key} is {report['dataset'][key]!r} but the protocol "
                    f"names {section[key]!r}"
                )


def check_samples(report: Mapping[str, Any], data: bytes, where: str) -> Submission:
    """Check ``samples.csv`` bytes against ``report`` and return the :class:`Submission`.

    Raises:
        SubmissionError: sha mismatch, wrong row count, or aggregates that disagree with
            the per-sample values.
    """
    digest = hashlib.sha256(data).hexdigest()
    if digest != report["samples"]["sha256"]:
        raise SubmissionError(
            f"{where}: sha256 is {digest[:12]}… but report.json records "
            f"{report['samples']['sha256'][:12]}…; the file was changed or truncated after the run"
        )
    keys = list(protocol_metric_keys(report["protocol"]["canonical"], where))
    try:
        table = parse_samples_csv(data.decode("utf-8"), keys, where=where)
    except (DataFormatError, UnicodeDecodeError) as exc:
        raise SubmissionError(str(exc)) from None
    expected = {
        "samples.n": report["samples"]["n"],
        "dataset.n_samples": report["dataset"]["n_samples"],
    }
    for field, n in expected.items():
        if len(table) != n:
            raise SubmissionError(
                f"{where}: {len(table)} rows but report.json {field} is {n}; "
                "the per-sample file is incomplete"
            )
    check_aggregates(report, table, where)
    check_size_mismatches(report, table, where)
    return Submission(report=report, samples_csv=data, table=table)


def check_size_mismatches(report: Mapping[str, Any], table: Records, where: str) -> None:
    """Raise :class:`SubmissionError` unless unscored resized images are as the protocol allows.

    Under ``dataset.on_size_mismatch: undefined`` the report's ``dataset.size_mismatches``
    must equal what ``samples.csv`` gives; otherwise no sample may be ``image_size_mismatch``
    (such an image stops the run).
    """
    section = report["protocol"]["canonical"].get("dataset")
    rule = section.get("on_size_mismatch", "refuse") if isinstance(section, Mapping) else None
    found = size_mismatches(table)
    given = report["dataset"].get("size_mismatches")
    if rule == "undefined":
        if given != found:
            raise SubmissionError(
                f"{where}: report.json dataset.size_mismatches is {given!r} but the samples "
                f"give {found!r}; the report was edited after the run"
            )
        return
    if found["count"]:
        raise SubmissionError(
            f"{where}: {found['count']} samples are undefined as image_size_mismatch, but the "
            "protocol refuses such images (dataset.on_size_mismatch: refuse); the report was "
            "edited after the run"
        )
    if given is not None:
        raise SubmissionError(
            f"{where}: report.json has dataset.size_mismatches, but the protocol refuses "
            "resized images (dataset.on_size_mismatch: refuse), so none is left unscored; the "
            "report was edited after the run"
        )


def bootstrap_settings(report: Mapping[str, Any], where: str) -> tuple[int, int]:
    """``(resamples, seed)`` of the report's protocol, checked like a protocol file's."""
    boot = report["protocol"]["canonical"].get("bootstrap")
    ok = isinstance(boot, Mapping) and all(
        isinstance(boot.get(k), int) and not isinstance(boot.get(k), bool)
        for k in ("resamples", "seed")
    )
    if not ok or not (1 <= boot["resamples"] <= MAX_RESAMPLES and boot["seed"] >= 0):
        raise SubmissionError(
            f"{where}: protocol.canonical.bootstrap must hold an integer resamples in "
            f"[1, {MAX_RESAMPLES}] and an integer seed >= 0, got {boot!r}"
        )
    return boot["resamples"], boot["seed"]


def check_aggregates(report: Mapping[str, Any], table: Records, where: str) -> None:
    """Recompute every aggregate of ``report`` from ``table``; refuse any that differs.

    Means, intervals (with the protocol's bootstrap settings), ``n``, ``n_defined`` and
    undefined counts, for ``all`` and every tag: a published number that the per-sample
    file does not give is refused.
    """
    resamples, seed = bootstrap_settings(report, where)
    cluster = report["protocol"]["canonical"]["bootstrap"].get("cluster")
    try:
        aggregates = table.aggregate(resamples=resamples, seed=seed, cluster=cluster)
    except DataFormatError as exc:
        raise SubmissionError(f"{where}: {exc}") from None
    expected = aggregates_to_dict(aggregates)
    for key, by_tag in expected.items():
        given = report["metrics"][key]
        if sorted(given) != sorted(by_tag):
            raise SubmissionError(
                f"{where}: report.json metrics.{key} has tags {sorted(given)} but samples.csv "
                f"gives {sorted(by_tag)}; the report and its per-sample file disagree"
            )
        for tag, agg in by_tag.items():
            for name, value in agg.items():
                if name not in given[tag]:
                    raise SubmissionError(
                        f"{where}: report.json metrics.{key}.{tag} has no {name!r}; the report "
                        "was written by an older groundbench: re-run groundbench evaluate"
                    )
                if not _same(given[tag][name], value):
                    raise SubmissionError(
                        f"{where}: report.json metrics.{key}.{tag}.{name} is "
                        f"{given[tag][name]!r} but samples.csv gives {value!r} (bootstrap "
                        f"{resamples} resamples, seed {seed}); the report was changed after "
                        "the run: re-run groundbench evaluate"
                    )


def _same(given: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(given, (int, float)):
        return not isinstance(given, bool) and math.isclose(
            given, expected, rel_tol=1e-9, abs_tol=1e-12
        )
    return type(given) is type(expected) and given == expected


def _get(obj: Any, path: str) -> Any:
    for part in path.split(".") if path else ():
        obj = obj[part]
    return obj


def _field(obj: Any, path: str, kind: type, where: str) -> Any:
    """Return ``obj`` at dotted ``path`` if present and of ``kind`` (float allows int and null)."""
    node = obj
    for part in path.split(".") if path else ():
        if not isinstance(node, dict) or part not in node:
            raise SubmissionError(
                f"{where}: missing field {path!r} (report schema {REPORT_SCHEMA})"
            )
        node = node[part]
    if kind is float:
        ok = node is None or (isinstance(node, (int, float)) and not isinstance(node, bool))
    else:
        ok = isinstance(node, kind) and not (kind is int and isinstance(node, bool))
    if not ok:
        name = "number or null" if kind is float else kind.__name__
        shown = path or "the top level"
        raise SubmissionError(f"{where}: {shown} must be a {name}, got {type(node).__name__}")
    return node
