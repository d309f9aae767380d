"""Split-level metrics: MaxBoxAccV2 (thresholds calibrated on another split) and PxAP.

Every scored batch of the evaluated split also yields its samples' hits over the threshold
sweep (:func:`~groundbench.metrics.maxboxacc.box_hits`) and, for PxAP, the histograms of
their mask and other pixels' normalised scores
(:func:`~groundbench.metrics.maxboxacc.pixel_histograms`), from the maps the per-sample
metrics saw; they go to a cache beside the records (the same append-only files, keyed apart),
so a resumed run keeps them and every ``torchrun`` rank writes its own. Then rank 0 runs the
method and the pipeline over the calibration split (the protocol's
``split_metrics.maxboxacc.calibration_split``, loaded with the same selection and ``limit``)
and writes the files of :mod:`groundbench.report.split_metrics`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from groundbench.errors import DataFormatError
from groundbench.evaluation.cache import RecordWriter, read_records
from groundbench.evaluation.data import batches, dataset_fingerprint, load_split
from groundbench.evaluation.scoring import ScoredBatch, Scorer
from groundbench.metrics.maxboxacc import PXAP_EDGES, THRESHOLDS, box_hits, pixel_histograms
from groundbench.postprocess import ProcessedMaps
from groundbench.progress import progress_bar
from groundbench.protocol_scorer import decode_mask
from groundbench.report.records import Records
from groundbench.report.split_metrics import (
    HITS_FILE,
    PXAP_FILE,
    delta_key,
    hits_to_csv,
    maxboxacc_numbers,
    pxap_numbers,
    pxap_to_csv,
)
from groundbench.types import GroundingSample

BINS = len(PXAP_EDGES) - 1


class SplitCache:
    """The evaluated split's per-sample inputs of the split-level metrics, cached beside its
    records: a cached row is a record whose values are the sample's MaxBoxAccV2 hits
    (``T × D`` values 1.0 or 0.0) and PxAP histograms (``2 × bins`` counts), under a key
    derived from the records' own, so the records' resume and ``--no-resume`` rules apply.
    """

    def __init__(self, scorer: Scorer, folder: Path, key: str) -> None:
        cfg = scorer.protocol.split_metrics
        self.scorer = scorer
        self.folder = folder
        self.deltas = cfg["maxboxacc"]["deltas"] if "maxboxacc" in cfg else []
        self.pxap = "pxap" in cfg
        self.key = hashlib.sha256(f"{key}\0split_metrics".encode()).hexdigest()[:16]
        hits = [f"hits@{delta_key(d)}:{t:.2f}" for d in self.deltas for t in THRESHOLDS]
        hist = [f"pxap:{k}:{b}" for k in ("pos", "neg") for b in range(BINS)] if self.pxap else []
        self.columns = (*hits, *hist)
        self._writer: RecordWriter | None = None

    def open(self, rank: int) -> None:
        """Start appending this rank's rows."""
        self._writer = RecordWriter(self.folder, self.key, rank)

    def rows(self, samples: Sequence[GroundingSample], maps: ProcessedMaps) -> np.ndarray:
        """``(B, columns)`` float64 rows of ``samples`` (in ``maps.ids`` order)."""
        Y, X = maps.heatmap.shape[1:]
        parts = []
        if self.deltas:
            boxes, count, _ = self.scorer.ground_truth(samples, Y, X)
            hits = box_hits(maps.heatmap, maps.valid, boxes, count, THRESHOLDS, self.deltas)
            parts.append(hits.transpose(0, 2, 1).reshape(len(samples), -1))  # B (D T)
        if self.pxap:
            masks = torch.zeros(len(samples), Y, X, dtype=torch.bool)
            for i, s in enumerate(samples):
                if s.mask is None:
                    raise DataFormatError(
                        f"sample {s.id!r} has no mask, which split_metrics.pxap scores against; "
                        "remove pxap from the protocol for this dataset"
                    )
                h, w = self.scorer.size_of(s)
                masks[i, :h, :w] = decode_mask(s, h, w)
            parts.extend(pixel_histograms(maps.heatmap, maps.valid, masks))
        return np.concatenate([p.astype(np.float64) for p in parts], axis=1)

    def offer(self, samples: Sequence[GroundingSample], scored: ScoredBatch) -> None:
        """Cache the rows of a scored batch (a sample whose image failed: all zeros)."""
        values = np.zeros((len(samples), len(self.columns)))
        if scored.maps is not None:
            row = {s.id: i for i, s in enumerate(samples)}
            good = [samples[row[sid]] for sid in scored.maps.ids]
            values[[row[s.id] for s in good]] = self.rows(good, scored.maps)
        codes = np.zeros(values.shape, dtype=np.int8)
        ids, tags = tuple(s.id for s in samples), tuple(s.tags for s in samples)
        self._writer.write(Records(self.columns, ids, values, codes, tags))

    def close(self) -> None:
        """Close this rank's file."""
        if self._writer is not None:
            self._writer.close()

    def read(self) -> dict[str, np.ndarray]:
        """``{sample id: row}`` cached by every rank."""
        cached = read_records(self.folder, self.key, self.columns)
        return dict(zip(cached.ids, cached.values, strict=True))

    def hits(self, rows: np.ndarray) -> np.ndarray:
        """``(N, T, D)`` bool hits from ``(N, columns)`` rows."""
        n, t = len(rows), len(THRESHOLDS)
        return (
            rows[:, : t * len(self.deltas)].reshape(n, len(self.deltas), t).transpose(0, 2, 1) > 0.5
        )

    def histograms(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(positives, negatives)``, each ``(N, bins)`` int64, from ``(N, columns)`` rows."""
        start = len(THRESHOLDS) * len(self.deltas)
        counts = np.rint(rows[:, start:]).astype(np.int64)
        return counts[:, :BINS], counts[:, BINS:]


def split_rows(
    cache: SplitCache,
    samples: Sequence[GroundingSample],
    *,
    batch_size: int,
    num_workers: int,
    desc: str,
    progress: bool,
) -> np.ndarray:
    """``(N, columns)`` rows of ``samples`` through the method; a failed image gives zeros."""
    scorer = cache.scorer
    out = np.zeros((len(samples), len(cache.columns)))
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
                out[[row + i for i in ok]] = cache.rows(good, maps)
            row += len(group)
            bar.update(len(group))
    return out


def split_metrics_section(
    cache: SplitCache,
    samples: Sequence[GroundingSample],
    *,
    data_root: str | Path | None,
    limit: int | None,
    batch_size: int,
    num_workers: int,
    progress: bool,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``report.json``'s ``split_metrics`` section and the files it names.

    The evaluated split's rows come from ``cache``; a sample missing there (its record was
    cached by a run that stopped before its row was) is run through the method again.
    """
    scorer, deltas = cache.scorer, cache.deltas
    run = {"batch_size": batch_size, "num_workers": num_workers, "progress": progress}
    cached = cache.read()
    missing = [s for s in samples if s.id not in cached]
    if missing:
        found = split_rows(cache, missing, desc="split metrics: uncached samples", **run)
        cached.update(zip((s.id for s in missing), found, strict=True))
    rows = np.stack([cached[s.id] for s in samples])
    ids = [s.id for s in samples]
    section: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if cache.pxap:
        pos, neg = cache.histograms(rows)
        data = pxap_to_csv(ids, pos, neg)
        files[PXAP_FILE] = data
        section["pxap"] = {
            "name": "PxAP",
            "file": PXAP_FILE,
            "sha256": hashlib.sha256(data).hexdigest(),
            "edges": list(PXAP_EDGES),
            **pxap_numbers(pos, neg),
        }
    if not deltas:
        return section, files
    hits = cache.hits(rows)
    cal_split = scorer.protocol.split_metrics["maxboxacc"]["calibration_split"]
    calibration, cal_hits, cal_part = None, None, None
    if cal_split is not None:
        protocol = scorer.protocol
        cal_protocol = replace(protocol, dataset=replace(protocol.dataset, split=cal_split))
        loaded = load_split(cal_protocol, data_root, limit)
        cal_rows = split_rows(
            cache, loaded.samples, desc=f"maxboxacc: calibration ({cal_split})", **run
        )
        cal_hits = cache.hits(cal_rows)
        calibration = {
            "split": cal_split,
            "fingerprint": dataset_fingerprint(loaded.samples, loaded.proposals),
        }
        cal_part = ([s.id for s in loaded.samples], cal_hits)
    data = hits_to_csv((ids, hits), cal_part, deltas)
    files[HITS_FILE] = data
    section["maxboxacc"] = {
        "name": "MaxBoxAccV2",
        "file": HITS_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
        "deltas": list(deltas),
        "thresholds": list(THRESHOLDS),
        "calibration": calibration,
        **maxboxacc_numbers(hits, cal_hits, deltas, THRESHOLDS),
    }
    return section, files
