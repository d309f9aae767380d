"""Frozen-backbone tokens, computed once per training image and kept in the run directory.

With a frozen pretrained backbone (``model.backbone_trainable: false``) and
``train.cache_tokens`` (the default), each training image is encoded once; every later step
reads its tokens, so an epoch costs one pass of the grounding head. The cache lives in
``<run>/token_cache/<key>/``: ``tokens.npy`` (``(I, N, channels)`` float16, row ``i`` the
``i``-th training image) and ``index.json``, written last, so a cache without it is
incomplete and is rebuilt. The key hashes the backbone's fingerprint (the sha256 of its
files), the layer read and the image size; ``index.json`` lists each row's image digest. A
resumed run, or a new run in the same folder, reuses a cache whose key and digests match;
a changed backbone gets another key, and caches under other keys are deleted when a new
one is built, so stale tokens are never read.

Under DDP each rank encodes its share of the images (``i % world == rank``) into the one
file; rank 0 writes ``index.json`` once all are done. A cache of up to
``train.cache_in_memory_gb`` is held on the training device; a larger one stays a
memory-mapped file, read row by row each step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from groundbench.model.backbone import Backbone
from groundbench.model.config import Config
from groundbench.model.data import TrainingData
from groundbench.model.streaming import image_loader
from groundbench.progress import progress_bar

log = logging.getLogger(__name__)
CACHE_DIR = "token_cache"
_ENCODE_BATCH = 32


def cache_key(backbone: Backbone, image_size: int) -> str:
    """16 hex characters naming a cache: the backbone's fingerprint, layer and image size."""
    r = backbone.record
    text = json.dumps(
        {"fingerprint": r["fingerprint"], "layer": r["layer"], "image_size": image_size},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class TokenCache:
    """Cached backbone tokens of the training images.

    Attributes:
        folder: ``<run>/token_cache/<key>``.
        tokens: ``(I, N, channels)`` float16: a tensor on the training device, or a
            read-only memory map of ``tokens.npy``.
        built: whether this call encoded the images (False: an existing cache was reused).
    """

    folder: Path
    tokens: torch.Tensor | np.ndarray
    built: bool

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        """The tokens ``(B, N, channels)`` float16 of images ``index (B,)``, on its device."""
        if isinstance(self.tokens, torch.Tensor):
            return self.tokens[index.to(self.tokens.device)]
        rows = np.sort(index.cpu().numpy())
        order = np.searchsorted(rows, index.cpu().numpy())
        return torch.from_numpy(np.ascontiguousarray(self.tokens[rows][order])).to(index.device)


def _is_complete(folder: Path, key: str, data: TrainingData) -> bool:
    try:
        index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return index.get("key") == key and index.get("image_keys") == list(data.image_keys)


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def ensure_token_cache(
    run_dir: Path,
    data: TrainingData,
    backbone: Backbone,
    cfg: Config,
    *,
    device: torch.device,
    rank: int = 0,
    world: int = 1,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = True,
) -> TokenCache:
    """Reuse the run's token cache if it matches, else encode every training image once.

    Args:
        run_dir: the run directory.
        data: the training data (``image_paths`` and ``image_keys`` are read).
        backbone: the frozen backbone, on ``device``.
        cfg: the run configuration (``image_size``, ``workers``, ``cache_in_memory_gb``).
        device: the training device.
        rank, world: this process and the process count under DDP.
        autocast_dtype: autocast dtype for the encoding (bf16 on CUDA), or None.
        progress: show a progress bar (rank 0).
    """
    key = cache_key(backbone, cfg.model.image_size)
    root = run_dir / CACHE_DIR
    folder = root / key
    built = False
    if not _is_complete(folder, key, data):
        built = True
        n, (h, w), c = len(data), backbone.grid, backbone.channels
        if rank == 0:
            if root.is_dir():
                for stale in root.iterdir():  # other keys: another backbone or image size
                    shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
            folder.mkdir(parents=True)
            np.lib.format.open_memmap(folder / "tokens.npy", "w+", np.float16, (n, h * w, c))
        _barrier(world)
        tokens = np.load(folder / "tokens.npy", mmap_mode="r+")
        _encode(data, backbone, cfg, tokens, device, rank, world, autocast_dtype, progress)
        tokens.flush()
        del tokens
        _barrier(world)
        if rank == 0:
            index = {
                "key": key,
                "backbone": backbone.record["spec"],
                "fingerprint": backbone.record["fingerprint"],
                "layer": backbone.record["layer"],
                "image_size": cfg.model.image_size,
                "shape": [n, h * w, c],
                "dtype": "float16",
                "image_keys": list(data.image_keys),
            }
            tmp = folder / ".index.json.tmp"
            tmp.write_text(json.dumps(index), encoding="utf-8")
            os.replace(tmp, folder / "index.json")
        _barrier(world)
    else:
        log.info("reusing the token cache %s", folder)
    tokens = np.load(folder / "tokens.npy", mmap_mode="r")
    if tokens.nbytes <= cfg.train.cache_in_memory_gb * 2**30:
        return TokenCache(folder, torch.from_numpy(np.array(tokens)).to(device), built)
    return TokenCache(folder, tokens, built)


@torch.no_grad()
def _encode(data, backbone, cfg, tokens, device, rank, world, autocast_dtype, progress) -> None:
    mine = list(range(rank, len(data), world))
    batches = [mine[i : i + _ENCODE_BATCH] for i in range(0, len(mine), _ENCODE_BATCH)]
    loader = image_loader(
        data.image_paths,
        cfg.model.image_size,
        batches,
        workers=cfg.train.workers,
        pin=device.type == "cuda",
    )
    backbone.eval()
    bar = progress_bar(
        total=len(mine), desc="cache tokens", unit="image", disable=not progress or rank != 0
    )
    for index, images in loader:
        pixels = images.to(device, non_blocking=True).float().div_(255.0)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            feats = backbone(pixels)
        tokens[index.numpy()] = feats.to(torch.float16).cpu().numpy()
        bar.update(len(index))
    bar.close()
