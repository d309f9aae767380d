"""``Records``: the per-sample results of one evaluation, typed, in one place.

The record cache of ``groundbench evaluate``, the report writer (``samples.csv``, the
aggregates) and the leaderboard (which re-reads ``samples.csv``) all hold the same object:
sample ids, an ``(N, K)`` float64 value matrix (NaN where undefined), an ``(N, K)`` int8
matrix of :class:`~groundbench.types.Undefined` reason codes, the samples' tags and the
metrics' extra per-sample outputs. Reason labels exist only in files.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from groundbench.errors import DataFormatError
from groundbench.metrics.aggregate import Aggregate, aggregate_by_tag
from groundbench.types import Undefined

_LABEL_TO_CODE = {u.label: int(u) for u in Undefined if u}
#: ``samples.csv`` column prefix of the cluster id per sample (``cluster:image``), written
#: when the protocol's ``bootstrap.cluster`` is set, so the intervals can be recomputed.
CLUSTER_PREFIX = "cluster:"
_CODES = frozenset(int(u) for u in Undefined)


@dataclass(frozen=True, eq=False)
class Records:
    """Per-sample metric results.

    Attributes:
        keys: ``K`` metric display keys, in protocol order.
        ids: ``N`` sample ids.
        values: ``(N, K)`` float64, NaN where undefined.
        undefined: ``(N, K)`` int8 reason codes, 0 where defined.
        tags: ``N`` tag sets.
        extras: column name (``pointing[albef]:tie_count``) → ``(N,)`` float64, NaN where absent.

    Example:
        >>> r = Records(("m",), ("a", "b"), np.array([[0.5], [np.nan]]),
        ...             np.array([[0], [1]], np.int8), (frozenset(), frozenset({"x"})))
        >>> r.column("m")[0].tolist(), r.labels("m")
        ([0.5, nan], ('', 'empty_region'))
    """

    keys: tuple[str, ...]
    ids: tuple[str, ...]
    values: np.ndarray
    undefined: np.ndarray
    tags: tuple[frozenset[str], ...]
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, k = len(self.ids), len(self.keys)
        values = np.asarray(self.values, dtype=np.float64).reshape(n, k)
        codes = np.asarray(self.undefined, dtype=np.int8).reshape(n, k)
        if len(self.tags) != n:
            raise DataFormatError(f"Records: {len(self.tags)} tag sets for {n} ids")
        extras = {c: np.asarray(v, dtype=np.float64).reshape(n) for c, v in self.extras.items()}
        object.__setattr__(self, "keys", tuple(self.keys))
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "undefined", codes)
        object.__setattr__(self, "tags", tuple(frozenset(t) for t in self.tags))
        object.__setattr__(self, "extras", dict(sorted(extras.items())))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """Metric display keys, in column order."""
        return self.keys

    def column(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """``(values (N,) float64, codes (N,) int8)`` of metric ``key``."""
        j = self.keys.index(key)
        return self.values[:, j], self.undefined[:, j]

    def labels(self, key: str) -> tuple[str, ...]:
        """Reason labels of metric ``key`` (``""`` where defined), as ``samples.csv`` writes them."""
        return tuple(Undefined(int(c)).label if c else "" for c in self.column(key)[1])

    @classmethod
    def from_columns(
        cls,
        ids: Sequence[str],
        tags: Sequence[frozenset[str]],
        values: Mapping[str, np.ndarray],
        undefined: Mapping[str, Sequence[str]],
    ) -> Records:
        """Build from per-metric columns: ``values[key]`` (N,) and reason labels ``undefined[key]``."""
        keys = tuple(values)
        n = len(ids)
        vals = np.stack([np.asarray(values[k], np.float64) for k in keys], axis=1) if keys else None
        codes = np.array(
            [[_LABEL_TO_CODE.get(lab, 0) for lab in undefined[k]] for k in keys], np.int8
        ).T
        return cls(
            keys,
            tuple(ids),
            np.zeros((n, 0)) if vals is None else vals,
            codes.reshape(n, len(keys)),
            tuple(tags),
        )

    @classmethod
    def empty(cls, keys: Sequence[str]) -> Records:
        """No sample yet."""
        k = len(keys)
        return cls(tuple(keys), (), np.zeros((0, k)), np.zeros((0, k), np.int8), ())

    @classmethod
    def concat(cls, keys: Sequence[str], parts: Sequence[Records]) -> Records:
        """Stack ``parts`` (all with ``keys``) in order; extras missing in a part are NaN."""
        if not parts:
            return cls.empty(keys)
        for p in parts:
            if p.keys != tuple(keys):
                raise DataFormatError(f"Records.concat: keys {p.keys} differ from {tuple(keys)}")
        columns = sorted({c for p in parts for c in p.extras})
        extras = {
            c: np.concatenate([p.extras.get(c, np.full(len(p), np.nan)) for p in parts])
            for c in columns
        }
        return cls(
            tuple(keys),
            tuple(i for p in parts for i in p.ids),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.undefined for p in parts]),
            tuple(t for p in parts for t in p.tags),
            extras,
        )

    def take(self, rows: Sequence[int] | np.ndarray) -> Records:
        """The records at ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return Records(
            self.keys,
            tuple(self.ids[i] for i in rows),
            self.values[rows],
            self.undefined[rows],
            tuple(self.tags[i] for i in rows),
            {c: v[rows] for c, v in self.extras.items()},
        )

    def aggregate(
        self, *, resamples: int, seed: int, cluster: str | None = None
    ) -> dict[str, dict[str, Aggregate]]:
        """``{key: {"all": Aggregate, tag: Aggregate, ...}}``, tags sorted after ``all``.

        Args:
            resamples: bootstrap resamples.
            seed: bootstrap seed.
            cluster: what samples cluster by (``image``), read from the extra column
                ``cluster:<cluster>``; None for independent samples.

        Raises:
            DataFormatError: ``cluster`` is set but the records lack its column.
        """
        clusters = None
        if cluster is not None:
            column = CLUSTER_PREFIX + cluster
            if column not in self.extras:
                raise DataFormatError(
                    f"Records: no {column!r} column, which bootstrap.cluster: {cluster} needs; "
                    "re-run groundbench evaluate to write it"
                )
            clusters = self.extras[column]
        return {
            key: aggregate_by_tag(
                self.values[:, j],
                self.undefined[:, j],
                self.tags,
                clusters,
                resamples=resamples,
                seed=seed,
            )
            for j, key in enumerate(self.keys)
        }

    def with_extra(self, column: str, values: np.ndarray) -> Records:
        """A copy with the extra ``column`` (``(N,)`` float64) added or replaced."""
        return Records(
            self.keys,
            self.ids,
            self.values,
            self.undefined,
            self.tags,
            {**self.extras, column: np.asarray(values, np.float64)},
        )

    # ------------------------------------------------------------------ cache lines

    def to_json_lines(self) -> str:
        """One compact JSON line per record (the record cache's format), each ending in ``\\n``."""
        out = []
        for i, sid in enumerate(self.ids):
            rec = {
                "id": sid,
                "tags": sorted(self.tags[i]),
                "values": [None if math.isnan(v) else v for v in self.values[i].tolist()],
                "undefined": self.undefined[i].tolist(),
                "extras": {c: v[i].item() for c, v in self.extras.items() if not math.isnan(v[i])},
            }
            out.append(json.dumps(rec, sort_keys=True, separators=(",", ":"), allow_nan=False))
        return "".join(line + "\n" for line in out)

    @classmethod
    def from_json_lines(cls, keys: Sequence[str], lines: Sequence[str]) -> Records:
        """Parse lines written by :meth:`to_json_lines`.

        Raises:
            ValueError: a line is not a record of ``len(keys)`` metrics.
        """
        return cls.from_dicts(keys, [parse_record_line(line, len(keys)) for line in lines])

    @classmethod
    def from_dicts(cls, keys: Sequence[str], recs: Sequence[Mapping[str, Any]]) -> Records:
        """Build from records parsed by :func:`parse_record_line`."""
        k, n = len(keys), len(recs)
        columns = sorted({c for r in recs for c in r["extras"]})
        return cls(
            tuple(keys),
            tuple(r["id"] for r in recs),
            np.array(
                [[math.nan if x is None else x for x in r["values"]] for r in recs], np.float64
            ).reshape(n, k),
            np.array([r["undefined"] for r in recs], dtype=np.int8).reshape(n, k),
            tuple(frozenset(r["tags"]) for r in recs),
            {
                c: np.array([r["extras"].get(c, math.nan) for r in recs], np.float64)
                for c in columns
            },
        )

    # ------------------------------------------------------------------ samples.csv

    def to_csv(self) -> bytes:
        """``samples.csv``: id, tags, each metric, each metric's reason, then the extras.

        Floats are written with ``repr`` (round-trips float64 exactly); an undefined value
        is an empty cell.
        """
        header = ["id", "tags", *self.keys, *(f"{k}:undefined" for k in self.keys)]
        header += list(self.extras)
        labels = [self.labels(k) for k in self.keys]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for i, sid in enumerate(self.ids):
            row = [sid, ";".join(sorted(self.tags[i]))]
            row += ["" if math.isnan(v) else repr(v) for v in self.values[i].tolist()]
            row += [lab[i] for lab in labels]
            row += ["" if math.isnan(v[i]) else repr(float(v[i])) for v in self.extras.values()]
            w.writerow(row)
        return buf.getvalue().encode("utf-8")

    @classmethod
    def from_csv(cls, text: str, keys: Sequence[str], *, where: str) -> Records:
        """Parse a ``samples.csv`` (see :func:`parse_samples_csv`)."""
        return parse_samples_csv(text, keys, where=where)


def parse_record_line(line: str, n_metrics: int) -> dict[str, Any]:
    """Parse and check one record-cache line.

    Raises:
        ValueError: the line is not JSON or not a record of ``n_metrics`` metrics.
    """
    rec = json.loads(line)
    try:
        ok = (
            isinstance(rec["id"], str)
            and isinstance(rec["tags"], list)
            and len(rec["values"]) == len(rec["undefined"]) == n_metrics
            and all(x is None or isinstance(x, (int, float)) for x in rec["values"])
            and all(isinstance(c, int) and c in _CODES for c in rec["undefined"])
            and isinstance(rec["extras"], dict)
        )
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise ValueError(f"not a record of {n_metrics} metrics")
    return rec


def parse_samples_csv(text: str, metric_keys: Sequence[str], *, where: str) -> Records:
    """Parse the text of a ``samples.csv`` into :class:`Records`.

    Args:
        text: the whole file, decoded as UTF-8.
        metric_keys: the metric display keys the report promises.
        where: the file name used in error messages.

    Raises:
        DataFormatError: a required column is missing, ids are empty, duplicated or not
            sorted, a value is not a finite number, a reason is unknown, or a row is both
            defined and undefined.

    Example:
        >>> t = parse_samples_csv("id,tags,nss,nss:undefined\\na,x;y,0.5,\\nb,,,empty_region\\n",
        ...                       ["nss"], where="samples.csv")
        >>> t.ids, t.column("nss")[0].tolist(), t.labels("nss")
        (('a', 'b'), [0.5, nan], ('', 'empty_region'))
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    required = ["id", "tags"] + [c for k in metric_keys for c in (k, f"{k}:undefined")]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataFormatError(
            f"{where}: missing column(s) {missing}; the header is {header}. A report's "
            "samples.csv needs id, tags, and a value and ':undefined' column per metric key"
        )
    cluster_columns = [c for c in header if c.startswith(CLUSTER_PREFIX)]
    ids: list[str] = []
    tags: list[frozenset[str]] = []
    values: list[list[float]] = []
    codes: list[list[int]] = []
    clusters: list[list[float]] = []
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise DataFormatError(
                f"{where}, line {line}: the row does not have one cell per column"
            )
        ids.append(row["id"])
        tags.append(frozenset(t for t in row["tags"].split(";") if t))
        vals, reasons = [], []
        for key in metric_keys:
            cell, reason = row[key], row[f"{key}:undefined"]
            here = f"{where}, line {line}, column {key!r}"
            value = _parse_value(cell, here)
            if (reason == "") == math.isnan(value):
                raise DataFormatError(
                    f"{here}: value {cell!r} with undefined reason {reason!r}; a value must be "
                    "given exactly when no reason is"
                )
            if reason and reason not in _LABEL_TO_CODE:
                raise DataFormatError(
                    f"{here}: unknown undefined reason {reason!r}; valid reasons: "
                    f"{', '.join(_LABEL_TO_CODE)}"
                )
            vals.append(value)
            reasons.append(_LABEL_TO_CODE.get(reason, 0))
        values.append(vals)
        codes.append(reasons)
        clusters.append(
            [_parse_value(row[c], f"{where}, line {line}, column {c!r}") for c in cluster_columns]
        )
    _check_ids(ids, where)
    k = len(metric_keys)
    return Records(
        tuple(metric_keys),
        tuple(ids),
        np.array(values, dtype=np.float64).reshape(len(ids), k),
        np.array(codes, dtype=np.int8).reshape(len(ids), k),
        tuple(tags),
        {
            c: np.array([row[i] for row in clusters], dtype=np.float64).reshape(len(ids))
            for i, c in enumerate(cluster_columns)
        },
    )


def _parse_value(cell: str, where: str) -> float:
    if cell == "":
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        raise DataFormatError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise DataFormatError(
            f"{where}: {cell!r} is not finite; undefined values are an empty cell plus a reason"
        )
    return value


def _check_ids(ids: list[str], where: str) -> None:
    if any(not i for i in ids):
        raise DataFormatError(f"{where}: a row has an empty id")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))
        raise DataFormatError(f"{where}: sample id {dup!r} appears more than once")
    if ids != sorted(ids):
        raise DataFormatError(
            f"{where}: rows must be sorted by id, as groundbench evaluate writes them"
        )


#: How many sample ids ``dataset.size_mismatches`` of a report names.
SIZE_MISMATCH_EXAMPLES = 5


def size_mismatches(records: Records) -> dict[str, Any]:
    """``{"count", "examples"}`` of the samples left unscored as ``image_size_mismatch``.

    ``examples`` are the first of their ids in record order (that of ``samples.csv``).
    """
    hit = (records.undefined == int(Undefined.IMAGE_SIZE_MISMATCH)).any(axis=1)
    ids = [sid for sid, h in zip(records.ids, hit.tolist(), strict=True) if h]
    return {"count": len(ids), "examples": ids[:SIZE_MISMATCH_EXAMPLES]}


def aggregates_to_dict(aggs: Mapping[str, Mapping[str, Aggregate]]) -> dict[str, Any]:
    """JSON-ready ``{key: {tag: aggregate dict}}``, ``all`` first then tags sorted."""
    return {
        key: {
            t: a.to_dict()
            for t, a in sorted(by_tag.items(), key=lambda kv: (kv[0] != "all", kv[0]))
        }
        for key, by_tag in aggs.items()
    }
