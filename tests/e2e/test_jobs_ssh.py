"""SSH backend against Debian's sshd on 127.0.0.1 and 127.0.0.2: a 2-node x 1-process torchrun fine-tune
(gloo across the hosts, files staged with SFTP) streams its logs; a second job is cancelled cleanly from a
fresh process; hostile names stay literal; keys never reach a record."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import physviz.jobs as pj
from tests.realparts.procs import canary, env_of, free_port, hostile_text, job_pids, wait_for

# fixtures that start the real parts
pytest_plugins = ["tests.realparts.data", "tests.realparts.sshd"]
from tests.paths import REPO
WORKER = str(REPO / "tests" / "realparts" / "worker.py")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> pj.JobStore:
    return pj.JobStore(tmp_path_factory.mktemp("store") / "jobs.sqlite")


@pytest.fixture(scope="module")
def remote(tmp_path_factory) -> Path:
    """The hosts' job folder root (the hosts are this machine, so it is a local path too)."""
    return tmp_path_factory.mktemp("remote")


def _spec(hosts, remote: Path, **kw) -> pj.JobSpec:
    base = dict(backend="ssh", resources={"nodes": len(hosts), "procs_per_node": 1},
                environment={"python": sys.executable, "workdir": str(remote), "env": {"OMP_NUM_THREADS": "1"}},
                ssh={"hosts": [h.as_spec() for h in hosts], "shared_fs": False})
    base.update(kw)
    return pj.JobSpec.from_dict(base)


def test_two_node_finetune_over_ssh_streams_logs(sshd_hosts, remote, store, ns_data, tmp_path):
    import physviz.train

    cfg = physviz.train.example_config(ns_data, "/ignored", steps=16)
    job = pj.submit(_spec(sshd_hosts, remote, name="ssh fine-tune", train_config=cfg), store=store)
    assert job.record["hosts"] == [f"{h.user}@{h.host}:{h.port}" for h in sshd_hosts]
    assert [n["pgid"] > 1 for n in job.record["nodes"]] == [True, True]
    assert job.logs(0, rank=0) == ("", 0) and (Path(job.job_dir) / "logs" / "rank1.log").exists()

    chunks, offset, rows, moff, servers = [], 0, [], 0, set()
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        state = job.status()
        text, offset = job.logs(offset, rank=0)
        if text and state == "running":
            chunks.append(text)
        new, moff = job.metrics(moff)
        rows += new
        for pid in job_pids(job.id):  # which sshd started each agent: one per "host"
            conn = env_of(pid).get("SSH_CONNECTION", "")
            if conn:
                servers.add(conn.split()[2])
        if state in pj.TERMINAL:
            break
        time.sleep(0.3)
    assert state == "completed", job.logs(0, "node0")[0][-3000:] + job.logs(0, "node1")[0][-3000:]
    assert len(chunks) >= 2, "the rank 0 log did not stream in pieces while the job ran"
    assert servers == {"127.0.0.1", "127.0.0.2"}
    log = job.logs(0, rank=0)[0]
    assert "ddp x 2" in log and log.startswith("".join(chunks))
    rows += job.metrics(moff)[0]
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(1, 17))
    assert rows[-1]["kind"] == "done"
    # the config the workers read points at the staged copy of the data on the host
    staged = yaml.safe_load((Path(job.job_dir) / "config.yaml").read_text())
    assert staged["data"][0]["path"].startswith(job.job_dir + "/data/")
    assert staged["output_dir"] == job.output_dir
    out = job.fetch(tmp_path / "fetched")
    assert (out / "final.safetensors").is_file() and (out / "metrics.jsonl").is_file()
    assert not job_pids(job.id)
    # secrets: the key file is named in the record, its contents appear nowhere
    key_text = Path(sshd_hosts[0].key_file).read_text().split("\n")[1]
    assert key_text and key_text not in store.path.read_bytes().decode(errors="replace")
    assert key_text not in json.dumps(job.to_dict())
    for f in Path(job.job_dir).rglob("*"):
        if f.is_file() and f.suffix != ".safetensors" and "data" not in f.relative_to(job.job_dir).parts:
            assert key_text not in f.read_text(errors="replace"), f


def test_second_job_cancelled_cleanly_from_a_fresh_process(sshd_hosts, remote, store):
    spec = _spec(sshd_hosts, remote, name="ssh long", command=["python", WORKER, "1000", "0.2"])
    spec.ssh.shared_fs = True  # the hosts see this machine's files: nothing is copied, logs are read here
    job = pj.submit(spec, store=store)
    wait_for(lambda: job.metrics(0)[0] or job.status() in pj.TERMINAL, 90, "the first metrics line")
    assert job.status() == "running"
    pids = job_pids(job.id)
    workers = [p for p in pids if env_of(p).get("RANK") is not None]
    assert len(workers) == 2
    assert WORKER.encode() in Path(f"/proc/{workers[0]}/cmdline").read_bytes().split(b"\0")
    code = f"""
import json, sys, physviz.jobs as pj
job = pj.get({job.id!r}, store={str(store.path)!r})
state = job.status()
log, _ = job.logs(0, rank=1)
job.cancel()
print(json.dumps({{"before": state, "log": log, "after": job.status(), "torch": "torch" in sys.modules}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["before"] == "running" and "step 1 rank 1" in seen["log"]
    assert seen["after"] == "cancelled" and not seen["torch"]
    assert not job_pids(job.id), "cancel left processes on the hosts"
    assert not any(Path(f"/proc/{p}").exists() and env_of(p).get("PHYSVIZ_JOB_ID") == job.id for p in pids)
    assert job.status() == "cancelled"


def test_hostile_names_paths_and_values_over_ssh(sshd_hosts, remote, store, tmp_path):
    token = f"physviz-canary-{os.getpid()}-ssh"
    hostile = hostile_text(token)
    script = tmp_path / f"{hostile}.py"  # staged with SFTP under its hostile name
    script.write_text("import json, os, sys\n"
                      "json.dump({'argv': sys.argv[1:], 'env': os.environ['HOSTILE'], 'me': __file__},\n"
                      "          open(os.path.join(os.environ['PHYSVIZ_JOB_DIR'], 'seen.json'), 'w'))\n")
    spec = _spec(sshd_hosts[1:], remote / hostile, name=hostile, command=["python", str(script), hostile],
                 data=[str(script)], environment={"python": sys.executable, "workdir": str(remote / hostile),
                                                  "env": {"HOSTILE": hostile}})
    job = pj.submit(spec, store=store)
    assert job.wait(90, poll=0.3) == "completed", job.logs(0, "node0")[0]
    seen = json.loads((Path(job.job_dir) / "seen.json").read_text())
    assert seen["argv"] == [hostile] and seen["env"] == hostile
    assert seen["me"] == f"{job.job_dir}/data/0-{hostile}.py"  # the staged copy ran, not the local file
    assert Path(job.job_dir).parent == remote / hostile
    assert not canary(token).exists()


def test_unreachable_or_untrusted_host_fails_submission_clearly(sshd_hosts, remote, store, tmp_path):
    host = {**sshd_hosts[0].as_spec(), "port": free_port()}
    spec = _spec(sshd_hosts[:1], remote, name="nowhere", command=["python", "-c", "pass"],
                 ssh={"hosts": [host], "shared_fs": False})
    with pytest.raises(pj.BackendError, match=r"Cannot connect to .*127\.0\.0\.1"):
        pj.submit(spec, store=store)
    failed = [j for j in pj.list(store) if j.name == "nowhere"]
    assert len(failed) == 1 and failed[0].status() == "failed" and "Cannot connect" in failed[0].record["error"]
    # a host whose key is not in known_hosts is refused
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    spec = _spec(sshd_hosts[:1], remote, name="untrusted", command=["python", "-c", "pass"],
                 ssh={"hosts": [{**sshd_hosts[0].as_spec(), "known_hosts": str(empty)}]})
    with pytest.raises(pj.BackendError, match="Cannot connect to .*127.0.0.1"):
        pj.submit(spec, store=store)
