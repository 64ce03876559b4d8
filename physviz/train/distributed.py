"""Process group set-up from torchrun's environment, DDP/FSDP2 wrapping, small collectives."""
from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from physviz.train.config import TrainConfigError


@dataclass
class DistEnv:
    """Where this process sits: rank, world size, device and backend."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = ""
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        """Destroy the process group if this process created it."""
        if self.owns_group and dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:
                pass
            self.owns_group = False


def env_rank() -> tuple[int, int, int]:
    """(rank, world, local_rank) from torchrun's environment (0, 1, 0 when absent)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def setup(device: str = "auto") -> DistEnv:
    """Pick the device (cuda:LOCAL_RANK when available) and join the process group: NCCL on GPU, gloo on CPU."""
    rank, world, local = env_rank()
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainConfigError("device='cuda' but no CUDA GPU is visible to this process; use device: auto or cpu.")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        dev = torch.device("cuda", local % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    env = DistEnv(rank, world, local, dev)
    if world > 1:
        if dist.is_initialized():
            env.backend = str(dist.get_backend())
        else:
            env.backend = "nccl" if use_cuda else "gloo"
            timeout = datetime.timedelta(minutes=30)
            kwargs: dict[str, Any] = {"backend": env.backend, "timeout": timeout}
            if use_cuda:
                kwargs["device_id"] = dev
            if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True" and "MASTER_ADDR" in os.environ:
                kwargs.update(store=_attempt_store(rank, world, timeout), rank=rank, world_size=world)
            dist.init_process_group(**kwargs)
            env.owns_group = True
    return env


def _attempt_store(rank: int, world: int, timeout: datetime.timedelta) -> Any:
    """torchrun's shared store, under a prefix unique to this attempt of the worker group.

    Under ``torchrun --max-restarts`` the agent hands every restarted worker group the same
    TCPStore (pytorch/pytorch#135712), so gloo/NCCL would read the previous attempt's
    addresses and hang. ``TORCHELASTIC_RESTART_COUNT`` cannot tell attempts apart across
    nodes (a healthy node restarts without counting), so each rank counts arrivals in the
    store: attempt k is arrivals k*world+1 .. (k+1)*world. Launchers may also export
    ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1`` to torchrun, which gives each attempt a fresh store.
    """
    store, _, _ = next(dist.rendezvous("env://", rank=rank, world_size=world, timeout=timeout))
    arrivals = store.add(f"physviz/arrivals/{world}", 1)
    return dist.PrefixStore(f"physviz/attempt_{(arrivals - 1) // world}", store)


def wrap(model: nn.Module, mode: str, env: DistEnv) -> nn.Module:
    """The model wrapped for DDP or FSDP2 (each space-time block its own shard group, then the root)."""
    if not env.distributed or mode == "none":
        return model
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [env.device.index] if env.device.type == "cuda" else None
        return DDP(model, device_ids=ids)
    if mode == "fsdp2":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        import warnings

        # The blocks' outputs are views (reshapes); the model never changes them in place.
        warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")
        mesh = init_device_mesh(env.device.type, (env.world,))
        for block in getattr(model, "blocks", []):
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model
    raise TrainConfigError(f"Unknown parallel mode {mode!r}; choose none, ddp or fsdp2.")


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (FSDP2 shards in place, so it is the model itself)."""
    return getattr(model, "module", model)


@contextmanager
def grad_sync(model: nn.Module, mode: str, sync: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on accumulation micro-batches (DDP no_sync, FSDP2 requires_gradient_sync)."""
    if sync or mode == "none":
        with nullcontext():
            yield
        return
    if mode == "ddp" and hasattr(model, "no_sync"):
        with model.no_sync():
            yield
        return
    if mode == "fsdp2" and hasattr(model, "set_requires_gradient_sync"):
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)
        return
    yield


def all_reduce_sum(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum a tensor over ranks (in place; a no-op on one process)."""
    if env.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj: Any, env: DistEnv) -> Any:
    """Rank 0's object on every rank."""
    if not env.distributed:
        return obj
    box = [obj if env.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    """Every rank's object, in rank order, on every rank."""
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world
    dist.all_gather_object(out, obj)
    return out


def barrier(env: DistEnv) -> None:
    """Wait for every rank."""
    if env.distributed:
        dist.barrier()
