"""Split-level metrics: MaxBoxAccV2 over the evaluated split, its thresholds calibrated on another.

Every scored batch of the evaluated split also yields its samples' hits over the threshold
sweep (:func:`~groundbench.metrics.maxboxacc.box_hits`), from the maps the per-sample
metrics saw; they go to a cache beside the records (the same append-only files, keyed apart),
so a resumed run keeps them and every ``torchrun`` rank writes its own. Then rank 0 runs the
method and the pipeline over the calibration split (the protocol's
``split_metrics.maxboxacc.calibration_split``, loaded with the same selection and ``limit``)
and writes every hit to ``maxboxacc_hits.csv`` (:mod:`groundbench.report.split_metrics`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from groundbench.evaluation.cache import RecordWriter, read_records
from groundbench.evaluation.data import batches, dataset_fingerprint, load_split
from groundbench.evaluation.scoring import ScoredBatch, Scorer
from groundbench.metrics.maxboxacc import THRESHOLDS, box_hits
from groundbench.postprocess import ProcessedMaps
from groundbench.progress import progress_bar
from groundbench.report.records import Records
from groundbench.report.split_metrics import (
    HITS_FILE,
    delta_key,
    hits_to_csv,
    maxboxacc_numbers,
)
from groundbench.types import GroundingSample


class HitsCache:
    """The evaluated split's hits, cached per sample beside its records.

    A cached row is a record whose ``T × D`` values are the hits (1.0 or 0.0), under a key
    derived from the records' own, so the records' resume and ``--no-resume`` rules apply.
    """

    def __init__(self, scorer: Scorer, folder: Path, key: str) -> None:
        self.scorer = scorer
        self.folder = folder
        self.deltas = scorer.protocol.split_metrics["maxboxacc"]["deltas"]
        self.key = hashlib.sha256(f"{key}\0maxboxacc".encode()).hexdigest()[:16]
        self.columns = tuple(
            f"hits@{delta_key(d)}:{t:.2f}" for d in self.deltas for t in THRESHOLDS
        )
        self._writer: RecordWriter | None = None

    def open(self, rank: int) -> None:
        """Start appending this rank's hits."""
        self._writer = RecordWriter(self.folder, self.key, rank)

    def offer(self, samples: Sequence[GroundingSample], scored: ScoredBatch) -> None:
        """Cache the hits of a scored batch (a sample whose image failed hits nothing)."""
        hits = np.zeros((len(samples), len(THRESHOLDS), len(self.deltas)), dtype=bool)
        if scored.maps is not None:
            row = {s.id: i for i, s in enumerate(samples)}
            good = [samples[row[sid]] for sid in scored.maps.ids]
            hits[[row[s.id] for s in good]] = maps_hits(self.scorer, good, scored.maps, self.deltas)
        values = hits.transpose(0, 2, 1).reshape(len(samples), -1).astype(np.float64)  # N (D T)
        codes = np.zeros(values.shape, dtype=np.int8)
        ids, tags = tuple(s.id for s in samples), tuple(s.tags for s in samples)
        self._writer.write(Records(self.columns, ids, values, codes, tags))

    def close(self) -> None:
        """Close this rank's file."""
        if self._writer is not None:
            self._writer.close()

    def read(self) -> dict[str, np.ndarray]:
        """``{sample id: (T, D) bool hits}`` cached by every rank."""
        cached = read_records(self.folder, self.key, self.columns)
        hits = cached.values.reshape(len(cached), len(self.deltas), len(THRESHOLDS)) > 0.5
        return dict(zip(cached.ids, hits.transpose(0, 2, 1), strict=True))


def maps_hits(
    scorer: Scorer, samples: Sequence[GroundingSample], maps: ProcessedMaps, deltas
) -> np.ndarray:
    """``(B, T, D)`` bool hits of the pipeline's maps of ``samples`` (in ``maps.ids`` order)."""
    Y, X = maps.heatmap.shape[1:]
    boxes, count, _ = scorer.ground_truth(samples, Y, X)
    return box_hits(maps.heatmap, maps.valid, boxes, count, THRESHOLDS, deltas)


def split_hits(
    scorer: Scorer,
    samples: Sequence[GroundingSample],
    deltas: Sequence[float],
    *,
    batch_size: int,
    num_workers: int,
    desc: str,
    progress: bool,
) -> np.ndarray:
    """``(N, T, D)`` bool hits of ``samples``; a sample whose image failed to load hits nothing."""
    out = np.zeros((len(samples), len(THRESHOLDS), len(deltas)), dtype=bool)
    row = 0
    with progress_bar(total=len(samples), unit="sample", disable=not progress, desc=desc) as bar:
        for group, images, errors in batches(
            samples,
            with_images=scorer.method.needs_images,
            batch_size=batch_size,
            num_workers=num_workers,
        ):
            ok = [i for i, e in enumerate(errors) if e is None]
            if ok:
                good = [group[i] for i in ok]
                maps = scorer.maps(good, [images[i] for i in ok])
                out[[row + i for i in ok]] = maps_hits(scorer, good, maps, deltas)
            row += len(group)
            bar.update(len(group))
    return out


def split_metrics_section(
    cache: HitsCache,
    samples: Sequence[GroundingSample],
    *,
    data_root: str | Path | None,
    limit: int | None,
    batch_size: int,
    num_workers: int,
    progress: bool,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``report.json``'s ``split_metrics`` section and the files it names.

    The evaluated split's hits come from ``cache``; a sample missing there (its record
    was cached by a run that stopped before its hits were) is run through the method again.
    """
    scorer, deltas = cache.scorer, cache.deltas
    cal_split = scorer.protocol.split_metrics["maxboxacc"]["calibration_split"]
    run = {"batch_size": batch_size, "num_workers": num_workers, "progress": progress}
    cached = cache.read()
    missing = [s for s in samples if s.id not in cached]
    if missing:
        found = split_hits(scorer, missing, deltas, desc="maxboxacc: uncached samples", **run)
        cached.update(zip((s.id for s in missing), found, strict=True))
    hits = np.stack([cached[s.id] for s in samples])
    calibration, cal_hits, cal_part = None, None, None
    if cal_split is not None:
        protocol = scorer.protocol
        cal_protocol = replace(protocol, dataset=replace(protocol.dataset, split=cal_split))
        loaded = load_split(cal_protocol, data_root, limit)
        cal_hits = split_hits(
            scorer, loaded.samples, deltas, desc=f"maxboxacc: calibration ({cal_split})", **run
        )
        calibration = {
            "split": cal_split,
            "fingerprint": dataset_fingerprint(loaded.samples, loaded.proposals),
        }
        cal_part = ([s.id for s in loaded.samples], cal_hits)
    data = hits_to_csv(([s.id for s in samples], hits), cal_part, deltas)
    section = {
        "name": "MaxBoxAccV2",
        "file": HITS_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
        "deltas": list(deltas),
        "thresholds": list(THRESHOLDS),
        "calibration": calibration,
        **maxboxacc_numbers(hits, cal_hits, deltas, THRESHOLDS),
    }
    return {"maxboxacc": section}, {HITS_FILE: data}
