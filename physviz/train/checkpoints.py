"""Resume checkpoints: model, optimizer, scheduler, sampler and per-rank RNG state, written atomically.

Files are ``<output_dir>/checkpoints/step_<NNNNNNNN>.pt``, written by rank 0 with the durable
writer of `physviz.fields.atomic`, so a run killed mid-write leaves the previous checkpoint intact.
A checkpoint also holds the run's train config, which a resume compares with its own. Model
and optimizer states are full (unsharded) state dicts keyed by parameter name, gathered
with ``torch.distributed.checkpoint.state_dict``, so a run saved under FSDP2 resumes under
DDP or on one process and back.
"""
from __future__ import annotations

import random
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from physviz.train.config import TrainConfigError
from physviz.train.distributed import DistEnv

PATTERN = re.compile(r"^step_(\d{8,})\.pt$")
FORMAT = "physviz.train.checkpoint"


class ResumeError(TrainConfigError):
    """A run folder cannot be resumed as asked: its checkpoints are unreadable or were written with other settings."""


def checkpoint_dir(output_dir: str | Path) -> Path:
    """Where the resume checkpoints of a run live."""
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint, oldest first."""
    folder = checkpoint_dir(output_dir)
    if folder.exists() and not folder.is_dir():
        raise ResumeError(f"{str(folder)!r} is not a folder; a run keeps its checkpoints there. Move it away.")
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = PATTERN.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def clean_partial(output_dir: str | Path) -> None:
    """Remove temporary files left by a write that was killed."""
    from physviz.fields.atomic import remove_stale_tmp

    remove_stale_tmp(checkpoint_dir(output_dir))


@dataclass
class Found:
    """What `find_resumable` found: the newest readable checkpoint (or None) and the unreadable ones with why."""

    state: dict[str, Any] | None = None
    path: Path | None = None
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's state; ValueError saying why when the file is not a complete physviz checkpoint."""
    try:
        if path.stat().st_size == 0:
            raise ValueError("empty file")
        if not zipfile.is_zipfile(path):
            raise ValueError("not a complete torch.save file (truncated or damaged)")
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError("not a physviz training checkpoint")
    return obj


def find_resumable(output_dir: str | Path) -> Found:
    """The newest checkpoint that reads back; the newer ones that do not are listed as unreadable."""
    found = Found()
    for _step, path in reversed(list_checkpoints(output_dir)):
        try:
            found.state, found.path = read_checkpoint(path), path
            break
        except ValueError as exc:
            found.unreadable.append((path, str(exc)))
    return found


def load_latest(output_dir: str | Path) -> tuple[dict[str, Any] | None, Path | None]:
    """The newest checkpoint that reads back (older ones are tried if the newest is damaged)."""
    found = find_resumable(output_dir)
    return found.state, found.path


def rng_state(env: DistEnv) -> dict[str, Any]:
    """This process's random state (torch, CUDA, numpy, python)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [str(np_state[0]), torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),
    }
    if env.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(env.device)
    return state


def set_rng_state(state: dict[str, Any], env: DistEnv) -> None:
    """Restore a state from rng_state."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    random.setstate(_tuples(state["python"]))
    if env.device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], env.device)


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """Full model and optimizer state dicts on the CPU of rank 0 (empty elsewhere); collective."""
    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=opts), get_optimizer_state_dict(model, optimizer, options=opts)


def load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer | None, model_sd: dict[str, Any],
                    optim_sd: dict[str, Any] | None, env: DistEnv) -> None:
    """Load full state dicts held by rank 0 into a (possibly sharded) model and optimizer; collective."""
    opts = StateDictOptions(full_state_dict=True, broadcast_from_rank0=env.distributed)
    set_model_state_dict(model, model_sd if env.is_main or not env.distributed else {}, options=opts)
    if optimizer is not None and optim_sd is not None:
        set_optimizer_state_dict(model, optimizer, optim_sd if env.is_main or not env.distributed else {}, options=opts)


def save(path: Path, state: dict[str, Any]) -> Path:
    """torch.save durably and atomically; a failed write raises OutputWriteError and keeps the previous files."""
    from physviz.fields import atomic
    from physviz.train.output import writing

    with writing(path, "checkpoint"), atomic.atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
    return path


def prune(output_dir: str | Path, keep: int, upto: int | None = None) -> None:
    """Delete all but the newest `keep` checkpoints of steps up to `upto` (later ones are left for the run to rewrite)."""
    found = [(s, p) for s, p in list_checkpoints(output_dir) if upto is None or s <= upto]
    for _step, path in found[: max(0, len(found) - keep)]:
        path.unlink(missing_ok=True)


def step_path(output_dir: str | Path, step: int) -> Path:
    """The checkpoint file of a step."""
    return checkpoint_dir(output_dir) / f"step_{step:08d}.pt"
