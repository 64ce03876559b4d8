"""SSH backend: one torchrun per host (c10d rendezvous on the first host), detached with setsid.

Files reach hosts that share no file system with this machine through SFTP (config,
data, checkpoint), and logs and metrics come back the same way, by byte offset. Each
node's process-group id is recorded; cancel ends every process carrying the job's
marker on every host.
"""
from __future__ import annotations

import json
import os
import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from physviz.jobs import procs, sshconn
from physviz.jobs.backends.base import Backend, combine, copy_output, read_local
from physviz.jobs.backends.local import write_job_files
from physviz.jobs.errors import BackendError, JobSpecError
from physviz.jobs.layout import (
    Layout,
    initial_logs,
    job_env,
    node_argv,
    shell_join,
    torchrun_argv,
    train_config_for,
)
from physviz.jobs.private import DIR_MODE, make_job_dir
from physviz.jobs.spec import JobSpec, SSHHost, check_host_files

if TYPE_CHECKING:
    from physviz.jobs.job import Job

_PROCS_SOURCE: str | None = None


def procs_source() -> str:
    """The text of physviz/jobs/procs.py, sent to hosts as ``python -c``."""
    global _PROCS_SOURCE
    if _PROCS_SOURCE is None:
        _PROCS_SOURCE = Path(procs.__file__).read_text()
    return _PROCS_SOURCE


def helper_script(spec: JobSpec, command: str, args: dict[str, Any]) -> str:
    """An sh script that runs a procs.py command with the job's Python (after a quiet prologue)."""
    lines = []
    prologue = "\n".join(spec.environment.prologue)
    if prologue:
        lines.append(f"eval {shell_join([prologue])} >/dev/null 2>&1 </dev/null")
    lines.append(shell_join(["exec", spec.python(), "-c", procs_source(), command, json.dumps(args)]))
    return "\n".join(lines) + "\n"


def run_helper(host: SSHHost, spec: JobSpec, command: str, args: dict[str, Any], timeout: float = 60) -> Any:
    """Run a procs.py command on a host and parse its JSON answer."""
    res = sshconn.run_script(host, helper_script(spec, command, args), timeout=timeout)
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    if res.returncode != 0 or not lines:
        err = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackendError(f"The job helper failed on {host.label()} with {spec.python()!r} ({err}).")
    return json.loads(lines[-1])


def launch_script(spec: JobSpec, job_id: str, layout: Layout, node: int, argv: list[str]) -> str:
    """sh script that creates the logs, starts one node detached (setsid) and prints its pgid."""
    q = shell_join
    state = layout.node_state(node)
    logs = initial_logs(spec, layout, range(spec.resources.nodes))  # ranks land on any node: create all
    lines = [
        "set -e",
        q(["mkdir", "-p", layout.logs, layout.state]),
        *(f": >> {q([p])}" for p in logs),
        q(["rm", "-f", f"{state}.exit", f"{state}.pid"]),
        q(["cd", layout.job_dir]),
    ]
    if spec.environment.venv:
        lines.append(f"PATH={q([posixpath.join(spec.environment.venv, 'bin')])}:\"$PATH\"; export PATH")
    for key, value in job_env(spec, job_id, layout).items():
        lines.append(f"{key}={q([value])}; export {key}")
    lines.append(f"setsid {q(argv)} </dev/null >>{q([layout.node_log(node)])} 2>&1 &")
    lines.append(f"n=0; while [ ! -s {q([state + '.pid'])} ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done")
    lines.append(f"cat {q([state + '.pid'])}")
    return "\n".join(lines) + "\n"


def rdzv_addr(host: SSHHost) -> str:
    """The address other nodes reach this host at (its torchrun stores listen there and nowhere else)."""
    return host.rdzv_addr or host.host


class SSHBackend(Backend):
    """Starts one torchrun per host over asyncssh; watches and ends them by marker."""

    name = "ssh"

    def check_spec(self, spec: JobSpec) -> None:
        """Enough hosts for the nodes, their key files here, and (without a shared file system) the paths to stage."""
        hosts = spec.ssh.hosts
        if not hosts:
            raise JobSpecError("An ssh job needs ssh.hosts; list at least one {host: ..., key_file: ...}.")
        if len(hosts) < spec.resources.nodes:
            n = spec.resources.nodes
            raise JobSpecError(f"resources.nodes={n} but ssh.hosts lists {len(hosts)}; add hosts or lower nodes.")
        for i, host in enumerate(hosts):
            check_host_files(host, f"ssh.hosts[{i}]")
        if not spec.ssh.shared_fs:
            for path in spec.staged_paths():
                if not os.path.exists(path):
                    raise JobSpecError(f"Data path {path!r} does not exist here, so it cannot be staged to the hosts.")

    # -- helpers ------------------------------------------------------------------------
    def _hosts(self, job: "Job") -> list[SSHHost]:
        return job.spec.ssh.hosts[: job.spec.resources.nodes]

    def _layouts(self, job: "Job") -> list[Layout]:
        dirs = job.record.get("host_dirs") or [job.job_dir] * job.spec.resources.nodes
        return [Layout(d) for d in dirs]

    def _stage(self, job: "Job", host: SSHHost, layout: Layout) -> None:
        """Copy config, spec and data to one host; data paths are rewritten to their staged copies."""
        spec = job.spec
        sshconn.makedirs(host, layout.job_dir, DIR_MODE)
        for sub in (layout.logs, layout.state, layout.data):
            sshconn.makedirs(host, sub, DIR_MODE)
        rewrite = self._rewrite(spec, layout)
        for local, remote in rewrite.items():
            if sshconn.size(host, remote) is None:  # hosts on one file system share the copy
                sshconn.put(host, local, remote)
        sshconn.write_bytes(host, layout.spec, spec.to_yaml().encode())
        config = train_config_for(spec, layout, rewrite)
        if config is not None:
            sshconn.write_bytes(host, layout.config, config.encode())

    @staticmethod
    def _rewrite(spec: JobSpec, layout: Layout) -> dict[str, str]:
        """Local path -> staged path under the host's data/ folder."""
        out: dict[str, str] = {}
        for i, local in enumerate(spec.staged_paths()):
            out[local] = posixpath.join(layout.data, f"{i}-{os.path.basename(local.rstrip('/')) or 'data'}")
        return out

    # -- interface -----------------------------------------------------------------------
    def submit(self, job: "Job") -> None:
        spec = job.spec
        hosts = self._hosts(job)
        nodes = len(hosts)
        if spec.ssh.shared_fs:
            layouts = [Layout(make_job_dir(spec.environment.workdir, job.store.runs_dir, job.id))] * nodes
        else:
            root = spec.environment.workdir or "physviz-jobs"
            layouts = []
            for host in hosts:
                sshconn.makedirs(host, root)
                layouts.append(Layout(posixpath.join(sshconn.realpath(host, root), job.id)))
        job._update(job_dir=layouts[0].job_dir, output_dir=layouts[0].output,
                    host_dirs=[lay.job_dir for lay in layouts], hosts=[h.label() for h in hosts])
        if spec.ssh.shared_fs:
            write_job_files(job, layouts[0], range(nodes))
        else:
            for host, layout in zip(hosts, layouts, strict=True):
                self._stage(job, host, layout)
        endpoint = None
        if nodes > 1:
            port = run_helper(hosts[0], spec, "port", {})
            endpoint = f"{rdzv_addr(hosts[0])}:{port}"
        started = []
        for node, (host, layout) in enumerate(zip(hosts, layouts, strict=True)):
            rewrite = None if spec.ssh.shared_fs else self._rewrite(spec, layout)
            # each node's stores listen on its own address only (one node: on loopback); node 0 hosts the rendezvous
            launch = torchrun_argv(spec, layout, nnodes=nodes, endpoint=endpoint, rdzv_id=job.id,
                                   bind=rdzv_addr(host), rdzv_host=node == 0, rewrite=rewrite)
            argv = node_argv(spec, layout, node, launch)
            res = sshconn.run_script(host, launch_script(spec, job.id, layout, node, argv))
            pgid = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
            if res.returncode != 0 or not re.fullmatch(r"[0-9]{1,9}", pgid):
                err = (res.stderr.strip().splitlines() or ["no pid reported"])[-1]
                raise BackendError(f"Cannot start node {node} of job {job.id} on {host.label()} ({err}).")
            started.append({"host": host.label(), "pgid": int(pgid)})
            job._update(nodes=started, status="running", rdzv_endpoint=endpoint)

    def _node_states(self, job: "Job") -> tuple[list[int | None], int]:
        hosts, layouts = self._hosts(job), self._layouts(job)
        exits: list[int | None] = []
        alive = 0
        seen: dict[str, int] = {}
        for node, (host, layout) in enumerate(zip(hosts, layouts, strict=True)):
            prefix = layout.node_state(node)
            st = run_helper(host, job.spec, "status", {"job_id": job.id, "prefixes": [prefix]})
            exits.append(st["exits"][prefix])
            seen[host.label()] = st["alive"]
        alive = sum(seen.values())
        return exits, alive

    def status(self, job: "Job") -> str:
        if not job.record.get("nodes"):
            return "pending"
        exits, alive = self._node_states(job)
        state = combine(exits, alive, bool(job.record.get("cancel_requested")))
        if state == "failed" and alive:
            # one node failed: the others would wait for it until a collective times out; end them
            self._kill(job, grace=5)
        return state

    def _kill(self, job: "Job", grace: float) -> list[int]:
        left: list[int] = []
        done: set[str] = set()
        for host in self._hosts(job):
            if host.label() in done:
                continue
            done.add(host.label())
            res = run_helper(host, job.spec, "kill", {"job_id": job.id, "grace": grace}, timeout=grace + 60)
            left += res["left"]
        return left

    def cancel(self, job: "Job", timeout: float) -> None:
        left = self._kill(job, grace=min(10.0, timeout / 2))
        if left:
            raise BackendError(f"Job {job.id}: processes {left} survived SIGKILL on its hosts.")

    def _file_host(self, job: "Job", which: str) -> tuple[SSHHost, str]:
        """Host and path of a job file: node logs live on their node, rank files on whichever node ran the rank."""
        hosts, layouts = self._hosts(job), self._layouts(job)
        if which.startswith("node"):
            node = int(which[4:])
            if node >= len(hosts):
                return hosts[0], layouts[0].node_log(node)
            return hosts[node], layouts[node].node_log(node)
        path_of = (lambda lay: lay.metrics) if which == "metrics" else (lambda lay: lay.log(which))
        placed = (job.record.get("file_hosts") or {}).get(which)
        if placed is not None:
            return hosts[placed], path_of(layouts[placed])
        best, best_size = 0, -1
        for i, (host, layout) in enumerate(zip(hosts, layouts, strict=True)):
            size = sshconn.size(host, path_of(layout))
            if size is not None and size > best_size:
                best, best_size = i, size
        if best_size > 0 and len({h.label() for h in hosts}) > 1:
            job._update(file_hosts={**(job.record.get("file_hosts") or {}), which: best})
        return hosts[best], path_of(layouts[best])

    def read(self, job: "Job", which: str, offset: int, limit: int) -> bytes:
        if job.spec.ssh.shared_fs:
            layout = Layout(job.job_dir)
            return read_local(layout.metrics if which == "metrics" else layout.log(which), offset, limit)
        host, path = self._file_host(job, which)
        return sshconn.read_bytes(host, path, offset, limit)

    def fetch(self, job: "Job", dest: Path | None) -> Path:
        if job.spec.ssh.shared_fs:
            return copy_output(job.output_dir, dest)
        host, metrics = self._file_host(job, "metrics")
        import shutil

        target = Path(dest) if dest is not None else job.store.path.parent / "results" / job.id
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.fetching"
        shutil.rmtree(tmp, ignore_errors=True)
        sshconn.get(host, posixpath.dirname(metrics), str(tmp))  # tmp does not exist: it becomes the copy
        shutil.copytree(tmp, target, dirs_exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        return target
