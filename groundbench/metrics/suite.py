"""``MetricSuite``: accumulate several metrics over batches, for training and evaluation loops.

The state is the per-sample values, so means, undefined counts and intervals all come from
:mod:`groundbench.metrics.aggregate`; the suite holds no metric logic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from groundbench.errors import ProtocolError
from groundbench.metrics import check_params, compute_metric, display_key, shared_ranks
from groundbench.metrics.aggregate import Aggregate, aggregate_by_tag
from groundbench.types import HeatmapBatch


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
        self._specs: list[tuple[str, str, dict[str, Any]]] = []
        for i, spec in enumerate(specs):
            if "name" not in spec:
                raise ProtocolError(
                    f"metrics[{i}]: every metric spec needs a 'name', got {dict(spec)}"
                )
            params = {k: v for k, v in spec.items() if k != "name"}
            check_params(spec["name"], params)
            key = display_key(spec["name"], params)
            if any(key == k for k, _, _ in self._specs):
                raise ProtocolError(f"metrics[{i}]: {key!r} is listed twice; drop one of them")
            self._specs.append((key, spec["name"], params))
        self.reset()

    @property
    def keys(self) -> tuple[str, ...]:
        """Display keys of the metrics, in spec order."""
        return tuple(k for k, _, _ in self._specs)

    def reset(self) -> None:
        """Forget every sample seen so far."""
        self._ids: list[str] = []
        self._tags: list[frozenset[str]] = []
        self._values: dict[str, list[torch.Tensor]] = {k: [] for k in self.keys}
        self._codes: dict[str, list[torch.Tensor]] = {k: [] for k in self.keys}

    def update(self, batch: HeatmapBatch, tags: Sequence[frozenset[str]] | None = None) -> None:
        """Compute every metric on ``batch`` and keep the per-sample results.

        Args:
            batch: the heatmaps and ground truth of ``B`` samples.
            tags: optional ``B`` tag sets, for the per-tag breakdown of :meth:`compute`.
        """
        n = len(batch.ids)
        if tags is not None and len(tags) != n:
            raise ProtocolError(f"MetricSuite.update: {len(tags)} tag sets for a batch of {n}")
        with shared_ranks():
            for key, name, params in self._specs:
                out = compute_metric(name, batch, **params)
                self._values[key].append(out.values)
                self._codes[key].append(out.undefined)
        self._ids.extend(batch.ids)
        self._tags.extend(tags if tags is not None else [frozenset()] * n)

    def per_sample(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return ``{key: (values (N,) float64, undefined (N,) int8)}`` in the order seen."""
        out = {}
        for key in self.keys:
            vals = (
                torch.cat(self._values[key])
                if self._values[key]
                else torch.zeros(0, dtype=torch.float64)
            )
            codes = (
                torch.cat(self._codes[key])
                if self._codes[key]
                else torch.zeros(0, dtype=torch.int8)
            )
            out[key] = (vals.numpy(), codes.numpy())
        return out

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
