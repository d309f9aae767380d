"""The metric suite: batched, per-sample metrics over heatmaps (docs/metrics.md).

Every metric is a pure function registered in :data:`METRICS`::

    fn(heatmap, *, region=None, valid=None, boxes=None, box_count=None,
       pred_mask=None, pred_box=None, **params) -> MetricOutput

with metadata ``needs`` (inputs it reads), ``higher_is_better`` and ``range``. Inputs may
live on any device; outputs are CPU tensors (values float64, NaN where undefined, plus an
int8 :class:`~groundbench.types.Undefined` reason code per sample).
:func:`compute_metric` feeds a metric from a :class:`~groundbench.types.HeatmapBatch`, and
:func:`display_key` names the report column of a metric with its parameters, and
:func:`shared_ranks` lets ``auc`` and ``spearman`` on the same batch rank each map once (and, on
the CPU, the other metrics read one summary of each map).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from groundbench.errors import ProtocolError, did_you_mean
from groundbench.registry import Registry
from groundbench.types import HeatmapBatch, MetricOutput

METRICS: Registry = Registry("metrics")

# Keyword arguments every metric accepts for its inputs; the rest of its keywords are params.
INPUT_NAMES: tuple[str, ...] = ("region", "valid", "boxes", "box_count", "pred_mask", "pred_box")

from groundbench.metrics._ranks import shared_ranks  # noqa: E402
from groundbench.metrics.auc import auc  # noqa: E402
from groundbench.metrics.box import box_acc, box_iou  # noqa: E402
from groundbench.metrics.iou import miou, soft_iou  # noqa: E402
from groundbench.metrics.nss import nss  # noqa: E402
from groundbench.metrics.pointing import pointing  # noqa: E402
from groundbench.metrics.spearman import spearman  # noqa: E402


def metric_params(name: str) -> dict[str, Any]:
    """Return the parameters of metric ``name`` with their defaults (e.g. ``{"iou": 0.5}``)."""
    fn = METRICS.get(name)
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in INPUT_NAMES
    }


def check_params(name: str, params: Mapping[str, Any]) -> None:
    """Raise :class:`ProtocolError` when ``params`` holds a key metric ``name`` does not take."""
    known = metric_params(name)
    for key in params:
        if key not in known:
            hint = did_you_mean(key, known)
            valid = ", ".join(sorted(known)) or "none"
            raise ProtocolError(
                f"metrics.{name}.{key}: unknown parameter of metric {name!r}{hint} "
                f"Valid parameters: {valid}."
            )


def compute_metric(name: str, batch: HeatmapBatch, **params: Any) -> MetricOutput:
    """Compute metric ``name`` with ``params`` on every sample of ``batch``.

    Raises:
        UnknownNameError: no metric is registered as ``name``.
        ProtocolError: an unknown parameter, or the metric needs ``pred_mask``/``pred_box``
            and the pipeline produced none (add a ``threshold`` step).

    Example:
        >>> import torch
        >>> from groundbench.types import HeatmapBatch
        >>> b = HeatmapBatch(ids=("a",), heatmap=torch.tensor([[[0.0, 1.0]]]),
        ...     valid=torch.ones(1, 1, 2, dtype=torch.bool),
        ...     region=torch.tensor([[[False, True]]]),
        ...     boxes=torch.tensor([[[1.0, 0.0, 2.0, 1.0]]]), box_count=torch.tensor([1]))
        >>> compute_metric("pointing", b, variant="mg").values.tolist()
        [1.0]
    """
    fn = METRICS.get(name)
    check_params(name, params)
    needs = METRICS.meta(name).get("needs", ())
    for field in ("pred_mask", "pred_box"):
        if field in needs and getattr(batch, field) is None:
            raise ProtocolError(
                f"metric {name!r} needs {field}, which the pipeline only produces with a "
                "threshold step; set pipeline.threshold (and pipeline.regions for boxes)"
            )
    return fn(
        batch.heatmap,
        region=batch.region,
        valid=batch.valid,
        boxes=batch.boxes,
        box_count=batch.box_count,
        pred_mask=batch.pred_mask,
        pred_box=batch.pred_box,
        **params,
    )


def _number(value: float) -> str:
    return f"{float(value):g}"


def display_key(name: str, params: Mapping[str, Any] | None = None) -> str:
    """Return the report/leaderboard column key of metric ``name`` with ``params``.

    Parameters left at their defaults are not shown, except ``box_acc``'s threshold.

    Example:
        >>> display_key("pointing", {"variant": "mg"}), display_key("pointing", {"tolerance_px": 15})
        ('pointing[mg]', 'pointing@15px')
        >>> display_key("box_acc", {}), display_key("soft_iou"), display_key("spearman", {"sigma_px": 4})
        ('box_acc@0.5', 'soft_iou', 'spearman@sigma4px')
    """
    check_params(name, params or {})
    full = {**metric_params(name), **(params or {})}
    if name == "pointing":
        if full["variant"] is not None:
            return f"pointing[{full['variant']}]"
        tol = float(full["tolerance_px"])
        return f"pointing@{_number(tol)}px" if tol else "pointing"
    if name == "box_acc":
        return f"box_acc@{_number(full['iou'])}"
    if name == "spearman":
        sigma = float(full["sigma_px"])
        return f"spearman@sigma{_number(sigma)}px" if sigma else "spearman"
    defaults = metric_params(name)
    shown = {k: v for k, v in sorted(full.items()) if v != defaults[k]}
    if not shown:
        return name
    return f"{name}[{','.join(f'{k}={v}' for k, v in shown.items())}]"


from groundbench.metrics.suite import MetricSuite  # noqa: E402  (it reads the functions above)

__all__ = [
    "INPUT_NAMES",
    "METRICS",
    "MetricSuite",
    "auc",
    "box_acc",
    "box_iou",
    "check_params",
    "compute_metric",
    "display_key",
    "metric_params",
    "miou",
    "nss",
    "pointing",
    "shared_ranks",
    "soft_iou",
    "spearman",
]
