"""`Job`: a handle on one submitted job, rebuilt from its store record in any process."""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

from physviz.errors import PhysvizError
from physviz.jobs.backends import get_backend
from physviz.jobs.backends.base import Backend, decode_text
from physviz.jobs.errors import JobSpecError, JobTimeoutError
from physviz.jobs.spec import JobSpec
from physviz.jobs.states import STATES, is_terminal
from physviz.jobs.store import JobStore, as_store
from physviz.train.metrics import parse_metrics

_PUBLIC = ("id", "name", "backend", "created", "status", "scheduler_state", "scheduler_id", "job_dir",
           "output_dir", "nodes", "hosts", "cancel_requested", "finished", "error")


class Job:
    """One job: its spec, where it runs, and live status, logs and metrics from its backend."""

    def __init__(self, record: dict[str, Any], store: JobStore) -> None:
        self._record = record
        self.store = store
        self.spec = JobSpec.from_dict(record["spec"])

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.name!r} ({self.backend}, {self._record.get('status', 'unknown')})>"

    # -- identity ---------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The job's id in the store (also its folder name and process marker)."""
        return self._record["id"]

    @property
    def name(self) -> str:
        """The name the user gave the job."""
        return self._record["name"]

    @property
    def backend(self) -> str:
        """'local', 'ssh' or 'slurm'."""
        return self._record["backend"]

    @property
    def record(self) -> dict[str, Any]:
        """The stored record (a copy)."""
        return dict(self._record)

    @property
    def job_dir(self) -> str:
        """The job's folder on its (first) host."""
        return self._record.get("job_dir", "")

    @property
    def output_dir(self) -> str:
        """The run's output_dir on its (first) host: metrics.jsonl, checkpoints, final.safetensors."""
        return self._record.get("output_dir", "")

    def _backend(self) -> Backend:
        return get_backend(self.backend)

    def _update(self, **changes: Any) -> None:
        """Persist changes to the record (one transaction)."""
        self._record = self.store.update(self.id, **changes)

    def refresh(self) -> "Job":
        """Re-read the record from the store (another process may have changed it)."""
        self._record = self.store.get(self.id)
        return self

    # -- state ------------------------------------------------------------------------
    def status(self) -> str:
        """'pending', 'running', 'completed', 'failed', 'cancelled' or 'unknown', asked of the backend now."""
        self.refresh()
        if self._record.get("final"):
            return self._record["status"]
        try:
            state = self._backend().status(self)
        except (PhysvizError, OSError) as exc:  # a host or scheduler that cannot be reached: state unknown
            self._update(status_error=str(exc))
            return "unknown"
        assert state in STATES, state
        if state != self._record.get("status") or is_terminal(state):
            changes: dict[str, Any] = {"status": state}
            if is_terminal(state):
                changes.update(final=True, finished=time.time())
            self._update(**changes)
        return state

    def wait(self, timeout: float | None = None, poll: float = 1.0) -> str:
        """Block until the job is completed, failed or cancelled; return that state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.status()
            if is_terminal(state):
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise JobTimeoutError(f"Job {self.id} ({self.name!r}) is still {state} after {timeout:.0f} s.")
            time.sleep(poll)

    def cancel(self, timeout: float = 60) -> None:
        """End everything the job started on every host (agents and workers)."""
        self.refresh()
        if self._record.get("final"):
            return
        self._update(cancel_requested=True)
        self._backend().cancel(self, timeout)
        self.status()

    # -- output -----------------------------------------------------------------------
    def logs(self, offset: int = 0, rank: int | str = 0, limit: int = 1 << 20) -> tuple[str, int]:
        """Text of a log from byte `offset` and the offset to continue from.

        `rank` is a global rank (its stdout+stderr), 'node<N>' (the torchrun agent of node N)
        or 'batch' (Slurm's batch script).
        """
        which = _log_key(rank)
        data = self._backend().read(self, which, int(offset), int(limit))
        text, used = decode_text(data)
        return text, int(offset) + used

    def metrics(self, offset: int = 0, limit: int = 8 << 20) -> tuple[list[dict[str, Any]], int]:
        """Parsed lines of the run's metrics.jsonl from byte `offset`, and the offset to continue from."""
        data = self._backend().read(self, "metrics", int(offset), int(limit))
        rows, used = parse_metrics(data)
        return rows, int(offset) + used

    def fetch(self, dest: str | os.PathLike[str] | None = None) -> Path:
        """The output folder on this machine (copied from the hosts when they share no file system)."""
        return self._backend().fetch(self, Path(dest) if dest is not None else None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no secrets: hosts name key files, never keys)."""
        out = {k: self._record.get(k) for k in _PUBLIC if k in self._record}
        out["spec"] = self.spec.to_dict()
        return out


def _log_key(rank: int | str) -> str:
    """'rank<R>', 'node<N>' or 'batch' from what a caller passes."""
    if isinstance(rank, bool):
        raise JobSpecError(f"rank={rank!r} is not a rank; give an integer, 'node<N>' or 'batch'.")
    if isinstance(rank, int):
        if rank < 0:
            raise JobSpecError(f"rank={rank} is negative; ranks start at 0.")
        return f"rank{rank}"
    text = str(rank)
    if text.isdigit():
        return f"rank{int(text)}"
    for prefix in ("rank", "node"):
        if text.startswith(prefix) and text[len(prefix):].isdigit():
            return f"{prefix}{int(text[len(prefix):])}"
    if text == "batch":
        return text
    raise JobSpecError(f"rank={rank!r} is not a log; give a rank (0, 1, ...), 'node<N>' or 'batch'.")


def new_job_id() -> str:
    """A fresh, shell-safe job id: date, time and random hex."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def submit(spec: JobSpec | dict[str, Any] | str | os.PathLike[str], store: Any = None) -> Job:
    """Validate a spec, record the job durably, then start it on its backend."""
    if isinstance(spec, JobSpec):
        spec = JobSpec.from_dict(spec.to_dict())
    elif isinstance(spec, dict):
        spec = JobSpec.from_dict(spec)
    else:
        spec = JobSpec.from_yaml(spec)
    spec.validate()
    store = as_store(store)
    record = {
        "id": new_job_id(),
        "name": spec.name,
        "backend": spec.backend,
        "created": time.time(),
        "spec": spec.to_dict(),
        "status": "pending",
        "final": False,
        "cancel_requested": False,
    }
    store.add(record)
    job = Job(record, store)
    try:
        job._backend().submit(job)
    except BaseException as exc:
        job._update(status="failed", final=True, finished=time.time(), error=str(exc))
        with _suppress():
            job._backend().cancel(job, 30)
        raise
    return job


def list_jobs(store: Any = None) -> list[Job]:
    """Every job in the store, oldest first."""
    store = as_store(store)
    return [Job(rec, store) for rec in store.records()]


def get_job(job_id: str, store: Any = None) -> Job:
    """The job with this id (from any process: the store is durable)."""
    store = as_store(store)
    return Job(store.get(job_id), store)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True
