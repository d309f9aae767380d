"""Per-sample tables: the ``samples.csv`` of a report, parsed into float64 columns.

A report's ``samples.csv`` has one row per sample, sorted by id, with the columns ``id``,
``tags`` (``;``-joined, sorted), then for every metric display key ``K`` a value column
``K`` (empty when undefined) and a reason column ``K:undefined`` (empty when defined).
Further columns (``pointing[albef]:tie_count``) may follow; they are kept as text.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from groundbench.errors import DataFormatError


@dataclass(frozen=True)
class SampleTable:
    """Per-sample metric values of one report.

    Attributes:
        ids: sample ids, sorted, unique.
        tags: the tags of each sample, aligned with ``ids``.
        values: metric display key → ``(N,)`` float64 values, NaN where undefined.
        undefined: metric display key → ``(N,)`` reason labels (``""`` where defined).
    """

    ids: tuple[str, ...]
    tags: tuple[frozenset[str], ...]
    values: Mapping[str, np.ndarray]
    undefined: Mapping[str, tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """Metric display keys, in column order."""
        return tuple(self.values)


def parse_samples_csv(text: str, metric_keys: Sequence[str], *, where: str) -> SampleTable:
    """Parse the text of a ``samples.csv`` into a :class:`SampleTable`.

    Args:
        text: the whole file, decoded as UTF-8.
        metric_keys: the metric display keys the report promises (``report.json`` ``metrics``).
        where: the file name used in error messages.

    Returns:
        The table with one float64 column per metric key.

    Raises:
        DataFormatError: a required column is missing, ids are empty, duplicated or not
            sorted, a value is not a number, or a row is both defined and undefined.

    Example:
        >>> t = parse_samples_csv("id,tags,nss,nss:undefined\\na,x;y,0.5,\\nb,,,empty_region\\n",
        ...                       ["nss"], where="samples.csv")
        >>> t.ids, t.values["nss"].tolist(), t.undefined["nss"]
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
    ids: list[str] = []
    tags: list[frozenset[str]] = []
    values: dict[str, list[float]] = {k: [] for k in metric_keys}
    undefined: dict[str, list[str]] = {k: [] for k in metric_keys}
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise DataFormatError(
                f"{where}, line {line}: the row does not have one cell per column"
            )
        ids.append(row["id"])
        tags.append(frozenset(t for t in row["tags"].split(";") if t))
        for key in metric_keys:
            cell, reason = row[key], row[f"{key}:undefined"]
            value = _parse_value(cell, f"{where}, line {line}, column {key!r}")
            if (reason == "") == math.isnan(value):
                raise DataFormatError(
                    f"{where}, line {line}, column {key!r}: value {cell!r} with undefined reason "
                    f"{reason!r}; a value must be given exactly when no reason is"
                )
            values[key].append(value)
            undefined[key].append(reason)
    _check_ids(ids, where)
    return SampleTable(
        ids=tuple(ids),
        tags=tuple(tags),
        values={k: np.asarray(v, dtype=np.float64) for k, v in values.items()},
        undefined={k: tuple(v) for k, v in undefined.items()},
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
