"""Start a real single-machine Slurm (slurmctld + one slurmd per node) in a temp dir on private ports."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .procs import free_port, pids_with_env, stop_pids, stop_process

PLUGINS = Path("/usr/lib/x86_64-linux-gnu/slurm-wlm")


@dataclass
class SlurmCluster:
    """A running test cluster: its config, daemons and the environment its clients need."""

    root: Path
    conf: Path
    nodes: tuple[str, ...]
    ctld: subprocess.Popen
    slurmds: list[subprocess.Popen] = field(default_factory=list)
    munged: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """Client environment: this process's environment with SLURM_CONF pointing at our config."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster."""
        return subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=30)

    def logs(self) -> str:
        """The daemons' logs, for failure messages."""
        parts = []
        for log in sorted(self.root.glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


def _auth_lines(root: Path) -> tuple[list[str], bool]:
    """auth/none when the plugin is there (no munged needed), else munge."""
    if (PLUGINS / "auth_none.so").exists() and (PLUGINS / "cred_none.so").exists():
        return ["AuthType=auth/none", "CredType=cred/none"], False
    sock = root / "munge" / "munge.socket"
    return ["AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={sock}"], True


def _start_munged(root: Path) -> subprocess.Popen:
    """A private munged (own key, socket and pid file) for the auth/munge fallback."""
    mdir = root / "munge"
    mdir.mkdir(mode=0o700)
    key = mdir / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    proc = subprocess.Popen(["/usr/sbin/munged", "-F", "--force", f"--key-file={key}",
                             f"--socket={mdir / 'munge.socket'}", f"--pid-file={mdir / 'munged.pid'}",
                             f"--log-file={root / 'munged.log'}", f"--seed-file={mdir / 'seed'}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return proc


def write_conf(root: Path, nodes: tuple[str, ...], cpus: int) -> Path:
    """A slurm.conf for `nodes` on 127.0.0.1 with private ports and every path under `root`."""
    host = socket.gethostname()
    ctld_port = free_port()
    node_ports = [free_port() for _ in nodes]
    while len(set(node_ports + [ctld_port])) != len(nodes) + 1 or sorted(node_ports) != list(
            range(min(node_ports), min(node_ports) + len(nodes))):
        base = free_port()
        node_ports = list(range(base, base + len(nodes)))
        if all(_port_free(p) for p in node_ports) and ctld_port not in node_ports:
            break
    auth, _ = _auth_lines(root)
    for sub in ("state", "spool"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name in nodes:
        (root / "spool" / name).mkdir(exist_ok=True)
    node_range = f"[{node_ports[0]}-{node_ports[-1]}]" if len(nodes) > 1 else str(node_ports[0])
    names = ",".join(nodes)
    lines = [
        "ClusterName=physviz-test",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={node_ports[0]}",
        "SlurmUser=root",
        "SlurmdUser=root",
        *auth,
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "DefMemPerCPU=100",
        "SchedulerType=sched/backfill",
        "JobCompType=jobcomp/filetxt",
        f"JobCompLoc={root / 'jobcomp.txt'}",
        "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        "MpiDefault=none",
        "ReturnToService=2",
        "KillWait=2",
        "InactiveLimit=0",
        "MinJobAge=300",
        "SlurmdTimeout=60",
        "MessageTimeout=10",
        "SlurmdParameters=config_overrides",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool' / '%n'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd-%n.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd-%n.log'}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        f"NodeName={names} NodeHostname={host} NodeAddr=127.0.0.1 Port={node_range} "
        f"CPUs={cpus} RealMemory=1000 State=UNKNOWN",
        f"PartitionName=debug Nodes={names} Default=YES MaxTime=INFINITE State=UP",
        "",
    ]
    conf = root / "slurm.conf"
    conf.write_text("\n".join(lines))
    return conf


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_slurm(root: Path, nodes: tuple[str, ...] = ("n1", "n2"), cpus: int = 1) -> SlurmCluster:
    """Start slurmctld and one slurmd per node; return once every node is idle."""
    for exe in ("/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch"):
        if not Path(exe).exists():
            raise RuntimeError(f"{exe} is missing: run scripts/setup-env.sh (Debian slurmctld slurmd slurm-client)")
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    conf = write_conf(root, nodes, cpus)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    env = {k: v for k, v in env.items() if not k.startswith("SLURM_") or k == "SLURM_CONF"}
    _, need_munge = _auth_lines(root)
    munged = _start_munged(root) if need_munge else None
    quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                 start_new_session=True, env=env)
    ctld = subprocess.Popen(["/usr/sbin/slurmctld", "-D", "-i", "-f", str(conf)], **quiet)
    cluster = SlurmCluster(root, conf, nodes, ctld, munged=munged)
    try:
        time.sleep(0.5)
        for name in nodes:
            cluster.slurmds.append(subprocess.Popen(["/usr/sbin/slurmd", "-D", "-N", name, "-f", str(conf)], **quiet))
        deadline = time.monotonic() + 60
        while True:
            out = cluster.run("sinfo", "-h", "-N", "-o", "%N %t")
            states = dict(line.split() for line in out.stdout.splitlines() if line.strip())
            if out.returncode == 0 and all(states.get(n, "").startswith("idle") for n in nodes):
                break
            dead = [p for p in [ctld, *cluster.slurmds] if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"Slurm did not come up ({states}, {out.stderr.strip()}):\n{cluster.logs()}")
            time.sleep(0.3)
    except BaseException:
        stop_slurm(cluster)
        raise
    return cluster


def stop_slurm(cluster: SlurmCluster) -> None:
    """Stop slurmd's and slurmctld by pid, then any step daemon still holding our SLURM_CONF."""
    for proc in cluster.slurmds:
        stop_process(proc)
    stop_process(cluster.ctld)
    stop_pids(pids_with_env("SLURM_CONF", str(cluster.conf)), grace=3)
    if cluster.munged is not None:
        stop_process(cluster.munged)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A two-node Slurm on 127.0.0.1 (n1, n2; one CPU each), stopped at teardown."""
    root = tmp_path_factory.mktemp("slurm")
    cluster = start_slurm(root)
    try:
        yield cluster
    finally:
        stop_slurm(cluster)
        shutil.rmtree(root / "spool", ignore_errors=True)
