"""`Job`: a handle on one submitted job, rebuilt from its store record in any process."""
from __future__ import annotations

import numbers
import os
import posixpath
import secrets
import time
from pathlib import Path
from typing import Any

from physviz.errors import PhysvizError
from physviz.jobs.backends import get_backend
from physviz.jobs.backends.base import Backend, decode_text
from physviz.jobs.errors import JobNotStartedError, JobSpecError, JobTimeoutError
from physviz.jobs.layout import MAX_LIMIT, MAX_OFFSET, log_key
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
        if not has_job_dir(self._record):  # still being submitted: nothing to ask a backend about
            return self._record.get("status", "pending")
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
        offset, limit = _count("offset", offset, MAX_OFFSET), _count("limit", limit, MAX_LIMIT)
        self._started()
        data = self._backend().read(self, which, offset, limit)
        text, used = decode_text(data)
        return text, offset + used

    def metrics(self, offset: int = 0, limit: int = 8 << 20) -> tuple[list[dict[str, Any]], int]:
        """Parsed lines of the run's metrics.jsonl from byte `offset`, and the offset to continue from."""
        offset, limit = _count("offset", offset, MAX_OFFSET), _count("limit", limit, MAX_LIMIT)
        self._started()
        data = self._backend().read(self, "metrics", offset, limit)
        rows, used = parse_metrics(data)
        return rows, offset + used

    def fetch(self, dest: str | os.PathLike[str] | None = None) -> Path:
        """The output folder on this machine (copied from the hosts when they share no file system)."""
        self._started()
        return self._backend().fetch(self, Path(dest) if dest is not None else None)

    def _started(self) -> None:
        """Refuse a record without an absolute job folder (its files would be looked for in the current folder)."""
        if not has_job_dir(self._record):
            why = f" ({self._record['error']})" if self._record.get("error") else ""
            raise JobNotStartedError(f"Job {self.id} ({self.name!r}) has no job folder{why}: it never started, "
                                     "so it has no logs, metrics or output.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no secrets: hosts name key files, never keys)."""
        out = {k: self._record.get(k) for k in _PUBLIC if k in self._record}
        out["spec"] = self.spec.to_dict()
        return out


def _log_key(rank: int | str) -> str:
    """'rank<R>', 'node<N>' or 'batch' from what a caller passes (JobSpecError naming rank otherwise)."""
    return log_key(rank)


def _count(name: str, value: Any, most: int) -> int:
    """A byte offset or limit: an integer from 0 to `most` (JobSpecError naming it otherwise)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise JobSpecError(f"{name}={value!r} must be an integer number of bytes.")
    if not 0 <= value <= most:
        raise JobSpecError(f"{name}={value} must be from 0 to {most}.")
    return int(value)


def has_job_dir(record: dict[str, Any]) -> bool:
    """Whether a record names an absolute job folder (records of jobs that never started name none)."""
    job_dir = record.get("job_dir")
    return isinstance(job_dir, str) and posixpath.isabs(job_dir)


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
        # kept as a failed job with the reason; one that never got a job folder has no logs (JobNotStartedError)
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
