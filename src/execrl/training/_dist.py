"""One process or several: what lets a recipe run unchanged under ``accelerate launch`` or
``torchrun`` (one process per GPU, or ``--multi_gpu`` on a CPU box for testing).

Every process trains (the trainer shards the batches); exactly one, the *main* process,
owns the run directory: it creates it, builds the tiny model, writes metrics and the final
model, and runs the sandbox over the evaluations. Sampling for an evaluation is split over
all processes, each writing its own shard on its own GPU. The other
processes wait at a barrier while the main one works, and every process gets the main
one's answer, or its error, so a bad config stops all of them with the same one line.

With one process (the plain ``execrl train``) nothing here starts a process group; every
function is then a direct call.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from typing import Any, TypeVar

from execrl.errors import DataError

T = TypeVar("T")

# Waiting processes sit in a barrier while the main one runs the sandbox over every sample
# (or builds the tiny model, or merges a LoRA); the usual defaults (10 minutes for NCCL, the
# trainer's 30) are short for a large held-out set, so the group waits this long before it
# calls a silent process dead.
WAIT_LIMIT = datetime.timedelta(hours=3)


class CopiedError(DataError):
    """The main process's :class:`DataError`, raised again in another process so that it
    stops too; the main process reports it (the CLI prints nothing for a copy)."""

    copied = True


def world_size() -> int:
    """Processes in this run, from the launcher's environment (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    """This process's rank, from the launcher's environment (0 without a launcher)."""
    return int(os.environ.get("RANK", "0") or 0)


def is_main_process() -> bool:
    """Whether this process reports for the run (rank 0); needs no process group."""
    return rank() == 0


class Processes:
    """This process's place among the run's processes; see the module docstring."""

    def __init__(self) -> None:
        self.size = world_size()
        self.rank = rank()
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
        self.local_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.size)) or self.size)
        self._state: Any = None
        if self.size > 1:
            import torch
            from accelerate import PartialState

            # The state TrainingArguments later picks up: the same group, so the trainer
            # and these barriers agree; gloo on CPU, NCCL on GPUs.
            self._state = PartialState(cpu=not torch.cuda.is_available(), timeout=WAIT_LIMIT)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> str | None:
        """This process's GPU (``cuda:<local rank>``) with several processes on CUDA, else
        None (the generator's own default)."""
        import torch

        return f"cuda:{self.local_rank}" if self.size > 1 and torch.cuda.is_available() else None

    @property
    def torch_device(self) -> str:
        """Where this process computes: its GPU, else ``cuda`` when there is one, else ``cpu``."""
        import torch

        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")

    def wait(self) -> None:
        """Barrier: return when every process got here."""
        if self._state is not None:
            self._state.wait_for_everyone()

    def share(self, value: T) -> T:
        """The main process's ``value``, in every process."""
        if self._state is None:
            return value
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def on_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` run by the main process only, its result given to every process. Its
        error (a :class:`DataError`, or any other) is raised in every process, so none
        is left waiting."""
        if self._state is None:
            return fn()
        outcome: tuple[str, Any] = ("ok", None)
        error: Exception | None = None
        if self.is_main:
            try:
                outcome = ("ok", fn())
            except DataError as exc:
                outcome, error = ("data", str(exc)), exc
            except Exception as exc:  # noqa: BLE001 (raised again below, once the others know)
                outcome, error = ("other", f"{type(exc).__name__}: {exc}"), exc
        kind, value = self.share(outcome)
        if error is not None:
            raise error
        if kind == "data":
            raise CopiedError(value)
        if kind == "other":
            raise RuntimeError(f"the main process failed: {value}")
        return value

    def data_parallel(self, forward: Callable[..., Any], *modules: Any) -> Any:
        """For our own training loops: a module holding ``modules`` (so it owns all their
        parameters) whose call is ``forward(*args, **kwargs)``, which must compute with those
        modules. With several processes it is wrapped in DistributedDataParallel: gradients
        are averaged over the processes in ``backward``, and every process must call
        ``backward`` as often as the others (``no_sync()`` skips the averaging of all but the
        last of several)."""
        import torch

        class Joint(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.parts = torch.nn.ModuleList(modules)

            def forward(self, *args: Any, **kwargs: Any) -> Any:
                return forward(*args, **kwargs)

        joint = Joint()
        if self.size == 1:
            return joint
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(joint, device_ids=[self.local_rank] if self.device else None)

    def gather(self, values: list[T]) -> list[T]:
        """Every process's ``values``, concatenated in rank order, in every process."""
        if self._state is None:
            return list(values)
        import torch.distributed as dist

        parts: list[Any] = [None] * self.size
        dist.all_gather_object(parts, list(values))
        return [v for part in parts for v in part]

    def shard(self, items: list[T]) -> list[T]:
        """This process's share of ``items``: every ``size``-th from its rank on."""
        return items[self.rank :: self.size]

    def cores(self) -> int:
        """CPU cores for this process's sandbox pool: the machine's, split between the
        processes on this node."""
        return max(1, len(os.sched_getaffinity(0)) // max(1, self.local_size))


_PROCESSES: Processes | None = None


def processes() -> Processes:
    """The run's :class:`Processes` (made once per process)."""
    global _PROCESSES
    if _PROCESSES is None or _PROCESSES.size != world_size():
        _PROCESSES = Processes()
    return _PROCESSES


def finish(ok: bool) -> None:
    """End this process's part of a multi-process run: after success wait for the others,
    then tear the process group down, so that no communication thread is left running at
    exit (that aborts the process, at random, with "terminate called without an active
    exception"). Nothing to do in a one-process run."""
    if world_size() == 1:
        return
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return
    if ok:
        processes().wait()
    dist.destroy_process_group()
