"""Many processes, one run: PyTorch distributed as launched by torchrun (gloo on CPU, NCCL on GPU).

With one process every function here is a no-op, so the trainer reads the same either way.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    def sum(self, *values: float) -> list[float]:
        """Each value summed over all processes."""
        if not self.active:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def max(self, value: float) -> float:
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor.item()

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """`tensor` from every process, in rank order (every process gets the list)."""
        if not self.active:
            return [tensor]
        parts = [torch.empty_like(tensor) for _ in range(self.size)]
        dist.all_gather(parts, tensor.contiguous())
        return parts

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` (any picklable object) on every process."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def first_then_others(self, work: Callable[[], T]) -> T:
        """Run `work` on rank 0, then on the others (which then find its caches instead of racing to build them)."""
        if self.is_main:
            result = work()
        self.barrier()
        if not self.is_main:
            result = work()
        return result


def _device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def _leave() -> None:
    """Leave the group in step with the others: a process exiting mid-teardown can abort its peers."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def exit_process(code: int) -> NoReturn:
    """Exit with `code`. A process of a group leaves it, then skips the interpreter's teardown: gloo's threads
    can outlive it and abort the process at exit ("terminate called without an active exception", seen once in
    six CI runs; pytorch/pytorch#179291), which turns a finished run into a failed one."""
    if dist.is_initialized():
        _leave()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def world() -> World:
    """This process's place in the run; joins the process group on first use under torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and not dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        atexit.register(_leave)
    if size == 1:
        return World()
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))
