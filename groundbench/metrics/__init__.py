"""The metric suite: batched, per-sample metrics over heatmaps (docs/metrics.md).

Every metric is a pure function registered with :func:`register_metric`::

    fn(heatmap, *, region=None, valid=None, boxes=None, box_count=None,
       pred_mask=None, pred_box=None, **params) -> MetricOutput

with metadata ``needs`` (inputs it reads), ``higher_is_better``, ``range`` and ``params``,
the :class:`~groundbench.metrics.params.Params` declaration that owns its parameters
(types, ranges, defaults, display key). Inputs may live on any device; outputs are CPU
tensors (values float64, NaN where undefined, plus an int8
:class:`~groundbench.types.Undefined` reason code per sample). :func:`compute_metric` feeds
a metric from a :class:`~groundbench.types.HeatmapBatch`, :func:`display_key` names the
report column of a metric with its parameters, and :func:`shared_ranks` lets ``auc`` and
``spearman`` on the same batch rank each map once (and, on the CPU, the other metrics read
one summary of each map).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from groundbench.errors import ProtocolError
from groundbench.metrics.params import (
    INPUT_NAMES,
    MAX_DISTANCE_PX,
    Param,
    Params,
    params_from_signature,
)
from groundbench.registry import Registry
from groundbench.types import HeatmapBatch, MetricOutput

METRICS: Registry = Registry("metrics")


def register_metric(
    name: str,
    *,
    needs: tuple[str, ...],
    higher_is_better: bool,
    range: tuple[float, float],  # noqa: A002 - the registry's metadata key
    params: Params | None = None,
) -> Callable[[Callable[..., MetricOutput]], Callable[..., MetricOutput]]:
    """Register a metric with its metadata and its parameter declaration.

    Raises:
        GroundbenchError: the function's keyword defaults differ from ``params``.
    """
    declared = params or Params()

    def decorator(fn: Callable[..., MetricOutput]) -> Callable[..., MetricOutput]:
        declared.agree_with(fn, name)
        METRICS.add(
            name, fn, needs=needs, higher_is_better=higher_is_better, range=range, params=declared
        )
        return fn

    return decorator


from groundbench.metrics._ranks import shared_ranks  # noqa: E402
from groundbench.metrics.auc import auc  # noqa: E402
from groundbench.metrics.box import box_acc, box_iou  # noqa: E402
from groundbench.metrics.iou import miou, soft_iou  # noqa: E402
from groundbench.metrics.nss import nss  # noqa: E402
from groundbench.metrics.pointing import pointing  # noqa: E402
from groundbench.metrics.ranking import proposal_rank, rank_acc  # noqa: E402
from groundbench.metrics.saliency import cc, kl, sim  # noqa: E402
from groundbench.metrics.spearman import spearman  # noqa: E402


def declaration(name: str) -> Params:
    """The :class:`Params` declared by metric ``name`` (a plug-in's: read off its signature)."""
    entry = METRICS.entry(name)
    declared = entry.meta.get("params")
    return declared if isinstance(declared, Params) else params_from_signature(entry.obj)


def metric_params(name: str) -> dict[str, Any]:
    """Return the parameters of metric ``name`` with their defaults (e.g. ``{"iou": 0.5}``)."""
    return declaration(name).defaults()


def compute_metric(name: str, batch: HeatmapBatch, **params: Any) -> MetricOutput:
    """Compute metric ``name`` with ``params`` on every sample of ``batch``.

    Raises:
        UnknownNameError: no metric is registered as ``name``.
        ProtocolError: a parameter the declaration refuses, or the metric needs
            ``pred_mask``/``pred_box`` and the pipeline produced none (add a ``threshold`` step).

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
    return feed_metric(name, batch, declaration(name).check(params, metric=name))


def feed_metric(name: str, batch: HeatmapBatch, params: Mapping[str, Any]) -> MetricOutput:
    """Compute metric ``name`` on ``batch`` with ``params`` already checked (a spec's)."""
    fn = METRICS.get(name)
    needs = METRICS.meta(name).get("needs", ())
    for field in ("pred_mask", "pred_box"):
        if field in needs and getattr(batch, field) is None:
            raise ProtocolError(
                f"metric {name!r} needs {field}, which the pipeline only produces with a "
                "threshold step; set pipeline.threshold (and pipeline.regions for boxes)"
            )
    if "proposals" in needs and batch.proposals is None:
        raise ProtocolError(
            f"metric {name!r} ranks candidate boxes: set the protocol's proposals "
            "(proposals: {file: NAME} or proposals: gt)"
        )
    ranked = {}
    if "proposals" in needs:  # only region ranking takes candidate boxes
        ranked = {"proposals": batch.proposals, "proposal_count": batch.proposal_count}
    return fn(
        batch.heatmap,
        region=batch.region,
        valid=batch.valid,
        boxes=batch.boxes,
        box_count=batch.box_count,
        pred_mask=batch.pred_mask,
        pred_box=batch.pred_box,
        **ranked,
        **params,
    )


def display_key(name: str, params: Mapping[str, Any] | None = None) -> str:
    """Return the report/leaderboard column key of metric ``name`` with ``params``.

    Each metric's declaration names its column; by default, parameters left at their
    defaults are not shown.

    Example:
        >>> display_key("pointing", {"variant": "mg"}), display_key("pointing", {"tolerance_px": 15})
        ('pointing[mg]', 'pointing@15px')
        >>> display_key("box_acc", {}), display_key("soft_iou"), display_key("spearman", {"sigma_px": 4})
        ('box_acc@0.5', 'soft_iou', 'spearman@sigma4px')
    """
    declared = declaration(name)
    return declared.key(name, declared.check(params or {}, metric=name))


from groundbench.metrics.suite import MetricSuite  # noqa: E402  (it reads the functions above)

__all__ = [
    "INPUT_NAMES",
    "MAX_DISTANCE_PX",
    "METRICS",
    "MetricSuite",
    "Param",
    "Params",
    "auc",
    "box_acc",
    "box_iou",
    "cc",
    "compute_metric",
    "declaration",
    "display_key",
    "feed_metric",
    "kl",
    "metric_params",
    "miou",
    "nss",
    "pointing",
    "proposal_rank",
    "rank_acc",
    "register_metric",
    "shared_ranks",
    "sim",
    "soft_iou",
    "spearman",
]
