"""Several processes under ``torchrun``: which rank am I, and wait for the others."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the evaluation processes."""

    rank: int = 0
    size: int = 1
    owns_group: bool = False  # True when this evaluation created the process group

    @property
    def is_main(self) -> bool:
        """Rank 0 merges the records and writes the report."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every rank reaches this point (no-op for one process)."""
        if self.size > 1:
            dist.barrier()

    def share(self, obj):
        """Return rank 0's ``obj`` on every rank (``obj`` itself for one process)."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Tear down the process group if this evaluation created it."""
        if self.owns_group:
            dist.destroy_process_group()


def join_world(device: torch.device) -> World:
    """Join the ``torchrun`` process group if there is one (gloo on CPU, nccl on CUDA)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), owns_group=True)
