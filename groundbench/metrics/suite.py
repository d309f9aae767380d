"""``MetricSuite``: the one owner of metric specs, and the per-sample collector over batches.

A spec is ``{"name": ..., **params}``. The suite checks it (registered name, known
parameters, types coerced, values in range, no two specs with one display key), names its
column (:func:`~groundbench.metrics.display_key`) and computes every metric of a batch at
once, sharing the rank statistics between ``auc`` and ``spearman``. Its state is the
per-sample values, so means, undefined counts and intervals all come from
:mod:`groundbench.metrics.aggregate`; the suite holds no metric logic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from groundbench.errors import DataFormatError, GroundbenchError, ProtocolError, did_you_mean
from groundbench.metrics import (
    METRICS,
    check_params,
    compute_metric,
    display_key,
    metric_params,
    shared_ranks,
)
from groundbench.metrics.aggregate import Aggregate, aggregate_by_tag
from groundbench.types import HeatmapBatch

#: Largest distance parameter (``*_px``) a spec may give: larger ones only allocate.
MAX_DISTANCE_PX = 4096.0


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
    defaults = metric_params(name)
    valid = ["name", *defaults]
    for key in spec:
        if key not in valid:
            hint = did_you_mean(key, valid)
            raise ProtocolError(
                f"{where or 'metric spec'}: unknown key {path}.{key}; valid keys under {path}: "
                f"{', '.join(valid)}{hint}"
            )
    params = {}
    for key, default in defaults.items():
        given = spec.get(key, default)
        if isinstance(default, float) and isinstance(given, int) and not isinstance(given, bool):
            given = float(given)
        if isinstance(default, float) and not isinstance(given, float):
            raise ProtocolError(f"{at}.{key} must be a number, got {given!r}")
        if key.endswith("_px") and not (math.isfinite(given) and 0 <= given <= MAX_DISTANCE_PX):
            raise ProtocolError(
                f"{at}.{key}: {given!r} is out of range; use a distance in pixels in "
                f"[0, {MAX_DISTANCE_PX:g}]"
            )
        params[key] = given
    try:
        compute_metric(name, _PROBE_BATCH, **params)
    except ProtocolError as exc:
        raise ProtocolError(f"{at}: {exc}") from exc
    return MetricSpec(name, params, display_key(name, params))


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


# A 1×2×2 batch every metric can run on: lets a metric check its own parameter values.
_PROBE_BATCH = HeatmapBatch(
    ids=("probe",),
    heatmap=torch.tensor([[[0.0, 1.0], [0.5, 0.25]]]),
    valid=torch.ones(1, 2, 2, dtype=torch.bool),
    region=torch.tensor([[[False, True], [False, False]]]),
    boxes=torch.tensor([[[1.0, 0.0, 2.0, 1.0]]], dtype=torch.float64),
    box_count=torch.tensor([1]),
    pred_mask=torch.tensor([[[False, True], [False, False]]]),
    pred_box=torch.tensor([[1.0, 0.0, 2.0, 1.0]], dtype=torch.float64),
)


class MetricSuite:
    """A fixed list of metrics, each with its parameters, fed batch by batch.

    Args:
        specs: one mapping per metric, ``{"name": ..., **params}``, e.g.
            ``[{"name": "pointing", "variant": "albef"}, {"name": "box_acc", "iou": 0.5}]``.

    Raises:
        ProtocolError: a spec has no name, an unknown parameter, or two specs share a key.
        UnknownNameError: a spec names an unregistered metric.

    Example:
        >>> suite = MetricSuite([{"name": "pointing"}, {"name": "auc"}])
        >>> suite.keys
        ('pointing', 'auc')
    """

    def __init__(self, specs: Sequence[Mapping[str, Any]]) -> None:
        for i, spec in enumerate(specs):
            if not isinstance(spec, Mapping) or "name" not in spec:
                raise ProtocolError(f"metrics[{i}]: every metric spec needs a 'name', got {spec!r}")
            METRICS.get(spec["name"])  # UnknownNameError names the valid metrics
            check_params(spec["name"], {k: v for k, v in spec.items() if k != "name"})
        self.specs = check_specs(specs)
        self.reset()

    @property
    def keys(self) -> tuple[str, ...]:
        """Display keys of the metrics, in spec order."""
        return tuple(s.key for s in self.specs)

    def score(self, batch: HeatmapBatch) -> BatchScores:
        """Compute every metric on ``batch`` (stateless): ``(B, K)`` values and codes, extras."""
        with shared_ranks():  # one sort and one summary of each map for all the metrics
            outs = [compute_metric(s.name, batch, **s.params) for s in self.specs]
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

    def compute(self, *, resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, Aggregate]]:
        """Aggregate every metric: ``{key: {"all": Aggregate, tag: Aggregate, ...}}``."""
        return {
            key: aggregate_by_tag(vals, codes, self._tags, resamples=resamples, seed=seed)
            for key, (vals, codes) in self.per_sample().items()
        }
