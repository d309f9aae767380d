"""``groundbench evaluate``: protocol + method → per-sample records → report directory.

Reads like its stages: load the protocol's samples, resume from the record cache, score the
pending samples batch by batch (each rank its shard under ``torchrun``), then let rank 0
aggregate and write the report atomically.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundbench import __version__
from groundbench.device import resolve_device
from groundbench.errors import GroundbenchError, MethodError
from groundbench.evaluation.cache import RecordWriter, cache_key, read_records
from groundbench.evaluation.card import model_card_section
from groundbench.evaluation.data import (
    LoadedSplit,
    batches,
    cluster_ids,
    dataset_fingerprint,
    load_split,
)
from groundbench.evaluation.gallery import GalleryKeeper
from groundbench.evaluation.outputs import environment, figure_writers, write_report_dir
from groundbench.evaluation.scoring import Scorer
from groundbench.evaluation.split_metrics import SplitCache, split_metrics_section
from groundbench.evaluation.workdir import (
    OutputDirError,
    RunLock,
    check_out_dir,
    remove_if_unused,
    work_dir,
)
from groundbench.evaluation.world import World, join_world
from groundbench.methods import Method, resolve_method
from groundbench.progress import progress_bar
from groundbench.protocol import Protocol, load_protocol
from groundbench.report import headline_lines
from groundbench.report.records import (
    CLUSTER_PREFIX,
    Records,
    aggregates_to_dict,
    size_mismatches,
)
from groundbench.report.split_metrics import split_metric_lines

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

    Raises:
        DeviceError: ``device`` is no torch device or is missing on this machine.
        OutputDirError: ``out_dir`` exists and is not a report directory, or another
            evaluation is writing it.
    """
    dev = resolve_device(device)
    spec = method if isinstance(method, str) else method.name
    protocol = load_protocol(protocol, overrides) if isinstance(protocol, str) else protocol
    method = resolve_method(method) if isinstance(method, str) else method
    shown, out_dir = Path(out_dir), check_out_dir(out_dir)
    scorer = Scorer(protocol, method, dev)
    world = join_world(dev)
    lock = RunLock(out_dir)
    work = work_dir(out_dir)
    try:
        loaded = load_split(protocol, data_root, limit)
        samples = loaded.samples
        if limit is None and hasattr(method, "check_ids"):
            method.check_ids([s.id for s in samples])
        scorer.scoring.proposals = loaded.proposals
        data_fp = dataset_fingerprint(samples, loaded.proposals)
        method_fp = method.fingerprint()
        key = cache_key(protocol.hash, method_fp, data_fp)
        _take_lock(world, lock, work, key, resume)
        done = read_records(work, key, scorer.keys)
        _check_resumable(method, done.ids, work)
        if not getattr(method, "fingerprint_complete", True):
            log.warning(
                "%s: the method fingerprint covers its code only, not its weights; this report "
                "cannot join a leaderboard. To fix it, %s",
                method.name,
                _hint(method),
            )
        world.barrier()  # every rank has read the cache before any rank appends to it
        cached = set(done.ids)
        pending = [s for s in samples if s.id not in cached][world.rank :: world.size]
        log.info(
            "%d of %d samples cached; scoring %d on rank %d",
            len(cached),
            len(samples),
            len(pending),
            world.rank,
        )
        first = scorer.suite.specs[0]
        keeper = GalleryKeeper(first.key, first.higher_is_better, protocol.bootstrap.seed)
        split_cache = SplitCache(scorer, work, key) if protocol.split_metrics else None
        _score(
            scorer,
            pending,
            RecordWriter(work, key, world.rank),
            keeper,
            batch_size,
            num_workers,
            progress and world.is_main,
            f"evaluate {protocol.name} × {method.name}",
            split_cache,
            world.rank,
        )
        world.barrier()
        if not world.is_main:
            return None
        records = _in_sample_order(read_records(work, key, scorer.keys), samples, work)
        cluster = protocol.bootstrap.cluster
        if cluster is not None:
            records = records.with_extra(CLUSTER_PREFIX + cluster, cluster_ids(samples, cluster))
        aggregates = records.aggregate(
            resamples=protocol.bootstrap.resamples, seed=protocol.bootstrap.seed, cluster=cluster
        )
        metrics = aggregates_to_dict(aggregates)
        samples_csv = records.to_csv()
        split_metrics, split_files = {}, {}
        if split_cache is not None:
            split_metrics, split_files = split_metrics_section(
                split_cache,
                samples,
                data_root=data_root,
                limit=limit,
                batch_size=batch_size,
                num_workers=num_workers,
                progress=progress,
            )
        report = _report(
            protocol,
            method,
            spec,
            loaded,
            limit,
            data_fp,
            method_fp,
            metrics,
            samples_csv,
            environment(dev, batch_size, num_workers, world.size),
        )
        if protocol.dataset.on_size_mismatch == "undefined":
            report["dataset"]["size_mismatches"] = size_mismatches(records)
        notes = method_notes(records, samples)
        if notes:
            report["method"]["notes"] = notes
        if split_metrics:
            report["split_metrics"] = split_metrics
        write_report_dir(
            out_dir,
            work,
            report,
            samples_csv,
            figure_writers(scorer, samples, records, metrics, protocol.bootstrap.seed, keeper),
            split_files,
        )
        shutil.rmtree(work, ignore_errors=True)
        _warn_size_mismatches(report["dataset"])
        headline = headline_lines(metrics) + split_metric_lines(split_metrics)
        return EvaluationResult(shown, report, headline)
    except BaseException:
        if world.is_main and lock.held:
            remove_if_unused(work)
        raise
    finally:
        lock.release()
        world.close()


def _warn_size_mismatches(dataset: dict[str, Any]) -> None:
    """Log, last, how many samples were left unscored because their image was resized."""
    found = dataset.get("size_mismatches")
    if not found or not found["count"]:
        return
    n, shown = found["count"], ", ".join(map(repr, found["examples"]))
    more = ", …" if n > len(found["examples"]) else ""
    log.warning(
        "%d of %d samples were not scored: their image's real size differs from their record's, "
        "so they count as undefined (image_size_mismatch) under dataset.on_size_mismatch: "
        "undefined (first: %s%s); `groundbench data check` lists every such record",
        n,
        dataset["n_samples"],
        shown,
        more,
    )


def _take_lock(world: World, lock: RunLock, work: Path, key: str, resume: bool) -> None:
    """Rank 0 takes the lock of ``--out`` (and clears the cache without resume); all ranks learn."""
    error = None
    if world.is_main:
        try:
            lock.acquire()
            if not resume:
                for path in work.glob("records.*.jsonl"):
                    path.unlink()
        except OutputDirError as exc:
            error = str(exc)
    error = world.share(error)
    if error is not None:
        raise OutputDirError(error)


def _check_resumable(method: Method, cached_ids, work: Path) -> None:
    """Refuse to resume records of a method whose fingerprint does not cover its weights."""
    if not cached_ids or getattr(method, "fingerprint_complete", True):
        return
    raise MethodError(
        f"{work} holds {len(cached_ids)} records of {method.name}, whose fingerprint covers its "
        "code only, so they may come from other weights and are not resumed; rerun with "
        f"--no-resume, or {_hint(method)}"
    )


def _hint(method: Method) -> str:
    hint = getattr(method, "incomplete_hint", None)
    return hint() if hint else "declare what the method's maps depend on (docs/plugins.md)"


def method_notes(records: Records, samples) -> dict[str, int]:
    """Count the tags the method added to the samples (``RawMaps.notes``), by tag.

    Example:
        >>> from types import SimpleNamespace as S
        >>> r = Records((), ("a", "b"), [[], []], [[], []], ({"x", "text:no-referent"}, {"x"}))
        >>> method_notes(r, [S(tags={"x"}), S(tags={"x"})])
        {'text:no-referent': 1}
    """
    counts: dict[str, int] = {}
    for tags, sample in zip(records.tags, samples, strict=True):
        for tag in sorted(tags - sample.tags):
            counts[tag] = counts.get(tag, 0) + 1
    return dict(sorted(counts.items()))


def _in_sample_order(records: Records, samples, work: Path) -> Records:
    row = {sid: i for i, sid in enumerate(records.ids)}
    missing = [s.id for s in samples if s.id not in row]
    if missing:
        raise GroundbenchError(
            f"{work}: no record for {len(missing)} samples after scoring (first: "
            f"{missing[:3]}); rerun the same command to score them"
        )
    return records.take([row[s.id] for s in samples])


def _score(
    scorer: Scorer,
    pending,
    writer: RecordWriter,
    keeper: GalleryKeeper,
    batch_size: int,
    num_workers: int,
    progress: bool,
    desc: str,
    split_cache: SplitCache | None,
    rank: int,
) -> None:
    if split_cache is not None:
        split_cache.open(rank)
    with progress_bar(
        total=len(pending),
        unit="sample",
        disable=not progress,
        desc=desc,
        dynamic_ncols=True,
    ) as bar:
        try:
            for samples, images, unread in batches(
                pending,
                with_images=scorer.method.needs_images,
                batch_size=batch_size,
                num_workers=num_workers,
                on_size_mismatch=scorer.protocol.dataset.on_size_mismatch,
            ):
                scored = scorer.score(samples, images, unread)
                writer.write(scored.records)
                if split_cache is not None:
                    split_cache.offer(samples, scored)
                keeper.offer(scored.records, scored.maps)
                bar.update(len(samples))
        finally:
            writer.close()
            if split_cache is not None:
                split_cache.close()


def _report(
    protocol,
    method,
    spec,
    loaded: LoadedSplit,
    limit,
    data_fp,
    method_fp,
    metrics,
    samples_csv,
    env,
) -> dict[str, Any]:
    import hashlib

    ds, samples = protocol.dataset, loaded.samples
    return {
        "schema": 1,
        "groundbench_version": __version__,
        "protocol": {
            "name": protocol.name,
            "id": protocol.id,
            "hash": protocol.hash,
            "canonical": protocol.canonical,
            "overrides": list(protocol.overrides),
        },
        "dataset": {
            "adapter": ds.adapter,
            "name": ds.name,
            "split": ds.split,
            "fingerprint": data_fp,
            "n_samples": len(samples),
            "limit": limit,
            "warnings": list(loaded.warnings),
            "skipped": dict(loaded.skipped),
            "control": loaded.control,
        },
        "method": {
            "spec": spec,
            "name": method.name,
            "fingerprint": method_fp,
            "supervision": method.supervision,
            "fingerprint_complete": bool(getattr(method, "fingerprint_complete", True)),
            **({"settings": method.settings()} if hasattr(method, "settings") else {}),
        },
        "model_card": model_card_section(method, samples),
        "metrics": metrics,
        "samples": {
            "file": "samples.csv",
            "n": len(samples),
            "sha256": hashlib.sha256(samples_csv).hexdigest(),
        },
        "environment": env,
    }
