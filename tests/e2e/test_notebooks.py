"""Every example notebook runs headless with nbclient, in the physviz kernel, and asserts its key outputs.

The notebooks end in a cell of assertions that prints "<name> OK"; here we also check that no cell
failed, that the views were rendered (Panel/HoloViews outputs), and that no job is left running.
remote_finetune.ipynb runs three times: with its default (the local backend), and configured by a job
spec file for SSH (two real sshd "hosts" on 127.0.0.1 and 127.0.0.2) and for Slurm (a real two-node
slurmctld/slurmd cluster on loopback).
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from tests.paths import REPO
EXAMPLES = REPO / "examples"
pytest_plugins = ["tests.realparts.sshd", "tests.realparts.slurm"]
pytestmark = pytest.mark.slow

PANEL_MIME = "application/vnd.holoviews_exec.v0+json"
NOTEBOOKS = {
    # name: (what its last cell prints, at least this many Panel views, at least this many PNG images)
    "quickstart.ipynb": ("quickstart OK", 4, 0),
    "teaching_demo.ipynb": ("teaching demo OK", 1, 0),
    "own_data.ipynb": ("own data OK", 3, 1),
    "remote_finetune.ipynb": ("remote fine-tune OK", 3, 0),
    "walrus.ipynb": ("walrus OK", 2, 0),
}


def run_notebook(name: str, workdir: Path, timeout: int = 600) -> tuple[nbformat.NotebookNode, float]:
    """Execute examples/NAME in `workdir` (its own folder, as a user's copy); return it and the seconds it took."""
    shutil.copy(EXAMPLES / name, workdir / name)
    nb = nbformat.read(workdir / name, as_version=4)
    t0 = time.monotonic()
    try:
        NotebookClient(nb, timeout=timeout, resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        nbformat.write(nb, workdir / f"executed-{name}")
    return nb, time.monotonic() - t0


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def stream_text(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in outputs(nb) if o["output_type"] == "stream")


@pytest.fixture
def kernel_env(tmp_path, monkeypatch) -> Path:
    """What the kernel inherits: a private job store, one thread per process (a small shared machine)."""
    store = tmp_path / "jobs.sqlite"
    monkeypatch.setenv("PHYSVIZ_JOB_STORE", str(store))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    monkeypatch.delenv("PHYSVIZ_JOB_SPEC", raising=False)
    return store


def no_job_left_running(store: Path) -> None:
    """Every job the notebook submitted reached a final state (cancel leftovers, then fail)."""
    if not store.exists():
        return
    import physviz.jobs

    running = []
    for job in physviz.jobs.list(store=store):
        if job.status() not in ("completed", "failed", "cancelled"):
            running.append(job.id)
            job.cancel()
    assert not running, f"jobs left running: {running}"


def test_every_example_is_tested_and_saved_clean():
    names = sorted(p.name for p in EXAMPLES.glob("*.ipynb"))
    assert names == sorted(NOTEBOOKS), names
    for name in names:
        nb = nbformat.read(EXAMPLES / name, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "physviz", name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name} is saved with outputs"
        assert NOTEBOOKS[name][0].split()[-1] == "OK" and "assert" in code[-1].source


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_example_notebook_runs(tmp_path, kernel_env, name):
    done, views, images = NOTEBOOKS[name]
    nb, seconds = run_notebook(name, tmp_path)
    errors = [o for o in outputs(nb) if o["output_type"] == "error"]
    assert not errors, errors[0].get("evalue")
    assert done in stream_text(nb)
    assert sum(PANEL_MIME in o.get("data", {}) for o in outputs(nb)) >= views
    assert sum("image/png" in o.get("data", {}) for o in outputs(nb)) >= images
    no_job_left_running(kernel_env)
    if name == "quickstart.ipynb":
        assert (tmp_path / "data" / "ns64" / "stats.yaml").is_file()
    if name == "own_data.ipynb":
        assert (tmp_path / "data" / "gray_scott_worms.nc").is_file()
        assert (tmp_path / "data" / "finetuned" / "final.safetensors").is_file()
    print(f"{name}: {seconds:.0f} s")


def test_remote_finetune_configured_for_ssh_runs_on_two_hosts(tmp_path, kernel_env, monkeypatch, sshd_hosts):
    """The same notebook, configured by a job spec file for two SSH hosts with no shared file system."""
    remote = tmp_path / "remote"
    remote.mkdir()
    job = run_remote_finetune(tmp_path, kernel_env, monkeypatch, {
        "backend": "ssh",
        "resources": {"nodes": 2, "procs_per_node": 1},
        "environment": {"python": sys.executable, "workdir": str(remote), "env": {"OMP_NUM_THREADS": "1"}},
        "ssh": {"hosts": [h.as_spec() for h in sshd_hosts[:2]], "shared_fs": False},
    })
    assert job.record["hosts"] == [f"{h.user}@{h.host}:{h.port}" for h in sshd_hosts[:2]]
    assert Path(job.job_dir).is_relative_to(remote)  # the hosts' folder; the kernel got a fetched copy
    assert json.loads(json.dumps(job.to_dict()))["spec"]["ssh"]["shared_fs"] is False


def test_remote_finetune_configured_for_slurm_runs_on_two_nodes(tmp_path, kernel_env, monkeypatch, slurm_cluster):
    """The same notebook, configured for Slurm: sbatch here, two nodes, a time limit."""
    job = run_remote_finetune(tmp_path, kernel_env, monkeypatch, {
        "backend": "slurm",
        "resources": {"nodes": 2, "procs_per_node": 1, "time_limit": 10},
        "environment": {"python": sys.executable, "workdir": str(tmp_path / "cluster"),
                        "env": {"OMP_NUM_THREADS": "1"}},
        "slurm": {"env": {"SLURM_CONF": str(slurm_cluster.conf)}},
    })
    assert job.record["scheduler_id"].isdigit()


def run_remote_finetune(tmp_path: Path, store: Path, monkeypatch, spec: dict):
    """Run remote_finetune.ipynb with PHYSVIZ_JOB_SPEC naming `spec`; return the job it ran."""
    spec_file = tmp_path / f"{spec['backend']}_job.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("PHYSVIZ_JOB_SPEC", str(spec_file))
    nb, seconds = run_notebook("remote_finetune.ipynb", tmp_path)
    errors = [o for o in outputs(nb) if o["output_type"] == "error"]
    assert not errors, errors[0].get("evalue")
    text = stream_text(nb)
    assert f"backend: {spec['backend']} (from {spec_file})" in text
    assert f"remote fine-tune OK: {spec['backend']} job" in text
    import physviz.jobs

    (job,) = physviz.jobs.list(store=store)
    assert job.backend == spec["backend"] and job.status() == "completed"
    print(f"remote_finetune.ipynb on {spec['backend']}: {seconds:.0f} s")
    return job
