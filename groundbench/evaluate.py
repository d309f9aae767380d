"""``groundbench evaluate``: protocol + method → per-sample records → report directory.

Reads like its stages: load the protocol's samples, resume from the record cache, score the
pending samples batch by batch (each rank its shard under ``torchrun``), then let rank 0
aggregate and write the report atomically.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from groundbench import __version__
from groundbench.evaluation.cache import RecordWriter, cache_dir, cache_key, read_records
from groundbench.evaluation.data import batches, dataset_fingerprint, load_samples
from groundbench.evaluation.outputs import (
    aggregate_records,
    environment,
    figure_writers,
    render_samples_csv,
    write_report_dir,
)
from groundbench.evaluation.ranks import join_world
from groundbench.evaluation.scoring import Scorer
from groundbench.methods import Method, resolve_method
from groundbench.protocol import Protocol, load_protocol
from groundbench.report import headline_lines

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    """What an evaluation wrote: the report directory, its report dict and headline lines."""

    out_dir: Path
    report: dict[str, Any]
    headline: list[str]


def evaluate(
    protocol: str | Protocol,
    method: str | Method,
    *,
    out_dir: str | Path,
    device: str = "cpu",
    batch_size: int = 32,
    num_workers: int = 0,
    limit: int | None = None,
    resume: bool = True,
    data_root: str | Path | None = None,
    overrides: tuple[str, ...] = (),
    progress: bool = True,
) -> EvaluationResult | None:
    """Evaluate ``method`` under ``protocol`` and write the report to ``out_dir``.

    Returns the result on rank 0 and None on the other ``torchrun`` ranks.
    """
    spec = method if isinstance(method, str) else method.name
    protocol = load_protocol(protocol, overrides) if isinstance(protocol, str) else protocol
    method = resolve_method(method) if isinstance(method, str) else method
    out_dir, dev = Path(out_dir), torch.device(device)
    world = join_world(dev)
    try:
        samples = load_samples(protocol, data_root, limit)
        if limit is None and hasattr(method, "check_ids"):
            method.check_ids([s.id for s in samples])
        data_fp, method_fp = dataset_fingerprint(samples), method.fingerprint()
        key, work = cache_key(protocol.hash, method_fp, data_fp), cache_dir(out_dir)
        if not resume and world.is_main:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        world.barrier()
        done = read_records(work, key)
        pending = [s for s in samples if s.id not in done][world.rank :: world.size]
        log.info(
            "%d of %d samples cached; scoring %d on rank %d",
            len(done),
            len(samples),
            len(pending),
            world.rank,
        )
        scorer = Scorer(protocol, method, dev)
        _score(
            scorer,
            pending,
            RecordWriter(work, key, world.rank),
            batch_size,
            num_workers,
            progress and world.is_main,
        )
        world.barrier()
        if not world.is_main:
            return None
        records = read_records(work, key)
        records = [records[s.id] for s in samples]
        tags = {s.id: s.tags for s in samples}
        metrics = aggregate_records(
            scorer.keys,
            records,
            [s.tags for s in samples],
            resamples=protocol.bootstrap.resamples,
            seed=protocol.bootstrap.seed,
        )
        samples_csv = render_samples_csv(scorer.keys, records, tags)
        report = _report(
            protocol,
            method,
            spec,
            samples,
            data_fp,
            method_fp,
            metrics,
            samples_csv,
            environment(dev, batch_size, num_workers, world.size),
        )
        write_report_dir(
            out_dir,
            work,
            report,
            samples_csv,
            figure_writers(scorer, samples, records, metrics, protocol.bootstrap.seed),
        )
        return EvaluationResult(out_dir, report, headline_lines(metrics))
    finally:
        world.close()


def _score(
    scorer: Scorer, pending, writer: RecordWriter, batch_size: int, num_workers: int, progress: bool
) -> None:
    with tqdm(
        total=len(pending), unit="sample", disable=not progress, desc="evaluate", dynamic_ncols=True
    ) as bar:
        for samples, images, errors in batches(
            pending,
            with_images=scorer.method.needs_images,
            batch_size=batch_size,
            num_workers=num_workers,
        ):
            writer.write(scorer.score(samples, images, errors))
            bar.update(len(samples))
    writer.close()


def _report(
    protocol, method, spec, samples, data_fp, method_fp, metrics, samples_csv, env
) -> dict[str, Any]:
    import hashlib

    ds = protocol.dataset
    return {
        "schema": 1,
        "groundbench_version": __version__,
        "protocol": {
            "name": protocol.name,
            "id": protocol.id,
            "hash": protocol.hash,
            "canonical": protocol.canonical,
        },
        "dataset": {
            "adapter": ds.adapter,
            "name": ds.name,
            "split": ds.split,
            "fingerprint": data_fp,
            "n_samples": len(samples),
        },
        "method": {
            "spec": spec,
            "name": method.name,
            "fingerprint": method_fp,
            "supervision": method.supervision,
        },
        "metrics": metrics,
        "samples": {
            "file": "samples.csv",
            "n": len(samples),
            "sha256": hashlib.sha256(samples_csv).hexdigest(),
        },
        "environment": env,
    }
