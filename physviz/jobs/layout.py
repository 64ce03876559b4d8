"""A job's folder on its hosts and the command lines that run it (shared by every backend).

Layout of ``<job_dir>``::

    job.yaml          the spec
    config.yaml       the train config the workers run (output_dir -> output/)
    output/           the run's output_dir: metrics.jsonl, checkpoints/, final.safetensors
    logs/rank<R>.log  stdout+stderr of global rank R (exists from submission on)
    logs/node<N>.log  the torchrun agent of node N
    state/node<N>.pid, state/node<N>.exit   pid (= process group) and exit status of node N
    data/             staged data when the hosts share no file system

Nothing a user wrote is pasted into shell text unquoted: fixed scripts take their
values as positional arguments, and generated text uses `shlex.quote` on every value.
"""
from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import overload

from physviz.jobs.spec import JobSpec
from physviz.train.command import train_argv
from physviz.train.metrics import METRICS_FILE

MAX_RANK = 999_999_999
MAX_OFFSET = (1 << 53) - 1  # the largest byte offset of a log or metrics read: a JSON (JavaScript) client holds it exactly
MAX_LIMIT = 1 << 30  # the most bytes one read returns
_LOG_KEY = re.compile(r"(rank|node)?([0-9]{1,9})")  # ASCII digits only (re's [0-9], not str.isdigit)
LOOPBACK = "127.0.0.1"

# Runs one node: records its pid, runs the prologue, runs torchrun, writes the exit code.
# argv: physviz-node STATE_PREFIX PROLOGUE CMD...
NODE_SH = r"""state=$1; prologue=$2; shift 2
echo "$$" > "$state.pid.tmp" && mv -f "$state.pid.tmp" "$state.pid"
if [ -n "$prologue" ]; then
  eval "$prologue"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "physviz: the prologue failed with exit status $rc" >&2
    echo "$rc" > "$state.exit"
    exit "$rc"
  fi
fi
"$@"
rc=$?
if [ "$rc" -eq 124 ] && [ -n "${PHYSVIZ_TIME_LIMIT:-}" ]; then
  echo "physviz: the job reached its time limit of ${PHYSVIZ_TIME_LIMIT} s and was stopped" >&2
fi
echo "$rc" > "$state.exit.tmp" && mv -f "$state.exit.tmp" "$state.exit"
exit "$rc"
"""

# Runs one worker under torchrun: its output goes to logs/rank$RANK.log.
# argv: physviz-worker LOG_DIR CMD...
WORKER_SH = r"""d=$1; shift
exec >>"$d/rank${RANK:-0}.log" 2>&1
exec "$@"
"""

# A Slurm task (one per node): its output goes to logs/node$SLURM_NODEID.log.
# argv: physviz-node JOB_DIR CMD...
SLURM_NODE_SH = r"""d=$1; shift
exec >>"$d/logs/node${SLURM_NODEID:-0}.log" 2>&1
exec "$@"
"""


class _Below:
    """A path below the job folder, read as an attribute of a `Layout`."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    @overload
    def __get__(self, layout: None, owner: type) -> "_Below": ...

    @overload
    def __get__(self, layout: "Layout", owner: type) -> str: ...

    def __get__(self, layout: "Layout | None", owner: type) -> "str | _Below":
        return self if layout is None else layout._p(*self.parts)


@dataclass(frozen=True)
class Layout:
    """Paths of one job's files on a host (POSIX paths)."""

    job_dir: str

    spec = _Below("job.yaml")
    config = _Below("config.yaml")
    output = _Below("output")
    metrics = _Below("output", METRICS_FILE)
    logs = _Below("logs")
    state = _Below("state")
    data = _Below("data")
    batch_script = _Below("job.sbatch")
    batch_log = _Below("logs", "batch.log")
    exitcode = _Below("state", "exitcode")

    def _p(self, *parts: str) -> str:
        return posixpath.join(self.job_dir, *parts)

    def rank_log(self, rank: int) -> str:
        return self._p("logs", f"rank{rank}.log")

    def node_log(self, node: int) -> str:
        return self._p("logs", f"node{node}.log")

    def node_state(self, node: int) -> str:
        """Prefix of the node's ``.pid`` and ``.exit`` files."""
        return self._p("state", f"node{node}")

    def log(self, which: int | str) -> str:
        """Path of a log: a global rank (int), 'rank<R>', 'node<N>' or 'batch' (JobSpecError otherwise)."""
        key = log_key(which)
        if key == "batch":
            return self.batch_log
        return self._p("logs", f"{key}.log")


def log_key(which: int | str) -> str:
    """'rank<R>', 'node<N>' or 'batch' from a rank (int or ASCII digits), 'rank<R>', 'node<N>' or 'batch'.

    Only ASCII digits count ('²' and other Unicode digits are refused), at most 9 of them.
    """
    from physviz.jobs.errors import JobSpecError

    if isinstance(which, bool) or not isinstance(which, (int, str)):
        raise JobSpecError(f"rank={which!r} is not a rank; give an integer, 'node<N>' or 'batch'.")
    if isinstance(which, int):
        if not 0 <= which <= MAX_RANK:
            raise JobSpecError(f"rank={which} is out of range; ranks run from 0 to {MAX_RANK}.")
        return f"rank{which}"
    if which == "batch":
        return which
    match = _LOG_KEY.fullmatch(which)
    if match is None:
        raise JobSpecError(f"rank={which!r} is not a log; give a rank (0, 1, ...), 'node<N>' or 'batch'.")
    return f"{match.group(1) or 'rank'}{int(match.group(2))}"


def job_env(spec: JobSpec, job_id: str, layout: Layout) -> dict[str, str]:
    """Variables every process of the job gets (the marker, its folders, the user's env)."""
    env = {
        "PHYSVIZ_JOB_ID": job_id,
        "PHYSVIZ_JOB_DIR": layout.job_dir,
        "PHYSVIZ_OUTPUT_DIR": layout.output,
        "PYTHONUNBUFFERED": "1",
    }
    if spec.resources.time_limit_seconds and spec.backend != "slurm":
        env["PHYSVIZ_TIME_LIMIT"] = str(spec.resources.time_limit_seconds)
    env.update(spec.environment.env)
    return env


def worker_argv(spec: JobSpec, layout: Layout, rewrite: dict[str, str] | None = None) -> list[str]:
    """What each worker runs: ``python -m physviz.train config.yaml [overrides]`` or the spec's command."""
    python = spec.python()
    if spec.command is not None:
        argv = list(spec.command)
        if argv[0] == "python":
            argv[0] = python
        return [rewrite_value(a, rewrite) for a in argv]
    overrides = []
    for item in spec.overrides:
        key, value = item.split("=", 1)
        overrides.append(f"{key}={rewrite_value(value, rewrite)}")
    return train_argv(layout.config, overrides, python)


def torchrun_argv(spec: JobSpec, layout: Layout, *, nnodes: int, endpoint: str | None, rdzv_id: str,
                  bind: str = LOOPBACK, rdzv_host: bool | None = None,
                  rewrite: dict[str, str] | None = None) -> list[str]:
    """torchrun (through `physviz.jobs.bindrun`) ``... --no-python sh -c WORKER_SH ...`` for one node.

    Its TCP stores listen on `bind` alone: this node's address for a multi-node job, loopback for a
    one-node job (`endpoint` None: the rendezvous is on 127.0.0.1, a free port). `rdzv_host` says
    whether this node hosts the rendezvous store (None: torch tells from the endpoint's address).
    """
    if endpoint is None:
        endpoint, bind, rdzv_host = f"{LOOPBACK}:0", LOOPBACK, None
    argv = [spec.python(), "-c", bindrun_source(), bind, f"--nnodes={nnodes}", "--rdzv-backend=c10d",
            f"--rdzv-endpoint={endpoint}", f"--rdzv-id={rdzv_id}"]
    if rdzv_host is not None:
        argv.append(f"--rdzv-conf=is_host={int(rdzv_host)}")
    argv += [f"--nproc-per-node={spec.resources.nproc}", "--max-restarts=0", "--monitor-interval=1", "--no-python",
             "sh", "-c", WORKER_SH, "physviz-worker", layout.logs, *worker_argv(spec, layout, rewrite)]
    return argv


def bindrun_source() -> str:
    """The text of physviz/jobs/bindrun.py, run as ``python -c`` (the hosts need torch, not physviz)."""
    from physviz.jobs import bindrun

    global _BINDRUN
    if _BINDRUN is None:
        with open(bindrun.__file__, encoding="utf-8") as f:
            _BINDRUN = f.read()
    return _BINDRUN


_BINDRUN: str | None = None


def node_argv(spec: JobSpec, layout: Layout, node: int, launch: list[str]) -> list[str]:
    """Wrap a node's torchrun in NODE_SH (pid file, prologue, exit-code file) and the time limit."""
    limit = spec.resources.time_limit_seconds
    if limit:
        launch = ["timeout", "--foreground", "--kill-after=30", str(limit), *launch]
    prologue = "\n".join(spec.environment.prologue)
    return ["sh", "-c", NODE_SH, "physviz-node", layout.node_state(node), prologue, *launch]


def rewrite_value(value: str, rewrite: dict[str, str] | None) -> str:
    """A staged path for a local one (exactly equal, or beneath it), else the value unchanged."""
    if not rewrite:
        return value
    import os

    if not isinstance(value, str) or not value:
        return value
    candidate = os.path.abspath(os.path.expanduser(value)) if not value.startswith(("-", "=")) else value
    for local, remote in rewrite.items():
        if candidate == local:
            return remote
        if candidate.startswith(local.rstrip("/") + "/"):
            return remote + candidate[len(local.rstrip("/")):]
    return value


def rewrite_config(value: object, rewrite: dict[str, str] | None) -> object:
    """Rewrite every string in a config that names a staged local path."""
    if isinstance(value, dict):
        return {k: rewrite_config(v, rewrite) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite_config(v, rewrite) for v in value]
    if isinstance(value, str):
        return rewrite_value(value, rewrite)
    return value


def shell_join(argv: list[str]) -> str:
    """One POSIX-shell command line from an argv, every element quoted."""
    return " ".join(shlex.quote(a) for a in argv)


def initial_logs(spec: JobSpec, layout: Layout, nodes: range | list[int]) -> list[str]:
    """Log files of the given nodes that exist from the moment of submission."""
    nproc = spec.resources.nproc
    paths = []
    for node in nodes:
        paths.append(layout.node_log(node))
        paths += [layout.rank_log(node * nproc + local) for local in range(nproc)]
    return paths


def train_config_for(spec: JobSpec, layout: Layout, rewrite: dict[str, str] | None = None) -> str | None:
    """The YAML the workers read: the spec's train config, output_dir set to the job's output folder."""
    cfg = spec.load_train_config()
    if cfg is None:
        return None
    from physviz.typed_config import dump_yaml

    cfg = rewrite_config(cfg, rewrite)
    assert isinstance(cfg, dict)
    cfg["output_dir"] = layout.output
    return dump_yaml(cfg)
