"""Training: AdamW, warm-up + cosine, clipping, accumulation, bf16 autocast, DDP, resume.

:func:`train` is the orchestrator; :func:`train_one_epoch` is one pass over the captions.
Under ``torchrun`` (``WORLD_SIZE > 1``) each process trains on its share of every epoch's
permutation with DDP (NCCL on CUDA, gloo on CPU); rank 0 writes the checkpoint and logs.
A run directory holds ``model.safetensors`` (the checkpoint), ``train_state.pt`` (weights,
optimiser and position in one atomically replaced file, loaded with ``weights_only=True``), ``log.csv`` and ``loss.png``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from groundbench.errors import CheckpointError, DataFormatError
from groundbench.model.checkpoint import save_checkpoint
from groundbench.model.config import Config
from groundbench.model.data import CaptionDataset, captions_fingerprint, collate
from groundbench.model.network import GroundingModel
from groundbench.model.objective import compute_loss
from groundbench.model.runlog import ScalarLog, plot_loss_curve
from groundbench.model.text import Vocabulary
from groundbench.types import CaptionRecord

log = logging.getLogger(__name__)
CHECKPOINT_NAME = "model.safetensors"
STATE_NAME = "train_state.pt"


@dataclass(frozen=True)
class TrainResult:
    """Where a run left its files, and how it went (``seconds`` is this process's wall time)."""

    checkpoint: Path
    steps: int
    final_loss: float
    first_loss: float
    seconds: float
    images_per_s: float


class EpochSampler(torch.utils.data.Sampler[int]):
    """Seeded permutation per epoch, split across ranks, skipping already-done indices."""

    def __init__(self, n: int, seed: int, rank: int, world: int) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.epoch, self.skip = 0, 0

    def indices(self) -> list[int]:
        perm = torch.randperm(
            self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)
        )
        per_rank = self.n // self.world  # equal shares keep DDP ranks in lock-step
        return perm[self.rank * per_rank : (self.rank + 1) * per_rank].tolist()[self.skip :]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())

    def __len__(self) -> int:
        return len(self.indices())


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
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (
            no_decay
            if p.ndim < 2 or "embed" in name or "pos" in name or "logits" in name
            else decay
        ).append(p)
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


def _autocast_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    p = cfg.train.precision
    return torch.bfloat16 if p == "bf16" or (p == "auto" and device.type == "cuda") else None


def train_one_epoch(
    model: torch.nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    cfg: Config,
    *,
    step: int,
    total_steps: int,
    device: torch.device,
    rank: int,
    scalar_log: ScalarLog | None,
    on_step=None,
    progress: bool = True,
) -> tuple[int, list[float]]:
    """Run one epoch; return the new optimiser step count and the logged total losses.

    ``on_step(step)`` is called after each optimiser step (for snapshots).
    """
    t = cfg.train
    model.train()
    acc, sums, count, tic, images = 0, {}, 0, time.perf_counter(), 0
    losses: list[float] = []
    bar = tqdm(
        loader, disable=not progress or rank != 0, desc=f"epoch {scheduler.last_epoch}", leave=False
    )
    for batch in bar:
        gen = torch.Generator().manual_seed(
            t.seed * 1_000_003 + (step * t.accumulation + acc) * 7919 + rank
        )
        sync = acc == t.accumulation - 1
        ctx = (
            model.no_sync()
            if isinstance(model, DistributedDataParallel) and not sync
            else contextlib.nullcontext()
        )
        with ctx:
            loss, parts = compute_loss(
                model,
                batch,
                cfg,
                progress=step / max(1, total_steps),
                generator=gen,
                device=device,
                autocast_dtype=_autocast_dtype(cfg, device),
            )
            (loss / t.accumulation).backward()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        images += batch["images"].shape[0]
        acc += 1
        if not sync:
            continue
        acc = 0
        if t.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        step += 1
        if step % t.log_every == 0 or step == total_steps:
            elapsed = time.perf_counter() - tic
            row = {
                "step": step,
                "lr": scheduler.get_last_lr()[0],
                **{k: v / count for k, v in sums.items()},
                "images_per_s": images / max(elapsed, 1e-9),
            }
            losses.append(row["loss"])
            bar.set_postfix(loss=f"{row['loss']:.3f}")
            if scalar_log is not None:
                scalar_log.write(row)
            sums, count, tic, images = {}, 0, time.perf_counter(), 0
        if on_step is not None:
            on_step(step)
    return step, losses


def train(
    config: Config,
    records: Sequence[CaptionRecord],
    out_dir: str | Path,
    *,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train a model on image–caption records and write its checkpoint to ``out_dir``.

    Args:
        config: model + training configuration.
        records: training captions (CaptionRecords; no boxes exist in them).
        out_dir: run directory (created).
        device: ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun each rank takes its LOCAL_RANK).
        resume: continue from ``out_dir``'s last snapshot if there is one.
        progress: show a tqdm bar on stderr (rank 0).

    Raises:
        CheckpointError: ``resume`` found a snapshot that does not match ``config`` or the data.
    """
    out = Path(out_dir)
    t = config.train
    if t.threads > 0:
        torch.set_num_threads(t.threads)
    rank, world, dev = _setup_distributed(device)
    records = list(records)[: t.max_captions or None]
    vocab = Vocabulary.build(r.text for r in records)
    fingerprint = captions_fingerprint(records)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(t.seed)
        model = GroundingModel(config.model, len(vocab)).to(dev)
    sampler = EpochSampler(len(records), t.seed, rank, world)
    dataset = CaptionDataset(records, vocab, config.model.image_size, config.model.max_words)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=t.batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=t.num_workers,
        drop_last=True,
    )
    steps_per_epoch = (len(records) // world // t.batch_size) // t.accumulation
    if steps_per_epoch < 1:
        raise DataFormatError(
            f"{len(records)} captions are too few for batch_size {t.batch_size} × "
            f"accumulation {t.accumulation} × {world} process(es); lower train.batch_size"
        )
    total = steps_per_epoch * t.epochs
    optimizer = _optimizer(model, config)
    warm = max(1, round(t.warmup_fraction * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, warm, t.min_lr_ratio)
    )
    step = _resume(out, model, optimizer, scheduler, config, fingerprint, dev) if resume else 0
    if t.compile:
        model = torch.compile(model)
    wrapped = DistributedDataParallel(model) if world > 1 else model
    scalar_log = ScalarLog(out, resume=resume and step > 0) if rank == 0 else None
    out.mkdir(parents=True, exist_ok=True)
    base = getattr(model, "_orig_mod", model)

    def snapshot(at: int) -> None:
        if rank == 0 and (at % steps_per_epoch == 0 or (t.save_every and at % t.save_every == 0)):
            state = {
                "step": at,
                "model": base.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "config": config.to_dict(),
                "data_fingerprint": fingerprint,
            }
            torch.save(state, out / f".{STATE_NAME}.tmp")
            os.replace(out / f".{STATE_NAME}.tmp", out / STATE_NAME)  # one atomic resume point
            save_checkpoint(out / CHECKPOINT_NAME, base, config, vocab, fingerprint)

    tic, all_losses, start_step = time.perf_counter(), [], step
    while step < total:
        sampler.epoch, sampler.skip = (
            step // steps_per_epoch,
            (step % steps_per_epoch) * t.batch_size * t.accumulation,
        )
        step, losses = train_one_epoch(
            wrapped,
            loader,
            optimizer,
            scheduler,
            config,
            step=step,
            total_steps=total,
            device=dev,
            rank=rank,
            scalar_log=scalar_log,
            on_step=snapshot,
            progress=progress,
        )
        all_losses += losses
    seconds = time.perf_counter() - tic
    if scalar_log is not None:
        scalar_log.close()
        plot_loss_curve(scalar_log.path, out / "loss.png")
    done = (step - start_step) * t.batch_size * t.accumulation * world
    return TrainResult(
        out / CHECKPOINT_NAME,
        step,
        all_losses[-1] if all_losses else float("nan"),
        all_losses[0] if all_losses else float("nan"),
        seconds,
        done / max(seconds, 1e-9),
    )


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
