"""Multi-process training (started under ``torchrun``): the process group, and the one
collective ``train`` needs besides DistributedDataParallel's own."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Rank:
    """This process's rank and the number of processes (0 and 1 without torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Rank:
    """Join the process group torchrun set up (NCCL on CUDA, Gloo on the CPU), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Rank()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Rank(dist.get_rank(), dist.get_world_size())


def gather_states(crops: torch.Generator, ddp: Rank) -> list[torch.Tensor]:
    """Every rank's crop-generator state (rank order), so each rank resumes its own stream."""
    state = crops.get_state()
    if ddp.world == 1:
        return [state]
    gathered = [torch.empty_like(state) for _ in range(ddp.world)]
    dist.all_gather_object(gathered, state)
    return gathered
