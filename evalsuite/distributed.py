"""Several processes, one run folder: `torchrun --nproc_per_node N -m evalsuite run ...` (or `accelerate launch`).

When the launcher's environment says WORLD_SIZE > 1, `evalsuite.run` joins a torch.distributed
process group and:
  1. every rank validates the same inputs and computes the same plan (it is deterministic);
  2. rank 0 alone writes run.json, prompts.jsonl and plan.jsonl; barrier;
  3. each rank generates its shard of the plan (`shard`: per backend, plan entry i goes to rank
     i % world_size; stable across reruns) and writes its own per-item PNG + record (atomic, one file
     per item: no two ranks ever write the same file); a record carries its rank;
  4. barrier; rank 0 adds the counts of all ranks, records every rank's hardware in run.json,
     and scores the whole run once.
A rerun with the same command (any world size) generates only what is missing.

The process group only carries barriers and small Python objects (counts, hardware names), so gloo
is the default on CPU and GPU alike; EVALSUITE_DIST_BACKEND=nccl selects NCCL. Each rank uses
cuda:LOCAL_RANK for device=auto/cuda. Barriers wait up to EVALSUITE_DIST_TIMEOUT_H hours (default 72):
a rank that finishes its shard early waits for the others there.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Sequence, TypeVar

T = TypeVar("T")


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The items of `rank` among `world_size` processes: positions rank, rank + world_size, ...

    Every item belongs to exactly one rank; the assignment depends only on the order of `items`
    (the plan order, which is deterministic), not on what is already done.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    return list(items[rank::world_size])


def env_world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the launcher's environment; (0, 0, 1) without one."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        return 0, 0, 1
    return (rank, local, world) if world > 1 else (0, 0, 1)


def local_cuda_device() -> str:
    """'cuda:LOCAL_RANK' under a multi-process launcher, else 'cuda'."""
    _, local, world = env_world()
    return f"cuda:{local}" if world > 1 else "cuda"


@dataclass
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None
    owns_group: bool = False

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            if self.backend == "nccl":
                dist.barrier(device_ids=[self.local_rank])
            else:
                dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's obj, on rank 0 (in rank order); [] on the other ranks; [obj] in one process."""
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out or []

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self.owns_group = False


def init() -> Dist:
    """Join the process group the launcher describes (idempotent); a single process gets Dist() and nothing starts."""
    rank, local, world = env_world()
    if world == 1:
        return Dist()
    import torch
    import torch.distributed as dist

    backend = os.environ.get("EVALSUITE_DIST_BACKEND", "gloo")
    owns = False
    if torch.cuda.is_available():   # then "cuda" (diffusers, CLIP, EasyOCR, memory stats) means this rank's GPU
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        hours = float(os.environ.get("EVALSUITE_DIST_TIMEOUT_H", "72"))
        dist.init_process_group(backend=backend, timeout=timedelta(hours=hours))
        owns = True
    return Dist(rank=dist.get_rank(), local_rank=local, world_size=dist.get_world_size(),
                backend=dist.get_backend(), owns_group=owns)


def rank_info(d: Dist) -> dict[str, Any]:
    from .envinfo import device_info

    hw = device_info()
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(d.local_rank)
    except ImportError:
        pass
    return {"rank": d.rank, "local_rank": d.local_rank, "host": socket.gethostname(),
            "hardware": gpu or hw.get("cpu"), "pid": os.getpid()}
