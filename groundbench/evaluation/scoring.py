"""Score one batch: method → raw maps → pipeline → heatmaps + ground truth → :class:`Records`.

The pipeline, the ground truth and the metrics are the protocol's
:class:`~groundbench.protocol_scorer.ProtocolScorer`; this stage adds the method and the
samples left unread (an image that failed to load, or whose size is not its record's).
Every value is reduced in float64 per sample, so batch size and batch composition cannot
change a digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from groundbench.evaluation.data import Unread
from groundbench.methods.base import Method
from groundbench.postprocess import ProcessedMaps
from groundbench.protocol import Protocol
from groundbench.protocol_scorer import ProtocolScorer
from groundbench.report.records import Records
from groundbench.types import GroundingSample


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
        self.scoring = ProtocolScorer(protocol, device)
        self.pipeline = self.scoring.pipeline
        self.suite = self.scoring.suite

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
        return self.scoring.size_of(sample)

    def maps(
        self, samples: Sequence[GroundingSample], images: Sequence[np.ndarray | None]
    ) -> ProcessedMaps:
        """Run the method and the pipeline on samples whose images (if needed) loaded.

        Raises:
            MethodError: the method returned other ids, an empty map, or finite values
                beyond the float32 range.
        """
        return self._maps(samples, images)[0]

    def _maps(
        self, samples: Sequence[GroundingSample], images: Sequence[np.ndarray | None]
    ) -> tuple[ProcessedMaps, tuple[frozenset[str], ...] | None]:
        """:meth:`maps` and the method's per-sample notes (``RawMaps.notes``)."""
        raw = self.method.predict(
            samples, list(images) if self.method.needs_images else None, device=self.device
        )
        return self.scoring.heatmaps(raw, samples, method=self.method.name), raw.notes

    def ground_truth(self, samples: Sequence[GroundingSample], Y: int, X: int):
        """Padded boxes (scaled to the evaluation size) and region masks ``(B, Y, X)``."""
        return self.scoring.ground_truth(samples, Y, X)

    def score(
        self,
        samples: Sequence[GroundingSample],
        images: Sequence[np.ndarray | None],
        unread: Sequence[Unread | None],
    ) -> ScoredBatch:
        """Return one record per sample; an unread sample is undefined for its reason.

        A record's tags are the sample's and the method's notes on it (``RawMaps.notes``).
        """
        n, k = len(samples), len(self.keys)
        values = np.full((n, k), np.nan)
        codes = np.zeros((n, k), dtype=np.int8)
        extras: dict[str, np.ndarray] = {}
        tags = [s.tags for s in samples]
        ok = [i for i, u in enumerate(unread) if u is None]
        for i, u in enumerate(unread):
            if u is not None:
                codes[i] = int(u.reason)
        out = None
        if ok:
            good = [samples[i] for i in ok]
            out, notes = self._maps(good, [images[i] for i in ok])
            if notes is not None:
                for i, note in zip(ok, notes, strict=True):
                    tags[i] = tags[i] | note
            scores = self.suite.score(self.scoring.batch(out, good))
            values[ok], codes[ok] = scores.values, scores.undefined
            for column, v in scores.extras.items():
                extras[column] = np.full(n, np.nan)
                extras[column][ok] = v
        records = Records(
            self.keys,
            tuple(s.id for s in samples),
            values,
            codes,
            tuple(tags),
            extras,
        )
        return ScoredBatch(records, out)
