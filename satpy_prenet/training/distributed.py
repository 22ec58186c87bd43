# SPDX-License-Identifier: GPL-3.0-or-later
"""Distributed training context: one process per device, launched by ``torchrun`` (DDP), or a single process.

A run is distributed when the launcher sets ``WORLD_SIZE`` > 1 (with ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``). The process group uses NCCL on CUDA and gloo on the CPU. Only the process of rank 0 writes files.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from satpy_prenet.device import select_device

LOG = logging.getLogger(__name__)

#: How long a collective waits for the other processes before failing.
TIMEOUT = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run.

    Attributes:
        rank: Global rank (0 in a single process).
        world_size: Number of processes.
        device: The device this process trains on.
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes the outputs."""
        return self.rank == 0

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum ``values`` (float64 on the CPU is fine with gloo; moved to the device for NCCL) over processes."""
        if not self.distributed:
            return values
        reduced = values.to(self.device)
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
        return reduced.to(values.device)

    def all_gather_object(self, value: Any) -> list[Any]:
        """The ``value`` of every process, in rank order."""
        if not self.distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def merge_dicts(self, value: dict[str, Any]) -> dict[str, Any]:
        """Union of the dicts of every process (later ranks win on equal keys)."""
        merged: dict[str, Any] = {}
        for part in self.all_gather_object(value):
            merged.update(part)
        return merged

    def average_buffers(self, module: torch.nn.Module) -> None:
        """Average the floating-point buffers (batch-norm statistics) of ``module`` over processes.

        Each process updates its batch-norm statistics from its own batches, so without this the processes would
        validate (and rank 0 would save) slightly different models.
        """
        if not self.distributed:
            return
        for buffer in module.buffers():
            if buffer.is_floating_point():
                dist.all_reduce(buffer.data, op=dist.ReduceOp.SUM)
                buffer.data /= self.world_size

    def barrier(self) -> None:
        """Wait for every process."""
        if self.distributed:
            dist.barrier()


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment, or make a single-process context.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; in a distributed CUDA run every process takes the GPU
            of its ``LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    chosen = select_device(device)
    if world_size <= 1:
        return DistContext(device=chosen)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if chosen.type == "cuda":
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
        LOG.info("Process %d of %d joined the %s process group on %s", rank, world_size, backend, chosen)
    return DistContext(rank=rank, world_size=world_size, device=chosen)


def shutdown() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
