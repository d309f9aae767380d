"""Per-sample tables of the leaderboard: a report's ``samples.csv`` read into :class:`Records`.

The leaderboard holds the same typed records as the evaluation that wrote them
(:mod:`groundbench.report.records`); this module only keeps the names it has always
exported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from groundbench.report.records import Records, parse_samples_csv


def SampleTable(  # noqa: N802 - the constructor name this module has always exported
    ids: Sequence[str],
    tags: Sequence[frozenset[str]],
    values: Mapping[str, np.ndarray],
    undefined: Mapping[str, Sequence[str]],
) -> Records:
    """Build :class:`Records` from per-metric columns (see :meth:`Records.from_columns`)."""
    return Records.from_columns(ids, tags, values, undefined)


__all__ = ["Records", "SampleTable", "parse_samples_csv"]
