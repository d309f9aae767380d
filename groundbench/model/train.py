"""Training: data decoded once, steps that only index tensors, AdamW + warm-up + cosine, DDP.

:func:`train` is the orchestrator; :func:`train_steps` runs the optimiser steps. Each step
takes ``images_per_step`` images (per process) from a seeded per-epoch permutation and all
their (phrase, hidden word) pairs, so step ``s`` sees the same images whatever the restart.
Under ``torchrun`` (``WORLD_SIZE > 1``) each process takes its slice of the step's images
with DDP (NCCL on CUDA, gloo on CPU); rank 0 writes the files. A run directory holds
``model.safetensors`` (the checkpoint), ``train_state.pt`` (weights, optimiser and step in
one atomically replaced file, loaded with ``weights_only=True``), ``log.csv`` and ``loss.png``.
Snapshots are written every ``save_every`` steps, at the end, and when SIGTERM or SIGINT
stops the run; a non-empty run directory is only continued (``resume``) or replaced
whole (``overwrite``), never mixed with a new run.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from groundbench.device import resolve_device
from groundbench.errors import DataFormatError
from groundbench.model.augment import drop_query_words, grey_some, hide_patches, query_drop_prob
from groundbench.model.backbone import BACKBONE_PREFIX, fingerprint_files, load_backbone
from groundbench.model.config import Config
from groundbench.model.data import TrainingData, build_training_data, captions_fingerprint
from groundbench.model.network import GroundingModel
from groundbench.model.objective import chance_loss, compute_loss
from groundbench.model.rundir import (
    CHECKPOINT_NAME,
    STATE_NAME,
    TrainingInterrupted,
    check_resumable,
    prepare_run_dir,
    restore_snapshot,
    save_snapshot,
    stop_on_signals,
)
from groundbench.model.runlog import ScalarLog, plot_loss_curve
from groundbench.model.streaming import step_batches, step_images  # noqa: F401 (public here)
from groundbench.model.token_cache import ensure_token_cache
from groundbench.progress import progress_bar
from groundbench.types import CaptionRecord

log = logging.getLogger(__name__)
SNAPSHOTS_PER_RUN = 20  # save_every 0: a snapshot every 5% of the steps


@dataclass(frozen=True)
class TrainResult:
    """Where a run left its files, and how it went.

    Attributes:
        checkpoint: the run's ``model.safetensors``.
        steps: the run's total steps (``train.steps``), now done.
        start: the step this call started from (0, or the resumed snapshot's step).
        first_loss, final_loss: the first and last logged loss of this call (NaN if it ran
            no step: the run was already complete).
        seconds: this process's time in optimiser steps.
        images_per_s: images per second over all processes.
        rank: this process's rank (0 without torchrun); only rank 0 should report.
    """

    checkpoint: Path
    steps: int
    final_loss: float
    first_loss: float
    seconds: float
    images_per_s: float
    start: int = 0
    rank: int = 0

    @property
    def steps_run(self) -> int:
        """Optimiser steps this call ran (0 when the run was already complete)."""
        return self.steps - self.start


def save_interval(cfg: Config) -> int:
    """Steps between snapshots: ``train.save_every``, or 5% of the steps when it is 0.

    Example:
        >>> from groundbench.model import load_config
        >>> save_interval(load_config("small-cpu")), save_interval(load_config("tiny"))
        (200, 1)
    """
    t = cfg.train
    return t.save_every or max(1, math.ceil(t.steps / SNAPSHOTS_PER_RUN))


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine down to ``min_ratio``.

    Example:
        >>> [round(lr_factor(s, 10, 2, 0.0), 3) for s in (0, 1, 2, 10)]
        [0.5, 1.0, 1.0, 0.0]
    """
    if step < warmup:
        return (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))


def _optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.AdamW:
    t = cfg.train
    decay, no_decay, backbone_decay, backbone_no_decay = [], [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:  # a frozen backbone
            continue
        plain = p.ndim < 2 or "embed" in name or "kernels" in name
        if name.startswith(BACKBONE_PREFIX):
            (backbone_no_decay if p.ndim < 2 else backbone_decay).append(p)
        else:
            (no_decay if plain else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": t.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if backbone_decay or backbone_no_decay:  # a trainable backbone, at a lower rate
        lr = t.lr * t.backbone_lr_ratio
        groups += [
            {"params": backbone_decay, "weight_decay": t.weight_decay, "lr": lr},
            {"params": backbone_no_decay, "weight_decay": 0.0, "lr": lr},
        ]
    return torch.optim.AdamW(groups, lr=t.lr, betas=(0.9, 0.98))


def _setup_distributed(device: str) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, torch.device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return dist.get_rank(), world, torch.device("cuda", local)
    return dist.get_rank(), world, torch.device(device)


def autocast_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    """bf16 under ``precision: bf16``, or ``auto`` on CUDA; None (fp32) otherwise."""
    p = cfg.train.precision
    return torch.bfloat16 if p == "bf16" or (p == "auto" and device.type == "cuda") else None


def train_steps(
    model: torch.nn.Module,
    data: TrainingData,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    cfg: Config,
    *,
    start: int,
    rank: int = 0,
    world: int = 1,
    scalar_log: ScalarLog | None = None,
    on_step: Callable[[int], None] | None = None,
    progress: bool = True,
    should_stop: Callable[[], bool] | None = None,
    batches: Iterator[dict[str, torch.Tensor]] | None = None,
) -> tuple[list[float], int]:
    """Run optimiser steps ``start .. cfg.train.steps``; return the logged losses and the
    number of steps done.

    ``on_step(step)`` is called after each step (snapshots, validation); ``should_stop()``
    after it (every rank must give the same answer), ending the loop early. Losses stay on
    the device between log rows, so a step waits for the host only to size its relation
    groups. A log row holds the mean over the steps since the last row that had at least
    one (phrase, word) pair, averaged over the ranks; a row with no such step leaves the
    loss columns empty. ``batches`` yields each step's batch (:func:`step_batches`: streamed
    images or cached tokens); by default the steps index ``data``'s decoded images.
    """
    t = cfg.train
    device = data.target.device
    if batches is None:
        batches = step_batches(data, cfg, start=start, rank=rank, world=world, device=device)
    dtype = autocast_dtype(cfg, device)
    model.train()
    bar = progress_bar(
        total=t.steps,
        initial=start,
        desc="train",
        unit="step",
        disable=not progress or rank != 0,
    )
    sums: dict[str, torch.Tensor] = {}
    count, tic, logged = 0, time.perf_counter(), []
    counted = torch.zeros((), device=device)  # steps of the window that had a pair
    params = [p for p in model.parameters() if p.requires_grad]
    done = start
    for step, batch in zip(range(start, t.steps), batches, strict=False):
        if t.grayscale_prob > 0 and "images" in batch:
            batch["images"] = grey_some(batch["images"], t.grayscale_prob, seed=t.seed, step=step)
        if t.query_drop > 0:
            p = query_drop_prob(step, t.steps, t.query_drop, t.query_drop_schedule)
            batch["query"] = drop_query_words(batch["query"], p, seed=t.seed, step=step)
        if t.patch_mask > 0:
            batch["masked_images"], batch["hidden"] = hide_patches(
                batch["images"], t.patch_mask, cfg.model.token_stride, seed=t.seed, step=step
            )
        loss, parts = compute_loss(model, batch, cfg, autocast_dtype=dtype)
        if world > 1:  # every parameter in the graph (a zero gradient), as DDP expects
            loss = loss + 0.0 * torch.stack([p.reshape(-1)[0] for p in params]).sum()
        loss.backward()
        if t.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        has_pair = (parts.pop("pairs") > 0).float()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v * has_pair
        counted = counted + has_pair
        count += 1
        done = step + 1
        bar.update(1)
        if done % t.log_every == 0 or done == t.steps:
            elapsed = time.perf_counter() - tic
            means = _window_means(sums, counted, world)
            row = {
                "step": done,
                "lr": scheduler.get_last_lr()[0],
                **means,
                "images_per_s": count * t.images_per_step * world / max(elapsed, 1e-9),
            }
            if row["loss"] is not None:
                logged.append(row["loss"])
                bar.set_postfix(loss=f"{row['loss']:.3f}", refresh=False)
            if scalar_log is not None:
                scalar_log.write(row)
            sums, count, tic = {}, 0, time.perf_counter()
            counted = torch.zeros((), device=device)
        if on_step is not None:
            on_step(done)
        if should_stop is not None and should_stop():
            break
    bar.close()
    return logged, done


def _window_means(
    sums: dict[str, torch.Tensor], counted: torch.Tensor, world: int
) -> dict[str, float | None]:
    """Each loss term's mean over the window's steps with a pair, over every rank."""
    keys = list(sums)  # the objective's order, the same on every rank
    packed = torch.stack([counted, *(sums[k].float() for k in keys)])
    if world > 1:
        dist.all_reduce(packed)
    n, *totals = packed.tolist()
    return {k: (v / n if n > 0 else None) for k, v in zip(keys, totals, strict=True)}


def train(
    config: Config,
    records: Sequence[CaptionRecord],
    out_dir: str | Path,
    *,
    device: str = "cpu",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_step: Callable[[int, GroundingModel, TrainingData], None] | None = None,
    training_data: dict | None = None,
) -> TrainResult:
    """Train a model on image–caption records and write its checkpoint to ``out_dir``.

    Args:
        config: model + training configuration.
        records: training captions (CaptionRecords; no boxes exist in them).
        out_dir: run directory (created). A directory that already holds files is refused
            unless ``resume`` or ``overwrite`` says what to do with them.
        device: ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun each rank takes its LOCAL_RANK).
        resume: continue from ``out_dir``'s last snapshot. The snapshot must have the same
            config (bookkeeping keys and ``train.steps`` aside: a larger ``steps`` extends a
            run, its cosine schedule recomputed for the new total) and the same captions;
            this is checked before any image is decoded.
        overwrite: delete the run's files in ``out_dir`` (every artefact together) first.
        progress: show progress bars on stderr (rank 0).
        on_step: called as ``on_step(step, model, data)`` after every step (rank 0), e.g. to
            validate during a benchmark; the model is left in train mode afterwards.
        training_data: what the records are (``adapter``, ``options``, ``split``), stored in
            the checkpoint for model cards.

    Raises:
        RunDirError: ``out_dir`` holds files and neither ``resume`` nor ``overwrite`` is set,
            or ``resume`` finds no snapshot.
        CheckpointError: ``resume`` found a snapshot that does not match ``config`` or the data.
        DataFormatError: too few captions for one step.
        TrainingInterrupted: SIGTERM or SIGINT stopped the run (after a snapshot).
        DeviceError: ``device`` is no torch device or is missing on this machine.
    """
    resolve_device(device)
    out = Path(out_dir)
    t = config.train
    if t.threads > 0:
        torch.set_num_threads(t.threads)
    rank, world, dev = _setup_distributed(device)
    records = list(records)[: t.max_captions or None]
    state = prepare_run_dir(out, resume=resume, overwrite=overwrite, rank=rank, world=world)
    pretrained = config.model.pretrained
    backbone_fp = fingerprint_files(config.model)[0] if pretrained else None
    if state is not None:
        check_resumable(out / STATE_NAME, state, config, captions_fingerprint(records), backbone_fp)
        if int(state["step"]) >= t.steps:
            log.warning(
                "%s is already complete (step %d of %d); raise train.steps to continue it",
                out,
                state["step"],
                t.steps,
            )
            nan = float("nan")
            return TrainResult(out / CHECKPOINT_NAME, int(state["step"]), nan, nan, 0.0, 0.0,
                               start=int(state["step"]), rank=rank)  # fmt: skip
    cached = config.cached_tokens
    decode = t.loader == "memory" and not cached
    show = progress and rank == 0
    data = build_training_data(records, config, progress=show, decode=decode).to(dev)
    if len(data) < t.images_per_step * world:
        raise DataFormatError(
            f"{len(data)} training images are too few for images_per_step "
            f"{t.images_per_step} × {world} process(es); lower train.images_per_step"
        )
    backbone = load_backbone(config.model) if pretrained else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(t.seed)
        model = GroundingModel(config.model, data.vocab.types, backbone).to(dev)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, t.steps, t.warmup_steps, t.min_lr_ratio)
    )
    start = 0
    if state is not None:
        start = restore_snapshot(state, model, optimizer, scheduler, dev)
        log.info("resuming %s at step %d of %d", out, start, t.steps)
        if int(state["config"]["train"]["steps"]) != t.steps:
            log.warning(
                "train.steps %s → %d: the learning-rate schedule is recomputed for the new total",
                state["config"]["train"]["steps"], t.steps,
            )  # fmt: skip
    wrapped: torch.nn.Module = torch.compile(model) if t.compile else model
    if world > 1:
        # a step without relation words would leave the kernels out of the graph; each step
        # adds them with weight 0 (train_steps), so DDP need not search for unused ones
        wrapped = DistributedDataParallel(wrapped)
    out.mkdir(parents=True, exist_ok=True)
    cache = None
    if cached:
        cache = ensure_token_cache(
            out, data, model.encoder.backbone, config, device=dev, rank=rank, world=world,
            autocast_dtype=autocast_dtype(config, dev), progress=progress,
        )  # fmt: skip
    batches = step_batches(data, config, start=start, rank=rank, world=world, device=dev,
                           cache=cache)  # fmt: skip
    scalar_log = ScalarLog(out, resume_step=start) if rank == 0 else None
    every = save_interval(config)
    meta = dict(training_data or {})
    saved = [start]

    def snapshot(step: int) -> None:
        if rank == 0 and saved[-1] != step:
            save_snapshot(out, step, model, optimizer, scheduler, config, data, meta)
            saved.append(step)

    def after_step(step: int) -> None:
        if rank != 0:
            return
        if step == t.steps or step % every == 0:
            snapshot(step)
        if on_step is not None:
            on_step(step, model, data)
            model.train()

    tic = time.perf_counter()
    with stop_on_signals(world, dev) as stop:
        losses, done = train_steps(
            wrapped,
            data,
            optimizer,
            scheduler,
            config,
            start=start,
            rank=rank,
            world=world,
            scalar_log=scalar_log,
            on_step=after_step,
            progress=progress,
            should_stop=stop.requested,
            batches=batches,
        )
    seconds = time.perf_counter() - tic
    if scalar_log is not None:
        scalar_log.close()
        plot_loss_curve(scalar_log.path, out / "loss.png", chance=chance_loss(data, config))
    if done < t.steps:
        snapshot(done)
        raise TrainingInterrupted(
            f"training stopped by {stop.name} at step {done} of {t.steps}; a snapshot of "
            f"that step is in {out}: continue with --resume"
        )
    images = (t.steps - start) * t.images_per_step * world
    return TrainResult(
        out / CHECKPOINT_NAME,
        t.steps,
        losses[-1] if losses else float("nan"),
        losses[0] if losses else float("nan"),
        seconds,
        images / max(seconds, 1e-9),
        start=start,
        rank=rank,
    )
