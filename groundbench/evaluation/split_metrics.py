"""Split-level metrics: MaxBoxAccV2 over the evaluated split, its thresholds calibrated on another.

Runs after the per-sample scoring, on rank 0: the method and the protocol's pipeline go once
more over the evaluated split and over the calibration split (the protocol's
``split_metrics.maxboxacc.calibration_split``, loaded with the same selection and ``limit``),
and every sample's hits over the threshold sweep (:func:`~groundbench.metrics.maxboxacc.box_hits`)
go into ``maxboxacc_hits.csv`` (:mod:`groundbench.report.split_metrics`). These hits are not
in the record cache: a resumed run computes them again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from groundbench.evaluation.data import batches, dataset_fingerprint, load_split
from groundbench.evaluation.scoring import Scorer
from groundbench.metrics.maxboxacc import THRESHOLDS, box_hits
from groundbench.progress import progress_bar
from groundbench.report.split_metrics import HITS_FILE, hits_to_csv, maxboxacc_numbers
from groundbench.types import GroundingSample


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
                Y, X = maps.heatmap.shape[1:]
                boxes, count, _ = scorer.ground_truth(good, Y, X)
                hits = box_hits(maps.heatmap, maps.valid, boxes, count, THRESHOLDS, deltas)
                out[[row + i for i in ok]] = hits
            row += len(group)
            bar.update(len(group))
    return out


def split_metrics_section(
    scorer: Scorer,
    samples: Sequence[GroundingSample],
    *,
    data_root: str | Path | None,
    limit: int | None,
    batch_size: int,
    num_workers: int,
    progress: bool,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``report.json``'s ``split_metrics`` section and the files it names (empty when unused)."""
    protocol = scorer.protocol
    cfg = protocol.split_metrics
    if not cfg:
        return {}, {}
    deltas, cal_split = cfg["maxboxacc"]["deltas"], cfg["maxboxacc"]["calibration_split"]
    run = {"batch_size": batch_size, "num_workers": num_workers, "progress": progress}
    hits = split_hits(scorer, samples, deltas, desc="maxboxacc: evaluated split", **run)
    calibration, cal_hits, cal_part = None, None, None
    if cal_split is not None:
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
