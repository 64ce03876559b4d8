"""The interface every backend implements, and what they share (reading by offset, status rules)."""
from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from physviz.jobs.job import Job
    from physviz.jobs.spec import JobSpec
    from physviz.jobs.store import JobStore


class Backend(ABC):
    """Submit, watch, read, cancel and fetch jobs of one kind; the scheduler (or the processes) tell the state."""

    name: str = ""

    def check_spec(self, spec: "JobSpec") -> None:
        """Check the spec's settings for this backend before submission; raise JobSpecError naming the first problem."""

    @abstractmethod
    def submit(self, job: "Job") -> None:
        """Stage the job's files and start it; persist what was started with ``job._update``."""

    @abstractmethod
    def status(self, job: "Job") -> str:
        """One of physviz.jobs.states.STATES, asked of the scheduler or the hosts now."""

    @abstractmethod
    def read(self, job: "Job", which: str, offset: int, limit: int) -> bytes:
        """Bytes of a job file ('metrics', 'rank<R>', 'node<N>', 'batch') from `offset`."""

    @abstractmethod
    def cancel(self, job: "Job", timeout: float) -> None:
        """End everything the job started on every host; return once nothing is left."""

    @abstractmethod
    def fetch(self, job: "Job", dest: Path | None) -> Path:
        """The job's output folder here (copied from the hosts if they share no file system)."""

    def list(self, store: "JobStore") -> list["Job"]:
        """Jobs of this backend in the store, oldest first."""
        from physviz.jobs.job import Job

        return [Job(rec, store) for rec in store.records(self.name)]


# -- shared helpers ------------------------------------------------------------------------
def read_local(path: str, offset: int, limit: int) -> bytes:
    """Up to `limit` bytes of a local file from `offset` (b'' if missing or if `offset` is at or past its end)."""
    try:
        with open(path, "rb") as f:
            if offset >= os.fstat(f.fileno()).st_size:  # no seek: past a file system's largest size it fails
                return b""
            f.seek(offset)
            return f.read(limit)
    except FileNotFoundError:
        return b""


def combine(exits: list[int | None], alive: int, cancel_requested: bool) -> str:
    """Job state from each node's exit code (None: not exited) and how many of its processes live."""
    if exits and all(rc == 0 for rc in exits):
        return "completed"
    if any(rc not in (None, 0) for rc in exits):
        return "cancelled" if cancel_requested else "failed"
    if alive:
        return "running"
    return "cancelled" if cancel_requested else "failed"


def decode_text(data: bytes, final: bool = False) -> tuple[str, int]:
    """UTF-8 text of a chunk, leaving a character cut at the end for the next read."""
    cut = len(data)
    if not final:
        # back off over an incomplete multi-byte sequence at the end (at most 3 bytes)
        for back in range(1, min(4, len(data)) + 1):
            byte = data[-back]
            if byte & 0xC0 == 0x80:  # continuation byte: keep looking for the lead byte
                continue
            if byte & 0x80:  # lead byte: is its sequence complete?
                need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4
                if back < need:
                    cut = len(data) - back
            break
    return data[:cut].decode("utf-8", errors="replace"), cut


def copy_output(src: str, dest: Path | None) -> Path:
    """A local output folder itself, or a copy of it at `dest`."""
    if dest is None:
        return Path(src)
    dest = Path(dest)
    if Path(src).is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True)
    return dest


def scrubbed_env(base: dict[str, str] | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without an enclosing Slurm allocation's SLURM_* variables (SLURM_CONF stays)."""
    env = dict(os.environ if base is None else base)
    for key in [k for k in env if k.startswith("SLURM_") and k != "SLURM_CONF"]:
        del env[key]
    env.update(extra or {})
    return env
