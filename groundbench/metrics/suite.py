"""``MetricSuite``: the one owner of metric specs, and the per-sample collector over batches.

A spec is ``{"name": ..., **params}``. The suite checks it once against the metric's
declared parameters (:mod:`groundbench.metrics.params`: registered name, known parameters,
types coerced, values in range, no two specs with one display key), keeps its column key
and computes every metric of a batch at once, sharing the rank statistics between ``auc`` and ``spearman``. Its state is the
per-sample values, so means, undefined counts and intervals all come from
:mod:`groundbench.metrics.aggregate`; the suite holds no metric logic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from groundbench.errors import DataFormatError, GroundbenchError, ProtocolError
from groundbench.metrics import METRICS, declaration, feed_metric, shared_ranks
from groundbench.metrics.aggregate import Aggregate, aggregate_by_tag
from groundbench.types import HeatmapBatch


@dataclass(frozen=True)
class MetricSpec:
    """One checked metric spec: its name, every parameter filled in, and its display key."""

    name: str
    params: Mapping[str, Any]
    key: str

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., **params}`` as a protocol's canonical form writes it."""
        return {"name": self.name, **self.params}

    @property
    def higher_is_better(self) -> bool:
        """The metric's registered direction."""
        return bool(METRICS.meta(self.name).get("higher_is_better", True))


@dataclass(frozen=True)
class BatchScores:
    """Every metric of one batch: ``values (B, K)`` float64, ``undefined (B, K)`` int8, extras."""

    values: np.ndarray
    undefined: np.ndarray
    extras: Mapping[str, np.ndarray]


def check_spec(spec: Any, *, path: str = "metrics.0", where: str = "") -> MetricSpec:
    """Check one spec and fill in its defaults.

    Args:
        spec: ``{"name": ..., **params}``.
        path: the spec's key path, for messages (``metrics.1``).
        where: the file it came from, for messages.

    Raises:
        ProtocolError: not a mapping with a name, an unknown metric or parameter, or a
            parameter of the wrong type or out of range.
    """
    at = f"{where}: {path}" if where else path
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ProtocolError(
            f"{at} must be a mapping with a name and parameters, e.g. "
            f"{{name: box_acc, iou: 0.5}}, got {spec!r}"
        )
    name = spec["name"]
    try:
        METRICS.entry(str(name), asked_by=f"{where} {path}.name".strip())
    except GroundbenchError as exc:
        raise ProtocolError(str(exc)) from exc
    declared = declaration(name)
    given = {k: v for k, v in spec.items() if k != "name"}
    params = declared.check(given, metric=name, path=path, where=where)
    return MetricSpec(name, params, declared.key(name, params))


def check_specs(specs: Sequence[Any], *, where: str = "") -> tuple[MetricSpec, ...]:
    """Check every spec (:func:`check_spec`) and refuse two with the same display key."""
    out: list[MetricSpec] = []
    for i, spec in enumerate(specs):
        checked = check_spec(spec, path=f"metrics.{i}", where=where)
        for j, other in enumerate(out):
            if other.key == checked.key:
                at = f"{where}: " if where else ""
                raise ProtocolError(
                    f"{at}metrics.{i} repeats metrics.{j} (both report as {checked.key!r}); "
                    "remove one"
                )
        out.append(checked)
    return tuple(out)


class MetricSuite:
    """A fixed list of metrics, each with its parameters, fed batch by batch.

    Args:
        specs: one mapping per metric, ``{"name": ..., **params}``, e.g.
            ``[{"name": "pointing", "variant": "albef"}, {"name": "box_acc", "iou": 0.5}]``.

    Raises:
        ProtocolError: a spec has no name, names an unregistered metric, has an unknown
            parameter or a value the metric's declaration refuses, or two specs share a key.

    Example:
        >>> suite = MetricSuite([{"name": "pointing"}, {"name": "auc"}])
        >>> suite.keys
        ('pointing', 'auc')
    """

    def __init__(self, specs: Sequence[Mapping[str, Any]]) -> None:
        self.specs = check_specs(specs)
        self.reset()

    @property
    def keys(self) -> tuple[str, ...]:
        """Display keys of the metrics, in spec order."""
        return tuple(s.key for s in self.specs)

    def score(self, batch: HeatmapBatch) -> BatchScores:
        """Compute every metric on ``batch`` (stateless): ``(B, K)`` values and codes, extras."""
        with shared_ranks():  # one sort and one summary of each map for all the metrics
            outs = [feed_metric(s.name, batch, s.params) for s in self.specs]
        values = np.stack([o.values.double().numpy() for o in outs], axis=1).reshape(-1, len(outs))
        codes = np.stack([o.undefined.numpy() for o in outs], axis=1).reshape(-1, len(outs))
        values = values.astype(np.float64, copy=True)
        values[codes != 0] = np.nan
        extras = {
            f"{s.key}:{name}": t.double().numpy().copy()
            for s, o in zip(self.specs, outs, strict=True)
            for name, t in o.extras.items()
        }
        return BatchScores(values, codes.astype(np.int8), extras)

    def reset(self) -> None:
        """Forget every sample seen so far."""
        self._ids: list[str] = []
        self._seen: set[str] = set()
        self._tags: list[frozenset[str]] = []
        self._scores: list[BatchScores] = []

    def update(
        self, batch: HeatmapBatch, tags: Sequence[frozenset[str]] | None = None
    ) -> BatchScores:
        """Compute every metric on ``batch``, keep the per-sample results and return them.

        Args:
            batch: the heatmaps and ground truth of ``B`` samples.
            tags: optional ``B`` tag sets, for the per-tag breakdown of :meth:`compute`.

        Raises:
            DataFormatError: an id occurs twice in ``batch`` or was seen since the last
                :meth:`reset` (the same batch passed twice would count twice).
        """
        n = len(batch.ids)
        if tags is not None and len(tags) != n:
            raise ProtocolError(f"MetricSuite.update: {len(tags)} tag sets for a batch of {n}")
        self._check_new(batch.ids)
        scores = self.score(batch)
        self._scores.append(scores)
        self._ids.extend(batch.ids)
        self._seen.update(batch.ids)
        self._tags.extend(tags if tags is not None else [frozenset()] * n)
        return scores

    def _check_new(self, ids: Sequence[str]) -> None:
        seen, twice = set(), []
        for sid in ids:
            if sid in seen or sid in self._seen:
                twice.append(sid)
            seen.add(sid)
        if twice:
            raise DataFormatError(
                f"MetricSuite.update: {len(twice)} sample ids were already scored since the "
                f"last reset or occur twice in the batch (first: {twice[0]!r}); each sample "
                "counts once: call reset() between passes over the data"
            )

    def per_sample(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return ``{key: (values (N,) float64, undefined (N,) int8)}`` in the order seen."""
        k = len(self.keys)
        values = np.concatenate([s.values for s in self._scores]) if self._scores else None
        codes = np.concatenate([s.undefined for s in self._scores]) if self._scores else None
        if values is None:
            values, codes = np.zeros((0, k)), np.zeros((0, k), np.int8)
        return {key: (values[:, j].copy(), codes[:, j].copy()) for j, key in enumerate(self.keys)}

    @property
    def ids(self) -> tuple[str, ...]:
        """Sample ids seen so far, in order."""
        return tuple(self._ids)

    @property
    def tags(self) -> tuple[frozenset[str], ...]:
        """Tag sets of the samples seen so far, in order."""
        return tuple(self._tags)

    def compute(self, *, resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, Aggregate]]:
        """Aggregate every metric: ``{key: {"all": Aggregate, tag: Aggregate, ...}}``."""
        return {
            key: aggregate_by_tag(vals, codes, self._tags, resamples=resamples, seed=seed)
            for key, (vals, codes) in self.per_sample().items()
        }
