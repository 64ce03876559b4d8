"""Slurm backend against a real single-machine Slurm (slurmctld + slurmd n1, n2 on private ports):
a 2-node fine-tune submitted through an SSH login node is watched through PENDING, RUNNING, COMPLETED
while another job is cancelled; a killed worker makes the job FAILED with its log; SLURM_* variables
of an enclosing allocation are scrubbed; the exit-code file answers once Slurm forgot a job."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import physviz.jobs as pj
from tests.realparts.procs import canary, env_of, hostile_text, job_pids, wait_for

# fixtures that start the real parts
pytest_plugins = ["tests.realparts.data", "tests.realparts.sshd", "tests.realparts.slurm"]
from tests.paths import REPO
WORKER = str(REPO / "tests" / "realparts" / "worker.py")
pytestmark = pytest.mark.slow

# What a Jupyter server running inside a Slurm allocation would pass on to sbatch.
ENCLOSING = {"SLURM_JOB_ID": "424242", "SLURM_JOBID": "424242", "SLURM_NNODES": "9", "SLURM_NTASKS": "9",
             "SLURM_JOB_NODELIST": "bogus[1-9]", "SLURM_NODELIST": "bogus[1-9]", "SLURM_MEM_PER_NODE": "999999",
             "SLURM_CPUS_PER_TASK": "8"}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> pj.JobStore:
    return pj.JobStore(tmp_path_factory.mktemp("store") / "jobs.sqlite")


@pytest.fixture
def enclosing_allocation(slurm_cluster, monkeypatch):
    """This process looks like it runs inside a Slurm job (SLURM_CONF points at the test cluster)."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    for key, value in ENCLOSING.items():
        monkeypatch.setenv(key, value)


def _spec(workdir: Path, **kw) -> pj.JobSpec:
    base = dict(backend="slurm", resources={"nodes": 2, "procs_per_node": 1, "time_limit": 10},
                environment={"python": sys.executable, "workdir": str(workdir), "env": {"OMP_NUM_THREADS": "1"}})
    base.update(kw)
    return pj.JobSpec.from_dict(base)


def test_finetune_through_login_node_pends_runs_completes_while_another_is_cancelled(
        slurm_cluster, sshd_hosts, store, ns_data, tmp_path, enclosing_allocation):
    import physviz.train

    token = f"physviz-canary-{os.getpid()}-slurm"
    hostile = hostile_text(token)
    blocker = pj.submit(_spec(tmp_path, name="blocker", command=["python", WORKER, "1000", "0.2"]), store=store)
    wait_for(lambda: blocker.status() == "running", 60, "the blocking job to start")
    login = sshd_hosts[0].as_spec()
    cfg = physviz.train.example_config(ns_data, "/ignored", steps=6)
    job = pj.submit(_spec(tmp_path / hostile, name=hostile, train_config=cfg,
                          slurm={"login": login, "env": {"SLURM_CONF": str(slurm_cluster.conf)}}), store=store)
    assert job.record["scheduler_id"].isdigit()
    assert job.record["hosts"] == [f"{login['user']}@127.0.0.1:{login['port']}"]
    assert job.logs(0, rank=0) == ("", 0)  # the log files exist from submission (read over SFTP)
    states = [(job.status(), job.record.get("scheduler_state"))]
    assert states[0] == ("pending", "PENDING")  # both nodes are taken by the blocker
    wait_for(lambda: blocker.metrics(0)[0], 90, "the blocker's first metrics")
    before = job_pids(blocker.id)
    assert len([p for p in before if env_of(p).get("RANK") is not None]) == 2
    blocker.cancel()
    assert blocker.status() == "cancelled" and blocker.refresh().record["scheduler_state"] == "CANCELLED"
    wait_for(lambda: not job_pids(blocker.id), 15, "the cancelled job's processes to end")

    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        state = job.status()
        pair = (state, job.record.get("scheduler_state"))
        if pair != states[-1]:
            states.append(pair)
        if state in pj.TERMINAL:
            break
        time.sleep(0.3)
    assert states[-1] == ("completed", "COMPLETED"), (states, job.logs(0, "batch")[0], job.logs(0, 0)[0][-2000:])
    assert ("running", "RUNNING") in states and states.index(("running", "RUNNING")) > 0
    log = job.logs(0, rank=0)[0]
    assert "ddp x 2" in log
    rows = job.metrics(0)[0]
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(1, 7)) and rows[-1]["kind"] == "done"
    assert "rendezvous at 127.0.0.1:" in job.logs(0, "batch")[0]
    out = job.fetch(tmp_path / "fetched")
    assert (out / "final.safetensors").is_file()
    assert not canary(token).exists()
    assert pj.get(job.id, store=store).name == hostile


def test_enclosing_allocation_would_break_srun_without_scrubbing(slurm_cluster, tmp_path):
    script = tmp_path / "plain.sh"
    script.write_text("#!/bin/bash\nsrun --ntasks-per-node=1 true\necho srun=$?\n")
    env = {**slurm_cluster.env, **ENCLOSING}
    out = subprocess.run(["sbatch", "--parsable", "-N", "2", "-o", str(tmp_path / "plain.log"), str(script)],
                         env=env, capture_output=True, text=True, timeout=30)
    sid = out.stdout.strip()
    wait_for(lambda: slurm_cluster.run("squeue", "-h", "-t", "all", "-j", sid, "-o", "%T").stdout.strip()
             in ("COMPLETED", "FAILED"), 60, "the plain job to end")
    assert "srun=1" in (tmp_path / "plain.log").read_text()  # what physviz.jobs avoids by scrubbing


def test_killed_worker_makes_the_job_failed_with_its_log(slurm_cluster, store, tmp_path, enclosing_allocation):
    job = pj.submit(_spec(tmp_path, name="doomed", command=["python", WORKER, "1000", "0.2"]), store=store)
    wait_for(lambda: job.metrics(0)[0] or job.status() in pj.TERMINAL, 90, "the first metrics line")
    victim = [p for p in job_pids(job.id) if env_of(p).get("RANK") == "1"]
    assert victim, job.logs(0, "batch")[0]
    os.kill(victim[0], signal.SIGKILL)
    assert job.wait(60, poll=0.3) == "failed"
    assert job.record["scheduler_state"] == "FAILED"
    node_logs = job.logs(0, "node0")[0] + job.logs(0, "node1")[0]
    assert "Signal 9" in node_logs or "SIGKILL" in node_logs, node_logs[-2000:]
    assert "step 1 rank 1" in job.logs(0, rank=1)[0]
    assert "error" in job.logs(0, "batch")[0].lower()
    wait_for(lambda: not job_pids(job.id), 20, "the failed job's processes to end")


def test_exit_code_file_answers_when_slurm_forgot_the_job(slurm_cluster, store, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    spec = _spec(tmp_path, name="aged out", command=["true"])
    for i, (code, expected) in enumerate([("0", "completed"), ("3", "failed"), (None, "unknown")]):
        job_dir = tmp_path / f"old{i}"
        (job_dir / "state").mkdir(parents=True)
        if code is not None:
            (job_dir / "state" / "exitcode").write_text(code + "\n")
        store.add({"id": f"old-{i}", "name": "aged out", "backend": "slurm", "created": time.time(),
                   "spec": spec.to_dict(), "status": "running", "final": False, "cancel_requested": False,
                   "job_dir": str(job_dir), "output_dir": str(job_dir / "output"), "scheduler_id": str(900000 + i)})
        assert pj.get(f"old-{i}", store=store).status() == expected
