"""Score maps under a protocol in one call: pipeline → ground truth → metrics → per-sample values.

The same path ``groundbench evaluate`` takes, without a method, a cache or a report: for a
training loop or a notebook that already has maps::

    scorer = load_protocol("synth_val.albef").scorer("cpu")
    scores = scorer.update(raw_maps, samples)   # per-sample values of this batch
    aggregates = scorer.compute()               # means and intervals over every batch so far

The protocol's evaluation resolution, region rule (boxes or mask), pipeline and metrics
apply exactly as in a report, so the numbers are the report's for the same maps.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dataset_adapters.proposals import Proposals
from groundbench.bounds import rle_run_total
from groundbench.errors import DataFormatError, MethodError
from groundbench.methods.base import check_float32_range
from groundbench.metrics.aggregate import Aggregate, aggregate_by_tag
from groundbench.metrics.suite import MetricSuite
from groundbench.postprocess import Pipeline, ProcessedMaps
from groundbench.types import GroundingSample, HeatmapBatch, RawMaps, pad_boxes, rasterise_boxes

if TYPE_CHECKING:
    from groundbench.protocol import Protocol

log = logging.getLogger(__name__)

#: How far (relative) a map's aspect ratio may differ from its frame's before a warning, on
#: top of one grid cell of rounding (``1 / min(h, w)``).
ASPECT_TOLERANCE = 0.05


@dataclass(frozen=True)
class SampleScores:
    """Per-sample metric values of one batch.

    Attributes:
        ids: ``B`` sample ids, in batch order.
        keys: ``K`` metric display keys, in protocol order.
        values: ``(B, K)`` float64, NaN where undefined.
        undefined: ``(B, K)`` int8 :class:`~groundbench.types.Undefined` codes (0 = defined).
        extras: column (``pointing[albef]:tie_count``) → ``(B,)`` float64.
    """

    ids: tuple[str, ...]
    keys: tuple[str, ...]
    values: np.ndarray
    undefined: np.ndarray
    extras: Mapping[str, np.ndarray]

    def records(self) -> list[dict[str, Any]]:
        """One ``{"id": ..., key: value or None}`` dict per sample (None = undefined)."""
        return [
            {
                "id": sid,
                **{
                    k: None if c else float(v)
                    for k, v, c in zip(self.keys, vals, codes, strict=True)
                },
            }
            for sid, vals, codes in zip(self.ids, self.values, self.undefined, strict=True)
        ]


class ProtocolScorer:
    """Turns raw maps of a protocol's samples into its metrics (see the module docstring).

    Args:
        protocol: a loaded protocol.
        device: where the pipeline runs (metrics reduce on the CPU in float64).
        proposals: the candidate boxes of a region-ranking protocol (its ``proposals`` key),
            read by :func:`dataset_adapters.proposals.read_proposals`; None otherwise.
    """

    def __init__(
        self,
        protocol: Protocol,
        device: torch.device | str = "cpu",
        proposals: Proposals | None = None,
    ) -> None:
        self.protocol = protocol
        self.proposals = proposals
        self.device = torch.device(device)
        self.pipeline = Pipeline.from_config(protocol.pipeline)
        self.suite = MetricSuite(protocol.metrics)
        self._warned_aspect = False
        self._images: list[str] = []  # image of each sample seen, for image clusters

    @property
    def keys(self) -> tuple[str, ...]:
        """Metric display keys, in protocol order."""
        return self.suite.keys

    def size_of(self, sample: GroundingSample) -> tuple[int, int]:
        """(height, width) in pixels at which the sample is evaluated."""
        return self.protocol.evaluation_size(sample.height, sample.width)

    def heatmaps(
        self, raw: RawMaps, samples: Sequence[GroundingSample], *, method: str | None = None
    ) -> ProcessedMaps:
        """Post-process ``raw`` to each sample's evaluation size.

        Args:
            raw: one map per sample, in the order of ``samples``.
            samples: the batch.
            method: the name of the method that made the maps, for messages.

        Raises:
            MethodError: ``raw`` is not aligned with ``samples``, holds an empty map, or finite
                values beyond the float32 range.
        """
        want = tuple(s.id for s in samples)
        if not isinstance(raw, RawMaps) or raw.ids != want:
            got = raw.ids[:3] if isinstance(raw, RawMaps) else type(raw).__name__
            who = f"method {method} returned maps" if method else "the RawMaps are"
            raise MethodError(
                f"{who} for ids {got}... instead of the batch's {want[:3]}...; they must keep "
                "the batch order"
            )
        prefix = f"method {method}: " if method else ""
        for sid, m in zip(raw.ids, raw.maps, strict=True):
            if m.numel() == 0:
                raise MethodError(
                    f"{prefix}the map of sample {sid!r} has shape {tuple(m.shape)} with no "
                    "element; return at least a 1×1 map"
                )
            check_float32_range(m, f"{prefix}the map of sample {sid!r}")
        extents = raw.extents or (None,) * len(samples)
        for sample, m, extent in zip(samples, raw.maps, extents, strict=True):
            self._check_frame(sample, tuple(m.shape[-2:]), extent, prefix)
        sizes = [self.size_of(s) for s in samples]
        scaled = [
            None if e is None else _scale_extent(e, s, size)
            for e, s, size in zip(extents, samples, sizes, strict=True)
        ]
        return self.pipeline.run(raw, sizes, device=self.device, extents=scaled)

    def _check_frame(self, sample: GroundingSample, grid, extent, prefix: str) -> None:
        """Refuse a transposed map; warn once when a map's aspect ratio is not its frame's."""
        h, w = grid
        if extent is None:
            fw, fh, frame = float(sample.width), float(sample.height), "image"
        else:
            fw, fh, frame = extent[2] - extent[0], extent[3] - extent[1], "extent"
        if (h, w) == (round(fw), round(fh)) and round(fw) != round(fh):
            raise MethodError(
                f"{prefix}the map of sample {sample.id!r} has {h} rows × {w} columns for an "
                f"{frame} {round(fh)} pixels high and {round(fw)} wide: it is transposed "
                "(numpy shapes are (height, width), PIL sizes (width, height)); return maps "
                "shaped (height, width)"
            )
        mismatch = abs((w / h) / (fw / fh) - 1.0)
        if mismatch > ASPECT_TOLERANCE + 1.0 / min(h, w) and not self._warned_aspect:
            self._warned_aspect = True
            log.warning(
                "%sthe map of sample %r is %d×%d (rows × columns) for an %s of %g×%g pixels: "
                "its aspect ratio differs by %.0f%%, so it is stretched over the %s; if the "
                "model saw a crop or a letterbox, give RawMaps.extents (docs/postprocess.md). "
                "Further maps are not reported.",
                prefix,
                sample.id,
                h,
                w,
                frame,
                fh,
                fw,
                100 * mismatch,
                frame,
            )

    def ground_truth(
        self, samples: Sequence[GroundingSample], Y: int, X: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded boxes (scaled to the evaluation size), box counts and regions ``(B, Y, X)``."""
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
            region[i, :h, :w] = decode_mask(s, h, w)
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

    def batch(self, maps: ProcessedMaps, samples: Sequence[GroundingSample]) -> HeatmapBatch:
        """The metrics' input: post-processed maps with their ground truth, on the CPU."""
        Y, X = maps.heatmap.shape[1:]
        boxes, count, region = self.ground_truth(samples, Y, X)
        proposals, proposal_count = self.candidates(samples)
        valid = maps.valid.cpu()
        return HeatmapBatch(
            ids=maps.ids,
            heatmap=maps.heatmap.cpu(),
            valid=valid,
            region=region & valid,
            boxes=boxes,
            box_count=count,
            pred_mask=None if maps.pred_mask is None else maps.pred_mask.cpu(),
            pred_box=None if maps.pred_box is None else maps.pred_box.cpu(),
            proposals=proposals,
            proposal_count=proposal_count,
        )

    def score(self, raw: RawMaps, samples: Sequence[GroundingSample]) -> SampleScores:
        """Score one batch without keeping it (see :meth:`update` to accumulate)."""
        scores = self.suite.score(self.batch(self.heatmaps(raw, samples), samples))
        return SampleScores(raw.ids, self.keys, scores.values, scores.undefined, scores.extras)

    def update(self, raw: RawMaps, samples: Sequence[GroundingSample]) -> SampleScores:
        """Score one batch and keep its values for :meth:`compute`.

        Raises:
            DataFormatError: a sample id occurs twice in the batch or was already scored
                since the last :meth:`reset` (a batch passed twice would count twice).
        """
        batch = self.batch(self.heatmaps(raw, samples), samples)
        scores = self.suite.update(batch, [s.tags for s in samples])
        self._images.extend(s.image_path for s in samples)
        return SampleScores(raw.ids, self.keys, scores.values, scores.undefined, scores.extras)

    def compute(self) -> dict[str, dict[str, Aggregate]]:
        """``{key: {"all": Aggregate, tag: Aggregate, ...}}`` with the protocol's intervals.

        Samples are taken in id order, as a report takes them, so the intervals (bootstrap
        draws, clusters under ``bootstrap.cluster: image``) do not depend on the batch order.
        """
        boot = self.protocol.bootstrap
        order = sorted(range(len(self.suite.ids)), key=self.suite.ids.__getitem__)
        tags = [self.suite.tags[i] for i in order]
        clusters = None
        if boot.cluster == "image":  # numbered in order of first appearance, as reports do
            index: dict[str, int] = {}
            images = [self._images[i] for i in order]
            clusters = np.array([index.setdefault(p, len(index)) for p in images], np.float64)
        return {
            key: aggregate_by_tag(
                values[order],
                codes[order],
                tags,
                clusters,
                resamples=boot.resamples,
                seed=boot.seed,
            )  # fmt: skip
            for key, (values, codes) in self.suite.per_sample().items()
        }

    def reset(self) -> None:
        """Forget every sample seen so far (e.g. at the start of an epoch)."""
        self.suite.reset()
        self._images: list[str] = []


def _scale_extent(extent, sample: GroundingSample, size: tuple[int, int]) -> tuple[float, ...]:
    """An extent in image pixels → pixels of the evaluation ``size``."""
    sx, sy = size[1] / sample.width, size[0] / sample.height
    x0, y0, x1, y1 = extent
    return (x0 * sx, y0 * sy, x1 * sx, y1 * sy)


def decode_mask(sample: GroundingSample, height: int, width: int) -> torch.Tensor:
    """The sample's COCO RLE mask as ``(height, width)`` bool (nearest-resized if needed).

    Raises:
        DataFormatError: the sample has no mask.
    """
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
