"""DistributedDataParallel plumbing for the shared epoch loop (`epochs.run_epochs`), under torchrun.

`torchrun --nproc-per-node N -m edge_s2s.train <task> ...` starts N copies of the training
command; torchrun sets WORLD_SIZE / RANK / LOCAL_RANK (and the rendezvous address) and this module
turns them into one process group: gloo when the model is on the CPU, nccl on CUDA (one GPU a
process, cuda:LOCAL_RANK). Without that environment (or with WORLD_SIZE=1) nothing here runs
and training is exactly the single-process loop.

The global batch does not depend on N: every rank computes the same deterministic batch list
(`epochs.epoch_batches`) and takes its share of each batch (`shard`), so one optimizer step still
consumes one whole batch and the number of steps per epoch is the same as with one process.
Each rank's loss is scaled by its share of the batch's target tokens (`Ddp.step`), so DDP's
gradient average equals the gradient of the whole batch's mean token NLL: the single-process
gradient, up to float summation order.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the torchrun processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that evaluates, writes checkpoints and logs, and shows progress."""
        return self.rank == 0


def world_from_env() -> World | None:
    """The torchrun environment (WORLD_SIZE > 1), or None for an ordinary single process."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1 or "RANK" not in os.environ:
            return None
        return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError:
        return None


def pin_device() -> None:
    """Make plain "cuda" mean cuda:LOCAL_RANK in this process (call before any model is built)."""
    w = world_from_env()
    if w is not None and torch.cuda.is_available():
        torch.cuda.set_device(w.local_rank % torch.cuda.device_count())


def _reseed(seed: int, rank: int, step: int) -> None:
    """Ranks other than 0 draw their own random numbers (dropout, sampling) from (seed, rank, step);
    rank 0 keeps the stream that the checkpoint saves and restores."""
    s = (seed * 1_000_003 + rank * 7_919 + step) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


class _StepModule(torch.nn.Module):
    """The model with `train_step` as its forward, so DDP sees the forward pass it synchronises."""

    def __init__(self, model: torch.nn.Module, train_step: Callable):
        super().__init__()
        self.model = model
        self.train_step = train_step

    def forward(self, indices: list[int], step: int):
        return self.train_step(indices, step)


def shard(batch: list[int], w: World) -> tuple[list[int], bool]:
    """This rank's share of one global batch (every size-th example from `rank`), and whether it
    counts: a rank whose share is empty (batch smaller than the world) runs the first example
    with weight 0, so that every rank still takes part in the gradient all-reduce."""
    mine = batch[w.rank :: w.size]
    return (mine, True) if mine else (batch[:1], False)


class Ddp:
    """One process group and the DDP-wrapped train step for `run_epochs`."""

    def __init__(self, w: World, model: torch.nn.Module):
        self.world = w
        self.owns_group = False
        on_cuda = next((p.is_cuda for p in model.parameters()), False)
        self.device = torch.device("cpu")
        if on_cuda:
            torch.cuda.set_device(w.local_rank % torch.cuda.device_count())
            self.device = torch.device("cuda", torch.cuda.current_device())
            model.to(self.device)  # before the optimizer state is loaded (it follows the parameters)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if on_cuda else "gloo", rank=w.rank, world_size=w.size)
            self.owns_group = True
        self.model = model
        self.wrapped: torch.nn.Module | None = None

    def wrap(self, train_step: Callable, seed: int, step: int) -> None:
        """Wrap after the checkpoint (if any) is loaded: DDP broadcasts rank 0's weights at wrap time."""
        if self.world.rank:
            _reseed(seed, self.world.rank, step)
        ids = [self.device.index] if self.device.type == "cuda" else None
        # tasks differ in which parameters a step touches (options, regularisers): let DDP find out
        self.wrapped = torch.nn.parallel.DistributedDataParallel(_StepModule(self.model, train_step), device_ids=ids,
                                                                 find_unused_parameters=True)

    def step(self, batch: list[int], step: int) -> tuple[torch.Tensor, int, float]:
        """Forward this rank's share of `batch`: (loss to backpropagate, global target tokens, global token NLL)."""
        mine, counts = shard(batch, self.world)
        loss, n, nll = self.wrapped(mine, step)
        n = n if counts else 0
        t = torch.tensor([float(n), nll * n if counts else 0.0], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        total, nll_sum = int(t[0].item()), float(t[1].item())
        scale = n * self.world.size / max(total, 1)  # DDP averages over ranks: weight by token share
        return loss * scale, total, nll_sum / max(total, 1)

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        self.wrapped = None
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
