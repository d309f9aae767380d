"""Score one batch: method → raw maps → pipeline → heatmaps + ground truth → per-sample records.

A record is a plain dict ``{"id", "values": {key: float | None}, "undefined": {key: label},
"extras": {column: float}}``; everything is reduced in float64 per sample, so batch size and
batch composition cannot change a digit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from groundbench.errors import DataFormatError, MethodError
from groundbench.methods.base import Method
from groundbench.metrics import compute_metric, display_key, shared_ranks
from groundbench.postprocess import Pipeline, ProcessedMaps
from groundbench.protocol import Protocol
from groundbench.types import GroundingSample, HeatmapBatch, Undefined, pad_boxes, rasterise_boxes


class Scorer:
    """Everything that turns a batch into records under one protocol and method."""

    def __init__(self, protocol: Protocol, method: Method, device: torch.device) -> None:
        self.protocol = protocol
        self.method = method
        self.device = device
        self.pipeline = Pipeline.from_config(protocol.pipeline)
        self.specs = [
            (
                display_key(m["name"], {k: v for k, v in m.items() if k != "name"}),
                m["name"],
                {k: v for k, v in m.items() if k != "name"},
            )
            for m in protocol.metrics
        ]

    @property
    def keys(self) -> tuple[str, ...]:
        """Metric display keys, in protocol order."""
        return tuple(k for k, _, _ in self.specs)

    def size_of(self, sample: GroundingSample) -> tuple[int, int]:
        """(height, width) at which the sample is evaluated."""
        res = self.protocol.resolution
        return (sample.height, sample.width) if res == "image" else (int(res[0]), int(res[1]))

    def maps(
        self, samples: Sequence[GroundingSample], images: Sequence[np.ndarray | None]
    ) -> ProcessedMaps:
        """Run the method and the pipeline on samples whose images (if needed) loaded."""
        raw = self.method.predict(
            samples, list(images) if self.method.needs_images else None, device=self.device
        )
        if raw.ids != tuple(s.id for s in samples):
            raise MethodError(
                f"method {self.method.name} returned maps for ids {raw.ids[:3]}... instead of the "
                f"batch's {tuple(s.id for s in samples)[:3]}...; it must keep the batch order"
            )
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
            region[i, : (h := self.size_of(s)[0]), : (w := self.size_of(s)[1])] = _decode_mask(
                s, h, w
            )
        return boxes, count, region

    def score(
        self,
        samples: Sequence[GroundingSample],
        images: Sequence[np.ndarray | None],
        errors: Sequence[str | None],
    ) -> list[dict[str, Any]]:
        """Return one record per sample; samples whose image failed are all-undefined."""
        ok = [i for i, e in enumerate(errors) if e is None]
        records = {s.id: self._missing(s.id) for s, e in zip(samples, errors, strict=True) if e}
        if ok:
            good = [samples[i] for i in ok]
            out = self.maps(good, [images[i] for i in ok])
            Y, X = out.heatmap.shape[1:]
            boxes, count, region = self.ground_truth(good, Y, X)
            batch = HeatmapBatch(
                ids=out.ids,
                heatmap=out.heatmap.cpu(),
                valid=out.valid.cpu(),
                region=region & out.valid.cpu(),
                boxes=boxes,
                box_count=count,
                pred_mask=None if out.pred_mask is None else out.pred_mask.cpu(),
                pred_box=None if out.pred_box is None else out.pred_box.cpu(),
            )
            for s in good:
                records[s.id] = {"id": s.id, "values": {}, "undefined": {}, "extras": {}}
            with shared_ranks():  # auc and spearman sort each map once between them
                results = [compute_metric(name, batch, **params) for _, name, params in self.specs]
            for (key, _, _), res in zip(self.specs, results, strict=True):
                for j, s in enumerate(good):
                    code = int(res.undefined[j])
                    value = float(res.values[j])
                    rec = records[s.id]
                    rec["values"][key] = None if code else value
                    rec["undefined"][key] = Undefined(code).label if code else ""
                    for extra, tensor in res.extras.items():
                        rec["extras"][f"{key}:{extra}"] = float(tensor[j])
        return [records[s.id] for s in samples]

    def _missing(self, sample_id: str) -> dict[str, Any]:
        label = Undefined.MISSING_IMAGE.label
        return {
            "id": sample_id,
            "values": {k: None for k in self.keys},
            "undefined": {k: label for k in self.keys},
            "extras": {},
        }


def _decode_mask(sample: GroundingSample, height: int, width: int) -> torch.Tensor:
    if sample.mask is None:
        raise DataFormatError(
            f"sample {sample.id!r} has no mask but the protocol says region: mask; "
            "use region: boxes for this dataset"
        )
    from pycocotools import mask as mask_utils

    rle: Mapping[str, Any] = dict(sample.mask)
    if isinstance(rle.get("counts"), str):
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
