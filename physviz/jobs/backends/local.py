"""Local backend: torchrun in its own session on this machine (the default of an embedded kit)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from physviz.jobs import procs
from physviz.jobs.backends.base import Backend, combine, copy_output, read_local
from physviz.jobs.errors import BackendError
from physviz.jobs.layout import (
    Layout,
    initial_logs,
    job_env,
    node_argv,
    torchrun_argv,
    train_config_for,
)
from physviz.jobs.private import make_job_dir, make_private_dirs, write_private

if TYPE_CHECKING:
    from physviz.jobs.job import Job

THREAD_VARIABLE = "OMP_NUM_THREADS"

# Children started by this process, kept so they are reaped (a cache, not the source of truth).
_CHILDREN: dict[str, subprocess.Popen] = {}


def write_job_files(job: "Job", layout: Layout, nodes: range) -> None:
    """job.yaml, config.yaml (both 0600) and empty log files in a local job folder (made by `make_job_dir`)."""
    make_private_dirs(layout.logs, layout.state)
    write_private(layout.spec, job.spec.to_yaml())
    config = train_config_for(job.spec, layout)
    if config is not None:
        write_private(layout.config, config)
    for path in initial_logs(job.spec, layout, nodes):
        Path(path).touch()


def local_threads(nproc: int, cores: int | None = None) -> int:
    """Threads for each of `nproc` workers on this machine: its cores less one, shared among them (at least 1).

    The core left over is for the notebook that launched the job (its kernel, the Jupyter server and the
    browser drawing its views): torch's OpenMP threads wait for each other at every operation, so one
    of them preempted by another process stalls them all, and a small model then runs tens of times slower.
    """
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, (cores - 1) // max(1, nproc))


class LocalBackend(Backend):
    """Runs torchrun here (its stores on loopback), in a new session, and finds its processes by marker."""

    name = "local"

    def submit(self, job: "Job") -> None:
        spec = job.spec
        layout = Layout(make_job_dir(spec.environment.workdir, job.store.runs_dir, job.id))
        job._update(job_dir=layout.job_dir, output_dir=layout.output, hosts=["localhost"])
        write_job_files(job, layout, range(1))
        argv = node_argv(spec, layout, 0, torchrun_argv(spec, layout, nnodes=1, endpoint=None, rdzv_id=job.id))
        env = {**os.environ, **job_env(spec, job.id, layout)}
        env.setdefault(THREAD_VARIABLE, str(local_threads(spec.resources.nproc)))  # the user's setting wins
        for name in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):  # one node: workers connect over loopback
            env.setdefault(name, "lo")
        if spec.environment.venv:
            env["PATH"] = os.path.join(spec.environment.venv, "bin") + os.pathsep + env.get("PATH", "")
        with open(layout.node_log(0), "ab") as log:
            try:
                proc = subprocess.Popen(argv, cwd=layout.job_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                raise BackendError(f"Cannot start the local job ({exc}).") from None
        _CHILDREN[job.id] = proc
        job._update(nodes=[{"host": "localhost", "pgid": proc.pid}], status="running")

    def _reap(self, job: "Job") -> None:
        proc = _CHILDREN.get(job.id)
        if proc is not None and proc.poll() is not None:
            _CHILDREN.pop(job.id, None)

    def status(self, job: "Job") -> str:
        self._reap(job)
        layout = Layout(job.job_dir)
        st = procs.node_status(job.id, [layout.node_state(0)])
        exits = list(st["exits"].values())
        state = combine(exits, st["alive"], bool(job.record.get("cancel_requested")))
        if state == "failed" and st["alive"]:  # the node failed but left processes (e.g. killed agent): end them
            procs.kill_job(job.id, grace=5)
        return state

    def read(self, job: "Job", which: str, offset: int, limit: int) -> bytes:
        layout = Layout(job.job_dir)
        path = layout.metrics if which == "metrics" else layout.log(which)
        return read_local(path, offset, limit)

    def cancel(self, job: "Job", timeout: float) -> None:
        result = procs.kill_job(job.id, grace=min(10.0, timeout / 2))
        self._reap(job)
        proc = _CHILDREN.pop(job.id, None)
        if proc is not None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if result["left"]:
            raise BackendError(f"Job {job.id}: processes {result['left']} survived SIGKILL.")

    def fetch(self, job: "Job", dest: Path | None) -> Path:
        return copy_output(job.output_dir, dest)
