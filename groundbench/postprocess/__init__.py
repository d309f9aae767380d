"""Heatmap post-processing: raw method maps → image-resolution heatmaps, masks and boxes.

Each step is one pure, batched function registered in :data:`PIPELINE_STEPS`;
:class:`Pipeline` chains them as a protocol's ``pipeline`` section says (docs/postprocess.md).
"""

from __future__ import annotations

from groundbench.registry import Registry

PIPELINE_STEPS: Registry = Registry("pipeline_steps")

from groundbench.postprocess.aggregate import aggregate_attention  # noqa: E402
from groundbench.postprocess.average import average_passes  # noqa: E402
from groundbench.postprocess.config import DEFAULT_CONFIG, canonical_config  # noqa: E402
from groundbench.postprocess.normalise import normalise_maps  # noqa: E402
from groundbench.postprocess.pipeline import Pipeline, ProcessedMaps  # noqa: E402
from groundbench.postprocess.regions import mask_to_box, select_regions  # noqa: E402
from groundbench.postprocess.smooth import smooth_maps  # noqa: E402
from groundbench.postprocess.threshold import otsu_thresholds, threshold_maps  # noqa: E402
from groundbench.postprocess.upsample import upsample_maps  # noqa: E402

__all__ = [
    "DEFAULT_CONFIG",
    "PIPELINE_STEPS",
    "Pipeline",
    "ProcessedMaps",
    "aggregate_attention",
    "average_passes",
    "canonical_config",
    "mask_to_box",
    "normalise_maps",
    "otsu_thresholds",
    "select_regions",
    "smooth_maps",
    "threshold_maps",
    "upsample_maps",
]
