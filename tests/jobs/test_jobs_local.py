"""Local backend, real torchrun: a 2-process fine-tune streams metrics to completion; cancel (from a fresh
process that reattached by id) leaves no process; a killed worker fails the job; hostile names stay literal."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import physviz.jobs as pj
from tests.realparts.procs import canary, env_of, hostile_text, job_pids, wait_for

# fixtures that start the real parts
pytest_plugins = ["tests.realparts.data"]
from tests.paths import REPO
WORKER = str(REPO / "tests" / "realparts" / "worker.py")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> pj.JobStore:
    return pj.JobStore(tmp_path_factory.mktemp("store") / "jobs.sqlite")


def _train_config(data: Path, steps: int) -> dict:
    import physviz.train

    return physviz.train.example_config(data, "/ignored/by/the/job", steps=steps)


def _no_process_left(job: pj.Job) -> None:
    wait_for(lambda: not job_pids(job.id), 20, f"the processes of job {job.id} to end")


def test_two_process_finetune_streams_metrics_to_completion(store, ns_data):
    token = f"physviz-canary-{os.getpid()}-local-ft"
    spec = pj.JobSpec(name="local fine-tune", train_config=_train_config(ns_data, steps=20),
                      overrides=[f"data.0.name={hostile_text(token)}"], resources=pj.Resources(procs_per_node=2))
    job = pj.submit(spec, store=store)
    layout_logs = [Path(job.job_dir) / "logs" / f for f in ("rank0.log", "rank1.log", "node0.log")]
    assert all(p.exists() for p in layout_logs)  # log files exist from the moment of submission

    rows, offset, log0, log_offset, seen_running_rows = [], 0, "", 0, False
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        state = job.status()
        new, offset = job.metrics(offset)
        if new and state == "running":
            seen_running_rows = True
        rows += new
        text, log_offset = job.logs(log_offset, rank=0)
        log0 += text
        if state in pj.TERMINAL:
            break
        time.sleep(0.2)
    assert state == "completed", job.logs(0, rank="node0")[0][-3000:] + job.logs(0, rank=0)[0][-3000:]
    new, offset = job.metrics(offset)
    rows += new
    assert seen_running_rows, "metrics did not stream while the job ran"
    train = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 21))
    name = yaml.safe_load(hostile_text(token))  # overrides are YAML values, passed as one argv element
    assert all(set(r["loss_per_dataset"]) == {name} for r in train)
    assert rows[-1]["kind"] == "done" and rows[-1]["checkpoint"] == "final.safetensors"
    assert (Path(job.output_dir) / "final.safetensors").is_file()
    assert job.fetch() == Path(job.output_dir)
    log0 += job.logs(log_offset, rank=0)[0]
    assert "ddp x 2" in log0 and log0 == job.logs(0, rank=0)[0]
    assert (Path(job.job_dir) / "logs" / "rank1.log").is_file()  # rank 1 of physviz.train prints nothing
    assert job.metrics(offset) == ([], offset)
    assert not canary(token).exists()
    _no_process_left(job)
    again = pj.get(job.id, store=store)
    assert again.status() == "completed" and again.record["final"]
    assert json.loads(json.dumps(again.to_dict()))["status"] == "completed"


def test_cancel_from_a_fresh_process_leaves_no_process(store, ns_data):
    job = pj.submit(pj.JobSpec(name="long fine-tune", train_config=_train_config(ns_data, steps=100000),
                               resources=pj.Resources(procs_per_node=2)), store=store)
    wait_for(lambda: job.metrics(0)[0] or job.status() in pj.TERMINAL, 120, "the first metrics line")
    assert job.status() == "running"
    pids = job_pids(job.id)
    ranks = sorted(env_of(p).get("RANK") for p in pids if env_of(p).get("RANK") is not None)
    assert ranks == ["0", "0", "1", "1"] or ranks == ["0", "1"], ranks  # workers (and their wrapper shells)
    # a new Python process (a restarted kernel) finds the job by id, monitors it, cancels it
    code = f"""
import json, sys, time, physviz.jobs as pj
job = pj.get({job.id!r}, store={str(store.path)!r})
state = job.status()
rows, off = job.metrics(0)
time.sleep(1.5)
more, off2 = job.metrics(off)
log, _ = job.logs(0, rank=0)
job.cancel()
print(json.dumps({{"before": state, "rows": len(rows), "more": len(more), "grew": off2 > off, "log": log,
                  "after": job.status(), "torch": "torch" in sys.modules}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["before"] == "running" and seen["rows"] >= 1 and seen["grew"] and seen["more"] >= 1
    assert "physviz.train" in seen["log"]
    assert seen["after"] == "cancelled" and not seen["torch"]
    assert not job_pids(job.id), "cancel left processes behind"
    assert job.status() == "cancelled"


def test_a_killed_worker_fails_the_job_with_its_log(store):
    job = pj.submit(pj.JobSpec(name="doomed", command=["python", WORKER, "1000", "0.2"],
                               resources=pj.Resources(procs_per_node=2)), store=store)
    wait_for(lambda: job.metrics(0)[0], 90, "the first metrics line")
    victim = [p for p in job_pids(job.id) if env_of(p).get("RANK") == "1" and "worker.py" in
              Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
    assert victim
    os.kill(victim[0], signal.SIGKILL)
    assert job.wait(60, poll=0.3) == "failed"
    agent_log = job.logs(0, rank="node0")[0]
    assert "Signal 9" in agent_log or "SIGKILL" in agent_log, agent_log[-2000:]
    assert "step 1 rank 1" in job.logs(0, rank=1)[0]
    _no_process_left(job)


def test_hostile_names_paths_and_values_stay_literal(store, tmp_path):
    token = f"physviz-canary-{os.getpid()}-local"
    hostile = hostile_text(token)
    script = ("import json, os, sys; "
              "json.dump({'argv': sys.argv[1:], 'env': os.environ['HOSTILE'], 'cwd': os.getcwd()}, "
              "open(os.path.join(os.environ['PHYSVIZ_JOB_DIR'], 'seen.json'), 'w'))")
    spec = pj.JobSpec(name=hostile, command=["python", "-c", script, hostile, "$(cd;touch " + token + ")"],
                      environment=pj.Environment(workdir=str(tmp_path / hostile), env={"HOSTILE": hostile}))
    job = pj.submit(spec, store=store)
    assert job.wait(90, poll=0.3) == "completed", job.logs(0, rank="node0")[0] + job.logs(0)[0]
    seen = json.loads((Path(job.job_dir) / "seen.json").read_text())
    assert seen == {"argv": [hostile, "$(cd;touch " + token + ")"], "env": hostile, "cwd": job.job_dir}
    assert Path(job.job_dir).parent == tmp_path / hostile
    assert pj.get(job.id, store=store).name == hostile
    assert not canary(token).exists()


def test_time_limit_stops_a_local_job(store):
    t0 = time.monotonic()
    job = pj.submit(pj.JobSpec(name="too long", command=["python", WORKER, "1000", "0.2"],
                               resources=pj.Resources(procs_per_node=2, time_limit="00:00:12")), store=store)
    assert job.wait(90, poll=0.5) == "failed"
    assert 12 <= time.monotonic() - t0 < 60
    assert "time limit of 12 s" in job.logs(0, rank="node0")[0]
    assert job.metrics(0)[0]  # it did run until then
    _no_process_left(job)


def test_local_workers_get_a_thread_count_that_leaves_a_core_free(store, tmp_path, monkeypatch):
    from physviz.jobs.backends.local import local_threads

    assert [local_threads(1, 2), local_threads(1, 16), local_threads(2, 16), local_threads(4, 2)] == [1, 15, 7, 1]
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    script = ("import os; open(os.path.join(os.environ['PHYSVIZ_JOB_DIR'], 'threads-%s' % os.environ['RANK']), 'w')"
              ".write(os.environ.get('OMP_NUM_THREADS', 'unset'))")
    seen = {}
    # torchrun sets 1 thread for several workers a node, and none for one: the one-worker job is the case here
    for name, env in (("default", {}), ("user", {"OMP_NUM_THREADS": "3"})):
        spec = pj.JobSpec(name=name, command=["python", "-c", script], resources=pj.Resources(procs_per_node=1),
                          environment=pj.Environment(workdir=str(tmp_path), env=env))
        job = pj.submit(spec, store=store)
        assert job.wait(90, poll=0.3) == "completed", job.logs(0, rank="node0")[0]
        seen[name] = sorted(p.read_text() for p in Path(job.job_dir).glob("threads-*"))
    assert seen == {"default": [str(local_threads(1))], "user": ["3"]}
