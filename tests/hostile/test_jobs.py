"""Hostile inputs to physviz.jobs: each is one clear JobSpecError/JobStoreError naming the setting or file,
nothing is lost, nothing a user wrote is executed, and a running job listens on no outside interface."""
from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

import physviz.jobs as pj
from physviz.errors import PhysvizError
from physviz.jobs.errors import JobNotStartedError
from tests.realparts.procs import canary, hostile_text, job_pids, wait_for

SLEEPER = "import time; print('sleeper up', flush=True); time.sleep(600)"
# A DDP worker: joins the gloo process group through torchrun's store, then waits to be cancelled.
DDP_WORKER = ("import time, torch.distributed as d; d.init_process_group('gloo'); d.barrier(); "
              "print('ddp up', d.get_rank(), flush=True); time.sleep(600)")


@pytest.fixture
def store(tmp_path) -> pj.JobStore:
    return pj.JobStore(tmp_path / "store" / "jobs.sqlite")


def _command(name: str = "hostile", command: list[str] | None = None, **kw) -> dict:
    return {"name": name, "backend": "local", "command": command or ["python", "-c", "print('hi')"], **kw}


def _wait_done(job: pj.Job, timeout: float = 60) -> str:
    state = job.wait(timeout=timeout, poll=0.2)
    assert not job_pids(job.id)
    return state


# -- workdir that cannot be made ------------------------------------------------------------------
@pytest.mark.parametrize("workdir", ["/proc/nope", "/dev/null/sub"])
def test_a_workdir_that_cannot_be_made_is_one_clear_error_and_a_failed_record(store, workdir, tmp_path,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    keep = pj.submit(_command("keep"), store=store)
    _wait_done(keep)
    with pytest.raises(pj.JobSpecError) as e:
        pj.submit(_command(environment={"workdir": workdir}), store=store)
    assert "environment.workdir" in str(e.value) and workdir in str(e.value)
    records = store.records()
    assert [r["id"] for r in records][0] == keep.id and len(records) == 2  # nothing lost
    failed = pj.get(records[1]["id"], store=store)
    assert failed.status() == "failed" and "environment.workdir" in failed.record["error"]
    assert not failed.record.get("job_dir") and not failed.record.get("output_dir")  # no relative paths
    with pytest.raises(JobNotStartedError, match="environment.workdir"):
        failed.logs(0, rank=0)
    with pytest.raises(JobNotStartedError):
        failed.metrics(0)
    assert not (tmp_path / "logs").exists() and not (tmp_path / "output").exists()


def test_a_record_without_a_job_folder_never_reads_the_current_folder(store, tmp_path, monkeypatch):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "rank0.log").write_text("secret of the server's folder")
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "loss": 1.0}\n')
    monkeypatch.chdir(tmp_path)
    for job_dir in ("", "relative/folder", None):
        record = {"id": f"old-{job_dir}".replace("/", "_"), "name": "old", "backend": "local", "created": 1.0,
                  "spec": {"name": "old", "command": ["true"]}, "status": "failed", "final": True,
                  "cancel_requested": False}
        if job_dir is not None:
            record["job_dir"] = job_dir
            record["output_dir"] = job_dir
        store.add(record)
        job = pj.get(record["id"], store=store)
        with pytest.raises(JobNotStartedError, match="no job folder"):
            job.logs(0, rank=0)
        with pytest.raises(JobNotStartedError, match="no job folder"):
            job.metrics(0)
        with pytest.raises(JobNotStartedError):
            job.fetch()


# -- rendezvous on loopback only ------------------------------------------------------------------
def _listening(pids: list[int]) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state held by these processes."""
    inodes: dict[str, tuple[str, int]] = {}
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            hex_addr, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            family = socket.AF_INET if size == 4 else socket.AF_INET6
            inodes[fields[9]] = (socket.inet_ntop(family, raw), int(hex_port, 16))
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                found.append(inodes[link[8:-1]])
    return sorted(set(found))


@pytest.mark.slow
def test_a_local_job_listens_on_loopback_only(store):
    job = pj.submit(_command("ddp", ["python", "-c", DDP_WORKER], resources={"procs_per_node": 2}), store=store)
    try:
        wait_for(lambda: "ddp up 1" in job.logs(0, rank=1)[0] or job.status() != "running", 120,
                 "both DDP workers to join")
        assert job.status() == "running", job.logs(0, rank="node0")[0][-3000:]
        sockets = _listening(job_pids(job.id))
        assert sockets, "the job's rendezvous store was not found listening"
        outside = [(addr, port) for addr, port in sockets if addr not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")]
        assert not outside, f"job {job.id} listens on {outside}"
    finally:
        job.cancel()
    assert job.status() == "cancelled" and not job_pids(job.id)


# -- files of a job are private from the start ----------------------------------------------------
def test_job_files_are_private_from_the_moment_they_exist(store, monkeypatch):
    chmods: list[str] = []
    real_chmod = os.chmod
    monkeypatch.setattr(os, "chmod", lambda path, mode, **kw: (chmods.append(str(path)), real_chmod(path, mode, **kw)))
    old = os.umask(0o002)  # a umask that would leave new files group-writable and world-readable
    try:
        job = pj.submit(_command(environment={"env": {"SERVICE_URL": "https://u:p@example.invalid"}}), store=store)
    finally:
        os.umask(old)
    _wait_done(job)
    job_dir = Path(job.job_dir)
    assert stat.S_IMODE(job_dir.stat().st_mode) == 0o700
    spec_file = job_dir / "job.yaml"
    assert "SERVICE_URL" in spec_file.read_text()
    assert stat.S_IMODE(spec_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert not [p for p in chmods if p.startswith(str(job_dir)) or p == str(store.path)], chmods


def test_slurm_batch_script_and_spec_are_private(store, tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    for name, body in {"sbatch": "echo 4242", "squeue": "echo PENDING", "sacct": "true", "scancel": "true"}.items():
        (fake / name).write_text(f"#!/bin/sh\n{body}\n")
        (fake / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    job = pj.submit({**_command(), "backend": "slurm", "environment": {"env": {"TOKEN_HINT": "x"}}}, store=store)
    job_dir = Path(job.job_dir)
    assert stat.S_IMODE(job_dir.stat().st_mode) == 0o700
    for name in ("job.yaml", "job.sbatch"):
        assert stat.S_IMODE((job_dir / name).stat().st_mode) == 0o600, name


# -- the Python API's offsets, limits and ranks -----------------------------------------------------
@pytest.mark.parametrize("call, words", [
    (lambda j: j.logs(10**30), "offset"),
    (lambda j: j.metrics(10**30), "offset"),
    (lambda j: j.logs(-1), "offset"),
    (lambda j: j.logs(0, limit=10**30), "limit"),
    (lambda j: j.metrics(0, limit=-5), "limit"),
    (lambda j: j.logs(0, rank="\u00b2"), "rank"),
    (lambda j: j.logs(0, rank="node\u00b2"), "rank"),
    (lambda j: j.logs(0, rank="rank\u0661"), "rank"),  # an Arabic-Indic digit: int() would take it
    (lambda j: j.logs(0, rank="9" * 40), "rank"),
    (lambda j: j.logs(0, rank="../../etc/passwd"), "rank"),
    (lambda j: j.logs("12"), "offset"),
])
def test_bad_offsets_limits_and_ranks_are_one_clear_error(store, call, words):
    job = pj.submit(_command(), store=store)
    _wait_done(job)
    with pytest.raises(pj.JobSpecError) as e:
        call(job)
    assert words in str(e.value)
    assert job.logs(0, rank=0)[0].strip() == "hi"


# -- ids, names and settings ------------------------------------------------------------------------
@pytest.mark.parametrize("job_id", ["../../etc", "../jobs.sqlite", "", "x\0y", "%"])
def test_unknown_and_traversing_ids_are_not_found(store, job_id):
    keep = pj.submit(_command("keep"), store=store)
    _wait_done(keep)
    for call in (pj.get, lambda i, store: pj.get(i, store=store).cancel()):
        with pytest.raises(pj.JobNotFoundError) as e:
            call(job_id, store=store)
        assert "No job" in str(e.value)
    assert [r["id"] for r in store.records()] == [keep.id]


def test_a_hostile_job_name_stays_literal_and_runs_nothing(store):
    token = f"physviz-canary-{os.getpid()}-hostile-name"
    job = pj.submit(_command(hostile_text(token)), store=store)
    assert _wait_done(job) == "completed"
    assert pj.get(job.id, store=store).name == hostile_text(token)
    assert not canary(token).exists()
    with pytest.raises(pj.JobSpecError, match="name"):
        pj.submit(_command("a\0b"), store=store)
    with pytest.raises(pj.JobSpecError, match="name"):
        pj.submit(_command("x" * 201), store=store)


@pytest.mark.parametrize("change, words", [
    ({"environment": {"env": {"NOT AN ID": "x"}}}, "environment.env"),
    ({"environment": {"env": {"1X": "x"}}}, "environment.env"),
    ({"environment": {"env": {"A=B": "x"}}}, "environment.env"),
    ({"environment": {"env": {"A": "x\0y"}}}, "environment.env.A"),
    ({"environment": {"env": {"PHYSVIZ_JOB_ID": "other"}}}, "PHYSVIZ_JOB_ID"),
    ({"environment": {"workdir": "a\0b"}}, "environment.workdir"),
    ({"backend": "ssh", "ssh": {"hosts": ["-oProxyCommand=touch /tmp/pwn"]}}, "ssh.hosts[0].host"),
    ({"backend": "ssh", "ssh": {"hosts": [{"host": "h", "user": "-oProxyCommand=sh"}]}}, "ssh.hosts[0].user"),
    ({"backend": "ssh", "ssh": {"hosts": [{"host": "h", "rdzv_addr": "-oX"}]}}, "ssh.hosts[0].rdzv_addr"),
    ({"backend": "ssh", "ssh": {"hosts": [{"host": "h", "rdzv_addr": "a b"}]}}, "ssh.hosts[0].rdzv_addr"),
    ({"backend": "slurm", "slurm": {"login": "-oProxyCommand=sh"}}, "slurm.login.host"),
    ({"backend": "slurm", "resources": {"partition": "gpu; touch /tmp/pwn"}}, "resources.partition"),
    ({"backend": "slurm", "resources": {"partition": "$(touch /tmp/pwn)"}}, "resources.partition"),
    ({"backend": "slurm", "resources": {"account": "a`id`"}}, "resources.account"),
    ({"backend": "slurm", "resources": {"sbatch_args": ["--wrap=touch /tmp/pwn\nx"]}}, "resources.sbatch_args"),
])
def test_hostile_settings_are_refused_before_anything_runs(store, change, words):
    with pytest.raises(pj.JobSpecError) as e:
        pj.submit({**_command(), **change}, store=store)
    assert words in str(e.value)
    assert not store.path.exists() or store.records() == []
    assert not Path("/tmp/pwn").exists()


def test_slurm_partition_lists_and_names_with_dots_are_taken():
    spec = pj.JobSpec.from_dict({**_command(), "backend": "slurm",
                                 "resources": {"partition": "gpu-a100.long,cpu_small", "account": "proj-1.x"}})
    assert spec.resources.partition == "gpu-a100.long,cpu_small"


# -- the store file ------------------------------------------------------------------------------
def _two_records(store: pj.JobStore) -> list[str]:
    ids = []
    for i in range(2):
        record = {"id": f"r{i}", "name": f"n{i}", "backend": "local", "created": float(i),
                  "spec": {"name": f"n{i}", "command": ["true"]}, "status": "completed", "final": True,
                  "cancel_requested": False, "job_dir": f"/nowhere/r{i}"}
        store.add(record)
        ids.append(record["id"])
    return ids


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty-header"])
def test_a_corrupt_store_is_one_clear_error_and_is_left_as_it_was(tmp_path, damage):
    path = tmp_path / "jobs.sqlite"
    _two_records(pj.JobStore(path))
    data = path.read_bytes()
    if damage == "garbage":
        data = os.urandom(len(data))
    elif damage == "truncated":
        data = data[: len(data) // 2 + 100]
    else:
        data = b"SQLite format 3\0" + b"\xff" * 84
    path.write_bytes(data)
    store = pj.JobStore(path)
    for call in (store.records, lambda: store.get("r0"), lambda: pj.list(store=path),
                 lambda: pj.submit(_command(), store=path)):
        with pytest.raises(pj.JobStoreError) as e:
            call()
        assert str(path) in str(e.value)
    assert path.read_bytes() == data  # nothing written over what may still be saved


def test_a_store_others_can_write_is_refused(tmp_path):
    path = tmp_path / "jobs.sqlite"
    _two_records(pj.JobStore(path))
    path.chmod(0o666)
    with pytest.raises(pj.JobStoreError) as e:
        pj.JobStore(path).records()
    assert str(path) in str(e.value) and "others" in str(e.value)
    path.chmod(0o600)
    assert [r["id"] for r in pj.JobStore(path).records()] == ["r0", "r1"]


def test_a_store_owned_by_another_user_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "jobs.sqlite"
    _two_records(pj.JobStore(path))
    monkeypatch.setattr(os, "getuid", lambda: os.stat(path).st_uid + 1)
    with pytest.raises(pj.JobStoreError) as e:
        pj.JobStore(path).records()
    assert str(path) in str(e.value) and "owned" in str(e.value)


def test_a_store_at_an_impossible_place_is_one_clear_error(tmp_path):
    for place in ("/proc/nope/jobs.sqlite", str(tmp_path)):
        with pytest.raises(pj.JobStoreError) as e:
            pj.JobStore(place).records()
        assert place in str(e.value)


def test_errors_are_physviz_errors():
    for cls in (pj.JobSpecError, pj.JobStoreError, pj.JobNotFoundError, JobNotStartedError):
        assert issubclass(cls, PhysvizError)
