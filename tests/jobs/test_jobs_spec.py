"""JobSpec validation and YAML, the durable store, offset readers, command quoting, and no torch in physviz.jobs."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import physviz.jobs as pj
from physviz.errors import PhysvizError
from physviz.jobs.backends.base import combine, decode_text, scrubbed_env
from physviz.jobs.layout import Layout, node_argv, rewrite_config, torchrun_argv
from physviz.jobs.spec import parse_time_limit
from physviz.train.metrics import parse_metrics
from tests.realparts.procs import canary, hostile_text



def _spec(**kw):
    base = dict(name="t", command=["python", "-c", "pass"])
    base.update(kw)
    return pj.JobSpec.from_dict(base)


# -- spec ---------------------------------------------------------------------------------
def test_yaml_round_trip_keeps_every_setting(tmp_path):
    key = tmp_path / "id_ed25519"
    key.write_text("not a real key")
    spec = pj.JobSpec.from_dict({
        "name": "fine-tune 'ns'; $(x)\nline 2",
        "backend": "ssh",
        "train_config": {"output_dir": "o", "data": [{"path": str(tmp_path)}], "steps": 3},
        "overrides": ["optimizer.lr=1e-4", "data.0.name=a b;c"],
        "resources": {"nodes": 2, "procs_per_node": 1, "time_limit": "01:30:00", "partition": "gpu"},
        "environment": {"python": "/opt/venv/bin/python", "prologue": ["module load cuda"], "env": {"A": "1"},
                        "workdir": "/scratch/me"},
        "ssh": {"hosts": [{"host": "10.0.0.1", "user": "me", "key_file": str(key)}, "10.0.0.2"]},
    })
    text = spec.to_yaml()
    again = pj.JobSpec.from_yaml(text)
    assert again == spec
    path = tmp_path / "job.yaml"
    spec.to_yaml(path)
    assert pj.JobSpec.from_yaml(path) == spec
    assert again.ssh.hosts[1].host == "10.0.0.2" and again.ssh.hosts[1].port == 22
    assert again.resources.time_limit_seconds == 5400
    assert "not a real key" not in text  # the key file is named, never read into the spec


@pytest.mark.parametrize("change, words", [
    ({"backend": "pbs"}, "backend"),
    ({"resources": {"nodes": 0}}, "resources.nodes"),
    ({"resources": {"nodes": 2}}, "one node"),
    ({"resources": {"time_limit": "tomorrow"}}, "time_limit"),
    ({"resources": {"mem": "lots"}}, "resources.mem"),
    ({"resources": {"sbatch_args": ["-p gpu"]}}, "sbatch_args"),
    ({"resources": {"partition": "a\nb"}}, "line break"),
    ({"environment": {"env": {"BAD NAME": "1"}}}, "variable name"),
    ({"environment": {"env": {"PHYSVIZ_JOB_ID": "1"}}}, "set by physviz"),
    ({"name": ""}, "name"),
    ({"name": "x\0y"}, "NUL"),
    ({"command": []}, "command"),
    ({"colour": "red"}, "Unknown setting 'colour'"),
    ({"resources": {"gpus": 1}}, "resources.gpus"),
    ({"train_config": {"output_dir": "o", "data": [{"path": "x"}]}}, "exactly one"),
    ({"overrides": ["lr"]}, "key.sub=value"),
])
def test_bad_settings_raise_one_clear_error(change, words):
    with pytest.raises(pj.JobSpecError) as e:
        _spec(**change).validate()
    assert words in str(e.value)
    assert isinstance(e.value, PhysvizError) and "\n" not in str(e.value).strip()


def test_ssh_and_slurm_settings_are_checked(tmp_path):
    with pytest.raises(pj.JobSpecError, match="ssh.hosts"):
        _spec(backend="ssh").validate()
    with pytest.raises(pj.JobSpecError, match="key_file"):
        _spec(backend="ssh", ssh={"hosts": [{"host": "h", "key_file": str(tmp_path / "missing")}]}).validate()
    with pytest.raises(pj.JobSpecError, match="not a host"):
        _spec(backend="ssh", ssh={"hosts": [{"host": "-oProxyCommand=x"}]}).validate()
    with pytest.raises(pj.JobSpecError, match="lists 1"):
        _spec(backend="ssh", resources={"nodes": 2}, ssh={"hosts": ["h"]}).validate()
    with pytest.raises(pj.JobSpecError, match="cannot be staged"):
        _spec(backend="ssh", data=[str(tmp_path / "nope")], ssh={"hosts": ["h"]}).validate()
    _spec(backend="slurm", resources={"nodes": 4, "gpus_per_node": 4}).validate()
    assert _spec(resources={"gpus_per_node": 4}).resources.nproc == 4


def test_backends_check_their_own_settings(tmp_path):
    ssh, slurm, local = pj.get_backend("ssh"), pj.get_backend("slurm"), pj.get_backend("local")
    assert local.check_spec(_spec(backend="local")) is None  # the default: nothing to check
    with pytest.raises(pj.JobSpecError, match="ssh.hosts"):
        ssh.check_spec(_spec(backend="ssh"))
    ssh.check_spec(_spec(backend="ssh", ssh={"hosts": ["h"]}))
    with pytest.raises(pj.JobSpecError, match="slurm.login.key_file"):
        slurm.check_spec(_spec(backend="slurm", slurm={"login": {"host": "l", "key_file": str(tmp_path / "no")}}))
    slurm.check_spec(_spec(backend="slurm", slurm={"login": "login1"}))


def test_loading_takes_short_forms():
    spec = _spec(ssh={"hosts": ["h1", {"host": "h2", "port": 2222}]}, slurm={"login": "login1", "env": {"N": 2}},
                 environment={"prologue": "module load a\nmodule load b", "env": {"OMP_NUM_THREADS": 1}},
                 resources=None)
    assert [h.label() for h in spec.ssh.hosts] == ["h1:22", "h2:2222"] and spec.slurm.login.host == "login1"
    assert spec.environment.prologue == ["module load a", "module load b"]
    assert spec.environment.env == {"OMP_NUM_THREADS": "1"} and spec.slurm.env == {"N": "2"}
    assert spec.resources == pj.Resources()
    direct = pj.JobSpec(name="x", command=["true"], resources={"procs_per_node": 2}, ssh={"hosts": ["h"]})
    assert direct.resources.nproc == 2 and direct.ssh.hosts[0].host == "h"


def test_secrets_are_refused_in_a_spec():
    for key in ("password", "passphrase", "private_key"):
        with pytest.raises(pj.JobSpecError, match="secret"):
            pj.JobSpec.from_dict({"name": "x", "command": ["true"], "ssh": {"hosts": [{"host": "h", key: "hunter2"}]}})


def test_train_config_is_checked_with_physviz_train_rules(tmp_path):
    good = {"output_dir": "o", "data": [{"path": str(tmp_path)}], "steps": 2}
    pj.JobSpec(name="x", train_config=good).validate()
    with pytest.raises(pj.JobSpecError, match="train_config.*steps"):
        pj.JobSpec(name="x", train_config={**good, "steps": 0}).validate()
    with pytest.raises(pj.JobSpecError, match="train_config.*optimizer.lr"):
        pj.JobSpec(name="x", train_config=good, overrides=["optimizer.lr=-1"]).validate()
    path = tmp_path / "ft.yaml"
    path.write_text("output_dir: o\ndata: [{path: d}]\n")
    ckpt = tmp_path / "base.safetensors"
    ckpt.write_bytes(len(b"{}").to_bytes(8, "little") + b"{}")  # an empty safetensors file: its header only
    spec = pj.JobSpec(name="x", train_config=str(path), checkpoint=str(ckpt))
    spec.validate()
    assert spec.load_train_config()["model"]["init_from"] == str(ckpt)
    with pytest.raises(pj.JobSpecError, match="init_from"):
        pj.JobSpec(name="x", train_config=str(path), checkpoint=str(tmp_path / "no.safetensors")).validate()
    # on a login node the checkpoint is a path there, not here
    pj.JobSpec(name="x", backend="slurm", train_config=str(path), checkpoint="/cluster/base.safetensors",
               slurm={"login": {"host": "login1"}}).validate()
    with pytest.raises(pj.JobSpecError, match="not a file"):
        pj.JobSpec(name="x", train_config=str(tmp_path / "missing.yaml")).validate()


def test_time_limits():
    assert parse_time_limit(90) == 5400
    assert parse_time_limit("2-00:00:00") == 2 * 86400
    assert parse_time_limit("1-12:30") == 36 * 3600 + 30 * 60
    assert parse_time_limit("00:00:30") == 30
    for bad in ("1:2", "soon", 0, "-5"):
        with pytest.raises(pj.JobSpecError):
            parse_time_limit(bad)


# -- store ----------------------------------------------------------------------------------
def test_store_default_path_and_override(tmp_path, monkeypatch):
    monkeypatch.delenv("PHYSVIZ_JOB_STORE", raising=False)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jdata"))
    assert pj.default_store_path() == tmp_path / "jdata" / "physviz" / "jobs.sqlite"
    monkeypatch.setenv("PHYSVIZ_JOB_STORE", str(tmp_path / "other.sqlite"))
    assert pj.JobStore().path == tmp_path / "other.sqlite"


def test_store_records_survive_processes_and_updates_are_atomic(tmp_path):
    store = pj.JobStore(tmp_path / "s.sqlite")
    rec = {"id": "j1", "name": "n", "backend": "local", "created": 1.0, "spec": _spec().to_dict(), "status": "pending"}
    store.add(rec)
    with pytest.raises(pj.JobStoreError, match="already"):
        store.add(rec)
    store.update("j1", status="running", nodes=[{"host": "localhost", "pgid": 7}])
    code = ("import json, sys, physviz.jobs as pj; j = pj.get('j1', store=sys.argv[1]);"
            "print(json.dumps([j.id, j.name, j.record['nodes'], [x.id for x in pj.list(sys.argv[1])]]))")
    out = subprocess.run([sys.executable, "-c", code, str(store.path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["j1", "n", [{"host": "localhost", "pgid": 7}], ["j1"]]
    with pytest.raises(pj.JobNotFoundError, match="nope"):
        pj.get("nope", store=store)
    # a failed transaction leaves the record as it was
    with pytest.raises(TypeError):
        store.update("j1", bad=object())
    assert store.get("j1")["status"] == "running"
    assert oct(os.stat(store.path).st_mode & 0o777) == "0o600"


def test_store_refuses_a_file_that_is_not_a_store(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_text("hello, not sqlite " * 100)
    with pytest.raises(pj.JobStoreError, match="not a physviz job store"):
        pj.list(store=bad)
    with sqlite3.connect(tmp_path / "ok.sqlite") as c:
        c.execute("CREATE TABLE other (x)")
    assert pj.list(store=tmp_path / "ok.sqlite") == []


# -- readers and state rules ------------------------------------------------------------------
def test_metrics_reader_waits_for_whole_lines():
    data = b'{"kind": "train", "step": 1}\nnot json\n{"kind": "train", "st'
    rows, used = parse_metrics(data)
    assert rows == [{"kind": "train", "step": 1}]
    assert data[used:] == b'{"kind": "train", "st'
    assert parse_metrics(b'{"a": 1}') == ([], 0)


def test_log_reader_never_splits_a_character():
    text = "loss \u2192 0.5 \U0001f600"
    data = text.encode()
    for cut in range(len(data) + 1):
        head, used = decode_text(data[:cut])
        tail, _ = decode_text(data[used:])
        assert head + tail == text, cut


def test_state_rules():
    assert combine([0, 0], 0, False) == "completed"
    assert combine([0, None], 3, False) == "running"
    assert combine([1, None], 3, False) == "failed"
    assert combine([None], 0, False) == "failed"  # gone without an exit code: killed
    assert combine([None], 0, True) == "cancelled"
    assert combine([143], 0, True) == "cancelled"


def test_slurm_variables_of_an_enclosing_allocation_are_scrubbed():
    env = scrubbed_env({"SLURM_JOB_ID": "5", "SLURM_CPUS_PER_TASK": "64", "SLURM_CONF": "/c", "PATH": "/bin"},
                       {"X": "1"})
    assert env == {"SLURM_CONF": "/c", "PATH": "/bin", "X": "1"}


# -- command lines ------------------------------------------------------------------------------
def test_hostile_values_stay_single_arguments(tmp_path):
    token = f"physviz-canary-{os.getpid()}-a"
    hostile = hostile_text(token)
    spec = _spec(name=hostile, command=["python", "-c", "import sys; print(sys.argv[1:])", hostile])
    layout = Layout(str(tmp_path / hostile / "job"))
    argv = node_argv(spec, layout, 0, torchrun_argv(spec, layout, nnodes=1, endpoint=None, rdzv_id="x"))
    assert argv.count(hostile) == 1 and layout.logs in argv
    # NODE_SH only ever expands its arguments inside double quotes: run it for real with `echo` as torchrun
    (tmp_path / hostile).mkdir()
    (tmp_path / hostile / "job" / "state").mkdir(parents=True)
    out = subprocess.run(["sh", "-c", argv[2], "n", layout.node_state(0), "", "printf", "%s|", hostile],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout == hostile + "|"
    assert Path(layout.node_state(0) + ".exit").read_text().strip() == "0"
    assert not canary(token).exists()


def test_slurm_batch_script_quotes_everything(tmp_path):
    from physviz.jobs.backends.slurm import batch_script, sbatch_argv

    token = f"physviz-canary-{os.getpid()}-b"
    hostile = hostile_text(token)
    spec = _spec(name=hostile, backend="slurm", command=["python", hostile],
                 environment={"python": "/usr/bin/python3", "env": {"V": hostile}})
    layout = Layout(str(tmp_path / ("dir " + hostile + " 50%")))
    script = batch_script(spec, "20260101-000000-abcdef", layout)
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    # run the script's variable part: the values come back exactly
    head = script.split("cd \"$job_dir\"")[0]
    out = subprocess.run(["bash", "-c", head + '\nprintf "%s|%s" "$job_dir" "$V"'], capture_output=True, text=True)
    assert out.stdout == f"{layout.job_dir}|{hostile}"
    argv = sbatch_argv(spec, layout)
    assert "\n" not in argv[2] and argv[2].startswith("--job-name=a b'c")
    assert any(a.endswith(" 50%%/logs/batch.log") for a in argv)  # Slurm's % patterns escaped
    assert not canary(token).exists()


def test_staged_paths_are_rewritten_in_the_config(tmp_path):
    rewrite = {str(tmp_path / "ns"): "/remote/job/data/0-ns"}
    cfg = {"data": [{"path": str(tmp_path / "ns")}, {"path": str(tmp_path / "ns" / "data" / "f.hdf5")}],
           "model": {"init_from": "bundled"}, "steps": 3}
    out = rewrite_config(cfg, rewrite)
    assert out["data"][0]["path"] == "/remote/job/data/0-ns"
    assert out["data"][1]["path"] == "/remote/job/data/0-ns/data/f.hdf5"
    assert out["model"]["init_from"] == "bundled" and out["steps"] == 3


# -- layering ---------------------------------------------------------------------------------------
def test_physviz_jobs_never_imports_torch(tmp_path):
    code = f"""
import sys, physviz.jobs as pj
from physviz.jobs.backends import get_backend
for name in ("local", "ssh", "slurm"):
    get_backend(name)
import physviz.jobs.sshconn, physviz.jobs.procs
spec = pj.JobSpec(name="x", train_config={{"output_dir": "o", "data": [{{"path": "{tmp_path}"}}]}})
spec.validate()
store = pj.JobStore("{tmp_path / 's.sqlite'}")
pj.list(store)
heavy = [m for m in ("torch", "xarray", "h5py", "panel") if m in sys.modules]
print(",".join(heavy))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_environment_python_and_backends_share_one_interface(tmp_path):
    assert _spec(environment={"venv": "/opt/v/"}).python() == "/opt/v/bin/python"
    assert _spec(backend="slurm").python() == "python3" and _spec().python() == sys.executable
    for name in ("local", "ssh", "slurm"):
        backend = pj.get_backend(name)
        assert isinstance(backend, pj.Backend) and backend.name == name
        assert backend.list(pj.JobStore(tmp_path / "s.sqlite")) == []
    with pytest.raises(pj.JobSpecError, match="Unknown backend"):
        pj.get_backend("pbs")
