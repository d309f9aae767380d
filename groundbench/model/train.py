"""Training: data decoded once, steps that only index tensors, AdamW + warm-up + cosine, DDP.

:func:`train` is the orchestrator; :func:`train_steps` runs the optimiser steps. Each step
takes ``images_per_step`` images (per process) from a seeded per-epoch permutation and all
their (phrase, hidden word) pairs, so step ``s`` sees the same images whatever the restart.
Under ``torchrun`` (``WORLD_SIZE > 1``) each process takes its slice of the step's images
with DDP (NCCL on CUDA, gloo on CPU); rank 0 writes the files. A run directory holds
``model.safetensors`` (the checkpoint), ``train_state.pt`` (weights, optimiser and step in
one atomically replaced file, loaded with ``weights_only=True``), ``log.csv`` and ``loss.png``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from groundbench.device import resolve_device
from groundbench.errors import CheckpointError, DataFormatError
from groundbench.model.checkpoint import save_checkpoint
from groundbench.model.config import Config
from groundbench.model.data import TrainingData, build_training_data
from groundbench.model.network import GroundingModel
from groundbench.model.objective import compute_loss
from groundbench.model.runlog import ScalarLog, plot_loss_curve
from groundbench.progress import progress_bar
from groundbench.types import CaptionRecord

log = logging.getLogger(__name__)
CHECKPOINT_NAME = "model.safetensors"
STATE_NAME = "train_state.pt"


@dataclass(frozen=True)
class TrainResult:
    """Where a run left its files, and how it went (``seconds``: this process's step time)."""

    checkpoint: Path
    steps: int
    final_loss: float
    first_loss: float
    seconds: float
    images_per_s: float


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


def step_images(
    step: int, n_images: int, per_step: int, rank: int, world: int, seed: int
) -> torch.Tensor:
    """Return the image indices ``(per_step,)`` of ``step`` for ``rank``.

    Each epoch is a permutation seeded by ``(seed, epoch)``; an epoch holds
    ``n_images // (per_step * world)`` steps, and the ranks take disjoint slices.

    Example:
        >>> step_images(0, 10, 2, 0, 1, 0).tolist() != step_images(1, 10, 2, 0, 1, 0).tolist()
        True
    """
    per_epoch = n_images // (per_step * world)
    epoch, within = divmod(step, per_epoch)
    perm = torch.randperm(n_images, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    start = (within * world + rank) * per_step
    return perm[start : start + per_step]


def grey_some(images: torch.Tensor, prob: float, *, seed: int, step: int) -> torch.Tensor:
    """Replace each image ``(B, 3, S, S)`` by its channel mean with probability ``prob``
    (seeded by ``seed`` and ``step``, so a resumed run draws the same images)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    pick = (torch.rand(images.shape[0], generator=g) < prob).to(images.device)
    grey = images.mean(1, keepdim=True).expand_as(images)
    return torch.where(pick[:, None, None, None], grey, images)


def _optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "embed" in name or "kernels" in name else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.train.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.train.lr, betas=(0.9, 0.98))


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
) -> list[float]:
    """Run optimiser steps ``start .. cfg.train.steps``; return the logged losses.

    ``on_step(step)`` is called after each step (snapshots, validation). Losses stay on the
    device between log rows, so a step waits for the host only to size its relation groups.
    """
    t = cfg.train
    device = data.images.device
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
    for step in range(start, t.steps):
        index = step_images(step, len(data), t.images_per_step, rank, world, t.seed)
        batch = data.batch(index.to(device))
        if t.grayscale_prob > 0:
            batch["images"] = grey_some(batch["images"], t.grayscale_prob, seed=t.seed, step=step)
        loss, parts = compute_loss(model, batch, cfg, autocast_dtype=dtype)
        loss.backward()
        if t.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        done = step + 1
        bar.update(1)
        if done % t.log_every == 0 or done == t.steps:
            elapsed = time.perf_counter() - tic
            row = {
                "step": done,
                "lr": scheduler.get_last_lr()[0],
                **{k: float(v) / count for k, v in sums.items()},
                "images_per_s": count * t.images_per_step * world / max(elapsed, 1e-9),
            }
            logged.append(row["loss"])
            bar.set_postfix(loss=f"{row['loss']:.3f}", refresh=False)
            if scalar_log is not None:
                scalar_log.write(row)
            sums, count, tic = {}, 0, time.perf_counter()
        if on_step is not None:
            on_step(done)
    bar.close()
    return logged


def train(
    config: Config,
    records: Sequence[CaptionRecord],
    out_dir: str | Path,
    *,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[int, GroundingModel, TrainingData], None] | None = None,
) -> TrainResult:
    """Train a model on image–caption records and write its checkpoint to ``out_dir``.

    Args:
        config: model + training configuration.
        records: training captions (CaptionRecords; no boxes exist in them).
        out_dir: run directory (created).
        device: ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun each rank takes its LOCAL_RANK).
        resume: continue from ``out_dir``'s last snapshot if there is one.
        progress: show progress bars on stderr (rank 0).
        on_step: called as ``on_step(step, model, data)`` after every step (rank 0), e.g. to
            validate during a benchmark; the model is left in train mode afterwards.

    Raises:
        CheckpointError: ``resume`` found a snapshot that does not match ``config`` or the data.
        DataFormatError: too few captions for one step.
        DeviceError: ``device`` is no torch device or is missing on this machine.
    """
    resolve_device(device)
    out = Path(out_dir)
    t = config.train
    if t.threads > 0:
        torch.set_num_threads(t.threads)
    rank, world, dev = _setup_distributed(device)
    records = list(records)[: t.max_captions or None]
    data = build_training_data(records, config, progress=progress and rank == 0).to(dev)
    if len(data) < t.images_per_step * world:
        raise DataFormatError(
            f"{len(data)} training images are too few for images_per_step "
            f"{t.images_per_step} × {world} process(es); lower train.images_per_step"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(t.seed)
        model = GroundingModel(config.model, data.vocab.types).to(dev)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, t.steps, t.warmup_steps, t.min_lr_ratio)
    )
    start = (
        _resume(out, model, optimizer, scheduler, config, data.fingerprint, dev) if resume else 0
    )
    wrapped: torch.nn.Module = torch.compile(model) if t.compile else model
    if world > 1:
        # a step without relation words leaves the kernels unused: let DDP find them
        wrapped = DistributedDataParallel(wrapped, find_unused_parameters=True)
    scalar_log = ScalarLog(out, resume=resume and start > 0) if rank == 0 else None
    out.mkdir(parents=True, exist_ok=True)

    def after_step(step: int) -> None:
        if rank != 0:
            return
        if step == t.steps or (t.save_every and step % t.save_every == 0):
            _snapshot(out, step, model, optimizer, scheduler, config, data)
        if on_step is not None:
            on_step(step, model, data)
            model.train()

    tic = time.perf_counter()
    losses = train_steps(
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
    )
    seconds = time.perf_counter() - tic
    if scalar_log is not None:
        scalar_log.close()
        plot_loss_curve(scalar_log.path, out / "loss.png")
    images = (t.steps - start) * t.images_per_step * world
    return TrainResult(
        out / CHECKPOINT_NAME,
        t.steps,
        losses[-1] if losses else float("nan"),
        losses[0] if losses else float("nan"),
        seconds,
        images / max(seconds, 1e-9),
    )


def _snapshot(out, step, model, optimizer, scheduler, config, data) -> None:
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "config": config.to_dict(),
        "data_fingerprint": data.fingerprint,
    }
    torch.save(state, out / f".{STATE_NAME}.tmp")
    os.replace(out / f".{STATE_NAME}.tmp", out / STATE_NAME)  # one atomic resume point
    save_checkpoint(out / CHECKPOINT_NAME, model, config, data.vocab, data.fingerprint)


def _resume(
    out: Path,
    model: GroundingModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    config: Config,
    fingerprint: str,
    device: torch.device,
) -> int:
    path = out / STATE_NAME
    if not path.exists():
        log.info("nothing to resume in %s; starting from step 0", out)
        return 0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure is a corrupt or untrusted file
        raise CheckpointError(
            f"training state {path} cannot be read safely ({exc}); "
            "delete it to restart the run from scratch"
        ) from exc
    if state.get("config") != config.to_dict() or state.get("data_fingerprint") != fingerprint:
        raise CheckpointError(
            f"cannot resume from {path}: it was trained with a different config or different "
            "captions; use a new --out directory or the same settings"
        )
    model.load_state_dict(state["model"])
    model.to(device)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    log.info("resuming %s at step %d", out, state["step"])
    return int(state["step"])
