"""A training run's folder and its lifetime: one run per folder, resume checks, stop signals.

A run folder holds one run's files (:data:`ARTEFACTS`). :func:`prepare_run_dir` refuses a
folder holding files unless the run is resumed or overwritten (every artefact deleted
together); :func:`check_resumable` names the settings a snapshot differs in, before any
image is decoded; :func:`stop_on_signals` turns SIGTERM (cluster preemption) and SIGINT
into a stop after the current step, so the trainer can snapshot it;
:func:`save_snapshot` writes that resume point with the checkpoint, and
:func:`restore_snapshot` loads it.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist

from groundbench.errors import CheckpointError, GroundbenchError
from groundbench.model.checkpoint import save_checkpoint
from groundbench.model.config import Config
from groundbench.model.network import GroundingModel

STATE_NAME = "train_state.pt"
CHECKPOINT_NAME = "model.safetensors"
#: Everything a run writes into its directory (what ``overwrite`` replaces).
ARTEFACTS = (CHECKPOINT_NAME, STATE_NAME, "log.csv", "loss.png", "tensorboard")
#: Train keys that cannot change a weight: a resume may change them freely.
BOOKKEEPING_KEYS = (
    "save_every",
    "log_every",
    "threads",
    "loader",
    "workers",
    "cache_in_memory_gb",
)


class RunDirError(GroundbenchError):
    """A run directory cannot be used as asked (it holds another run, or nothing to resume)."""


class TrainingInterrupted(GroundbenchError):
    """SIGTERM or SIGINT stopped training; a snapshot of the last finished step was written."""


def config_differences(stored: object, config: Config) -> list[str]:
    """Name the settings that differ between a snapshot's config and ``config``, e.g.
    ``train.lr 0.003 → 0.1``; bookkeeping keys and ``train.steps`` (a run may be extended)
    are left out."""
    new = config.to_dict()
    if not isinstance(stored, dict):
        return ["its config cannot be read"]
    out = []
    for section in sorted(set(stored) | set(new)):
        a, b = stored.get(section), new.get(section) or {}
        if not isinstance(a, dict):
            out.append(f"{section} (unreadable)")
            continue
        for key in sorted(set(a) | set(b)):
            if section == "train" and key in (*BOOKKEEPING_KEYS, "steps"):
                continue
            if key not in a and b.get(key) == _default(section, key):
                continue  # a key added since the snapshot, at its default
            if a.get(key) != b.get(key):
                out.append(f"{section}.{key} {a.get(key, '(unset)')} → {b.get(key, '(unset)')}")
    return out


def _default(section: str, key: str) -> object:
    defaults = Config().to_dict()
    return defaults.get(section, {}).get(key, object())


class StopRequest:
    """Records the first SIGTERM/SIGINT; under DDP the ranks agree on it each step."""

    def __init__(self, world: int, device: torch.device) -> None:
        self.world, self.device = world, device  # NCCL reduces device tensors only
        self.signal: int | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else "a signal"

    def requested(self) -> bool:
        """Whether a stop was asked for (on any rank, under DDP)."""
        flag = self.signal is not None
        if self.world > 1:
            t = torch.tensor([float(flag)], device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item())
            if flag and self.signal is None:
                self.signal = signal.SIGTERM
        return flag


@contextmanager
def stop_on_signals(world: int, device: torch.device) -> Iterator[StopRequest]:
    """Turn SIGTERM and SIGINT into a stop request at the end of the current step (a second
    signal acts as usual). Signal handlers exist only in the main thread."""
    stop = StopRequest(world, device)
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def handle(signum, frame) -> None:
        stop.signal = signum
        for s, h in previous.items():  # the next one stops at once
            signal.signal(s, h)

    for s in previous:
        signal.signal(s, handle)
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def prepare_run_dir(
    out: Path, *, resume: bool, overwrite: bool, rank: int, world: int
) -> dict | None:
    """Refuse a run directory holding another run; clear it under ``overwrite``; return the
    snapshot to resume from (None when starting fresh)."""
    if resume and overwrite:
        raise RunDirError(
            "--resume and --overwrite exclude each other: continue the run or replace it"
        )
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    state = None
    if resume:
        path = out / STATE_NAME
        if not path.is_file():
            found = f"it holds {', '.join(held)}" if held else "it is empty or missing"
            raise RunDirError(
                f"nothing to resume in {out}: no {STATE_NAME} ({found}); the run stopped "
                "before its first snapshot or never ran: drop --resume and pass --overwrite "
                "to start it again"
            )
        state = read_state(path)
    elif held and not overwrite:
        raise RunDirError(
            f"{out} already holds files ({', '.join(held[:5])}{', ...' if len(held) > 5 else ''}); "
            "pass --resume to continue that run, --overwrite to replace it, or choose a new --out"
        )
    if world > 1:
        dist.barrier()  # every rank has checked before rank 0 deletes anything
    if overwrite and rank == 0:
        for name in ARTEFACTS:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    return state


def read_state(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure is a corrupt or untrusted file
        raise CheckpointError(
            f"training state {path} cannot be read safely ({exc}); "
            "pass --overwrite to restart the run from scratch"
        ) from exc
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise CheckpointError(
            f"training state {path} has no config; pass --overwrite to restart the run"
        )
    return state


def check_resumable(
    path: Path, state: dict, config: Config, fingerprint: str, backbone: str | None = None
) -> None:
    """Refuse a snapshot trained with other settings, captions or backbone files (the
    ``backbone`` fingerprint; None for the built-in CNN)."""
    differences = config_differences(state.get("config"), config)
    if state.get("data_fingerprint") != fingerprint:
        differences.append("other training captions")
    if state.get("backbone_fingerprint") != backbone:
        differences.append(
            f"the backbone's files changed (fingerprint {str(state.get('backbone_fingerprint'))[:12]} "
            f"→ {str(backbone)[:12]})"
        )
    if differences:
        raise CheckpointError(
            f"cannot resume from {path}: it was trained with other settings "
            f"({'; '.join(differences)}); use the same settings, or a new --out "
            "(or --overwrite)"
        )


def save_snapshot(out, step, model, optimizer, scheduler, config, data, meta) -> None:
    """Write the resume point (``train_state.pt``, replaced atomically) and the checkpoint
    of ``step``; ``meta`` is what the records are (``training_data``)."""
    state = {
        "step": step,
        "model": model.trained_state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "config": config.to_dict(),
        "data_fingerprint": data.fingerprint,
    }
    if model.cfg.pretrained:
        state["backbone_fingerprint"] = model.encoder.backbone.record["fingerprint"]
    torch.save(state, out / f".{STATE_NAME}.tmp")
    os.replace(out / f".{STATE_NAME}.tmp", out / STATE_NAME)  # one atomic resume point
    save_checkpoint(
        out / CHECKPOINT_NAME,
        model,
        config,
        data.vocab,
        data.fingerprint,
        training_data=meta,
        training_sources=data.sources,
        training_images=data.image_digests,
    )


def restore_snapshot(
    state: dict,
    model: GroundingModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    device: torch.device,
) -> int:
    """Load a snapshot's weights, optimiser and schedule; return its step."""
    model.load_trained_state_dict(state["model"])
    model.to(device)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["step"])
