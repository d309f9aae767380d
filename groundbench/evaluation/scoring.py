"""Score one batch: method → raw maps → pipeline → heatmaps + ground truth → :class:`Records`.

Every value is reduced in float64 per sample, so batch size and batch composition cannot
change a digit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dataset_adapters.proposals import Proposals
from groundbench.bounds import rle_run_total
from groundbench.errors import DataFormatError, MethodError
from groundbench.methods.base import Method, check_float32_range
from groundbench.metrics.suite import MetricSuite
from groundbench.postprocess import Pipeline, ProcessedMaps
from groundbench.protocol import Protocol
from groundbench.report.records import Records
from groundbench.types import (
    GroundingSample,
    HeatmapBatch,
    RawMaps,
    Undefined,
    pad_boxes,
    rasterise_boxes,
)


@dataclass(frozen=True)
class ScoredBatch:
    """The records of a batch and the post-processed maps of its samples that had an image.

    Attributes:
        records: one record per sample, in batch order.
        maps: the pipeline's output for ``maps.ids`` (None when no image loaded).
    """

    records: Records
    maps: ProcessedMaps | None


class Scorer:
    """Everything that turns a batch into records under one protocol and method."""

    def __init__(self, protocol: Protocol, method: Method, device: torch.device) -> None:
        self.protocol = protocol
        self.method = method
        self.device = device
        self.pipeline = Pipeline.from_config(protocol.pipeline)
        self.suite = MetricSuite(protocol.metrics)
        #: candidate boxes per image for region ranking (set once the split is loaded)
        self.proposals: Proposals | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        """Metric display keys, in protocol order."""
        return self.suite.keys

    @property
    def specs(self) -> tuple[tuple[str, str, dict[str, Any]], ...]:
        """``(display key, metric name, params)`` per metric: a view of ``suite.specs``."""
        return tuple((s.key, s.name, dict(s.params)) for s in self.suite.specs)

    def size_of(self, sample: GroundingSample) -> tuple[int, int]:
        """(height, width) at which the sample is evaluated."""
        res = self.protocol.resolution
        return (sample.height, sample.width) if res == "image" else (int(res[0]), int(res[1]))

    def maps(
        self, samples: Sequence[GroundingSample], images: Sequence[np.ndarray | None]
    ) -> ProcessedMaps:
        """Run the method and the pipeline on samples whose images (if needed) loaded.

        Raises:
            MethodError: the method returned other ids, an empty map, or finite values
                beyond the float32 range.
        """
        raw = self.method.predict(
            samples, list(images) if self.method.needs_images else None, device=self.device
        )
        if not isinstance(raw, RawMaps) or raw.ids != tuple(s.id for s in samples):
            got = raw.ids[:3] if isinstance(raw, RawMaps) else type(raw).__name__
            raise MethodError(
                f"method {self.method.name} returned maps for ids {got}... instead of the "
                f"batch's {tuple(s.id for s in samples)[:3]}...; it must keep the batch order"
            )
        _check_maps(self.method.name, raw)
        return self.pipeline.run(raw, [self.size_of(s) for s in samples], device=self.device)

    def ground_truth(self, samples: Sequence[GroundingSample], Y: int, X: int):
        """Padded boxes (scaled to the evaluation size) and region masks ``(B, Y, X)``."""
        scaled = []
        for s in samples:
            h, w = self.size_of(s)
            scaled.append(s.boxes * np.array([w / s.width, h / s.height] * 2))
        boxes, count = pad_boxes(scaled)
        if self.protocol.region == "boxes":
            return boxes, count, rasterise_boxes(boxes, count, Y, X)
        region = torch.zeros(len(samples), Y, X, dtype=torch.bool)
        for i, s in enumerate(samples):
            h, w = self.size_of(s)
            region[i, :h, :w] = _decode_mask(s, h, w)
        return boxes, count, region

    def candidates(self, samples: Sequence[GroundingSample]):
        """Padded proposals scaled to the evaluation size and their counts, or ``(None, None)``."""
        if self.proposals is None:
            return None, None
        scaled = []
        for s in samples:
            h, w = self.size_of(s)
            scaled.append(self.proposals.of(s) * np.array([w / s.width, h / s.height] * 2))
        return pad_boxes(scaled)

    def score(
        self,
        samples: Sequence[GroundingSample],
        images: Sequence[np.ndarray | None],
        errors: Sequence[str | None],
    ) -> ScoredBatch:
        """Return one record per sample; samples whose image failed are all-undefined."""
        n, k = len(samples), len(self.keys)
        values = np.full((n, k), np.nan)
        codes = np.full((n, k), int(Undefined.MISSING_IMAGE), dtype=np.int8)
        extras: dict[str, np.ndarray] = {}
        ok = [i for i, e in enumerate(errors) if e is None]
        out = None
        if ok:
            good = [samples[i] for i in ok]
            out = self.maps(good, [images[i] for i in ok])
            Y, X = out.heatmap.shape[1:]
            boxes, count, region = self.ground_truth(good, Y, X)
            proposals, proposal_count = self.candidates(good)
            valid = out.valid.cpu()
            batch = HeatmapBatch(
                ids=out.ids,
                heatmap=out.heatmap.cpu(),
                valid=valid,
                region=region & valid,
                boxes=boxes,
                box_count=count,
                pred_mask=None if out.pred_mask is None else out.pred_mask.cpu(),
                pred_box=None if out.pred_box is None else out.pred_box.cpu(),
                proposals=proposals,
                proposal_count=proposal_count,
            )
            scores = self.suite.score(batch)
            values[ok], codes[ok] = scores.values, scores.undefined
            for column, v in scores.extras.items():
                extras[column] = np.full(n, np.nan)
                extras[column][ok] = v
        records = Records(
            self.keys,
            tuple(s.id for s in samples),
            values,
            codes,
            tuple(s.tags for s in samples),
            extras,
        )
        return ScoredBatch(records, out)


def _check_maps(method: str, raw: RawMaps) -> None:
    for sid, m in zip(raw.ids, raw.maps, strict=True):
        if m.numel() == 0:
            raise MethodError(
                f"method {method}: the map of sample {sid!r} has shape {tuple(m.shape)} with no "
                "element; return at least a 1×1 map"
            )
        check_float32_range(m, f"method {method}: the map of sample {sid!r}")


def _decode_mask(sample: GroundingSample, height: int, width: int) -> torch.Tensor:
    if sample.mask is None:
        raise DataFormatError(
            f"sample {sample.id!r} has no mask but the protocol says region: mask; "
            "use region: boxes for this dataset"
        )
    from pycocotools import mask as mask_utils

    rle: Mapping[str, Any] = dict(sample.mask)
    h, w = (int(v) for v in rle["size"])
    try:  # pycocotools writes every run it is given: the runs must fill the image exactly
        total = rle_run_total(rle["counts"]) if isinstance(rle.get("counts"), str) else None
    except ValueError as exc:
        total = f"unreadable ({exc})"
    if total != h * w:
        raise DataFormatError(
            f"sample {sample.id!r}: its mask's RLE counts cover {total} pixels, not its size "
            f"{h}×{w} = {h * w}; re-export the mask as a compressed COCO RLE of the image"
        )
    rle = {**rle, "counts": rle["counts"].encode()}
    m = torch.from_numpy(mask_utils.decode(rle).astype(bool))
    if tuple(m.shape) != (height, width):
        m = (
            torch.nn.functional.interpolate(
                m[None, None].float(), size=(height, width), mode="nearest"
            )[0, 0]
            > 0.5
        )
    return m
