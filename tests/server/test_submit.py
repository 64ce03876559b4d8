"""POST physviz/api/jobs on a real Jupyter server (base URL /user/alice/): the fine-tune form's route.

Each bad input is refused with a message under its own field and nothing is recorded or started;
a browser session needs the XSRF token; a good form starts a local fine-tune that completes.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from tests.realparts.data import navier_stokes_32
from tests.realparts.slurm import slurm_cluster  # noqa: F401 (fixture)

pytest_plugins = ["pytest_jupyter.jupyter_server"]

BASE = "/user/alice/"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A small Navier-Stokes Well folder (4 trajectories, 32x32)."""
    return navier_stokes_32(tmp_path_factory.getbasetemp())


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "jobs.sqlite"


@pytest.fixture
def jp_server_config(store):
    return {"ServerApp": {"jpserver_extensions": {"physviz.server": True}},
            "PhysvizServer": {"job_store": str(store), "stream_interval": 0.1, "status_interval": 0.2}}


@pytest.fixture
def jp_base_url():
    return BASE


def _jobs(store: Path) -> list:
    import physviz.jobs

    return physviz.jobs.list(store=store) if store.exists() else []


async def post(jp_fetch, form, headers=None):
    """POST the form; (status, JSON body) also for refusals."""
    try:
        response = await jp_fetch("physviz", "api", "jobs", method="POST", body=json.dumps(form),
                                  headers=headers or {})
    except HTTPClientError as exc:
        return exc.code, json.loads(exc.response.body) if exc.response is not None else None
    return response.code, json.loads(response.body)


async def test_each_bad_input_is_refused_under_its_field_and_nothing_runs(jp_fetch, store, data, tmp_path):
    good = {"name": "ft-ns", "data": str(data), "model": "bundled", "steps": 3, "lr": 1e-4, "backend": "local"}
    cases = [
        ({"data": str(tmp_path / "no-such-data")}, "data", "does not exist on the server"),
        ({"data": ""}, "data", "Give the data"),
        ({"steps": 0}, "steps", "steps"),
        ({"lr": -1}, "lr", "lr"),
        ({"freeze": "everything"}, "freeze", "freeze"),
        ({"model": str(tmp_path / "missing.safetensors")}, "model", "is not a file on the server"),
        ({"name": "ft; rm -rf ~"}, "name", "';'"),
        ({"name": "$(reboot)"}, "name", "'$'"),
        ({"backend": "ssh", "ssh": {"hosts": ["no-such-host.invalid"]}}, "ssh.hosts", "not known to this server"),
        ({"backend": "ssh", "ssh": {"hosts": []}}, "ssh.hosts", "at least one host"),
        ({"backend": "cloud"}, "backend", "cloud"),
        ({"resources": {"nodes": 2}}, "resources.nodes", "one node"),
        ({"resources": {"time_limit": "soon"}}, "resources.time_limit", "time_limit"),
        ({"environment": {"env": {"A": "1"}}}, "environment.env", "Unknown field"),
        ({"colour": "red"}, "colour", "Unknown field"),
    ]
    for change, field, words in cases:
        status, body = await post(jp_fetch, {**good, **change})
        assert status == 400, (change, body)
        assert field in body["errors"], (change, body)
        assert words in body["errors"][field], (change, body["errors"])
        assert body["message"]
    # Several wrong fields at once: each gets its own message.
    status, body = await post(jp_fetch, {**good, "steps": 0, "name": "a|b", "data": "/nope"})
    assert status == 400 and {"steps", "name", "data"} <= set(body["errors"]), body
    # Not JSON, not an object.
    for raw in ("[1, 2]", "nonsense"):
        with pytest.raises(HTTPClientError) as e:
            await jp_fetch("physviz", "api", "jobs", method="POST", body=raw)
        assert e.value.code == 400 and "form" in json.loads(e.value.response.body)["errors"]
    assert _jobs(store) == []  # nothing was recorded, so nothing ran


async def test_a_slurm_partition_the_cluster_lacks_is_refused(jp_fetch, store, data, slurm_cluster):  # noqa: F811
    form = {"name": "ft-slurm", "data": str(data), "steps": 2, "backend": "slurm",
            "slurm": {"env": {"SLURM_CONF": str(slurm_cluster.conf)}}, "resources": {"partition": "gpu"}}
    status, body = await post(jp_fetch, form)
    assert status == 400, body
    assert body["errors"] == {"resources.partition": "Slurm has no partition 'gpu'; this cluster has: debug."}
    assert _jobs(store) == []
    assert "ft-slurm" not in slurm_cluster.run("squeue", "--noheader", "--format=%j").stdout


async def test_a_browser_session_needs_the_xsrf_token(jp_fetch, jp_serverapp, store, tmp_path):
    token = jp_serverapp.identity_provider.token
    login = await jp_fetch("api", "status", headers={"Authorization": ""}, params={"token": token})
    page = await jp_fetch("login", headers={"Authorization": ""})
    jar = SimpleCookie()
    for header in [*login.headers.get_list("Set-Cookie"), *page.headers.get_list("Set-Cookie")]:
        jar.load(header)
    cookie = "; ".join(f"{k}={m.value}" for k, m in jar.items())
    no_token = {"Authorization": "", "Cookie": cookie}
    form = {"data": str(tmp_path / "nothing"), "steps": 0}
    status, body = await post(jp_fetch, form, headers=no_token)
    assert status == 403, body
    status, body = await post(jp_fetch, form, headers={**no_token, "X-XSRFToken": jar["_xsrf"].value})
    assert status == 400 and set(body["errors"]) == {"data", "steps"}
    # Not logged in at all: refused before any check.
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("physviz", "api", "jobs", method="POST", body="{}", headers={"Authorization": ""},
                       follow_redirects=False)
    assert e.value.code in (302, 403)
    assert _jobs(store) == []


async def test_a_good_form_starts_a_local_fine_tune_that_completes(jp_fetch, store, data):
    form = {"name": "ft ns 1", "data": str(data), "model": "bundled", "steps": 4, "lr": 2e-4, "freeze": "processor",
            "backend": "local", "resources": {"procs_per_node": 1, "gpus_per_node": 0},
            "environment": {"prologue": "export OMP_NUM_THREADS=1\necho prologue ran"}}
    status, job = await post(jp_fetch, form)
    assert status == 201, job
    assert job["name"] == "ft ns 1" and job["backend"] == "local" and job["status"] in ("pending", "running")
    cfg = job["spec"]["train_config"]
    assert cfg["steps"] == 4 and cfg["optimizer"]["lr"] == 2e-4 and cfg["finetune"]["freeze"] == "processor"
    assert cfg["model"]["init_from"] == "bundled" and cfg["data"][0]["path"] == str(data)
    assert job["spec"]["environment"]["prologue"] == ["export OMP_NUM_THREADS=1", "echo prologue ran"]
    deadline = time.monotonic() + 240
    while True:
        response = await jp_fetch("physviz", "api", "jobs", job["id"])
        now = json.loads(response.body)
        if now["status"] in ("completed", "failed", "cancelled"):
            break
        assert time.monotonic() < deadline, now
        await asyncio.sleep(1)
    logs = json.loads((await jp_fetch("physviz", "api", "jobs", job["id"], "logs")).body)["text"]
    assert now["status"] == "completed", logs[-3000:]
    metrics = json.loads((await jp_fetch("physviz", "api", "jobs", job["id"], "metrics")).body)["metrics"]
    kinds = {m["kind"] for m in metrics}
    assert {"train", "done"} <= kinds, metrics
    assert max(m["step"] for m in metrics if m["kind"] == "train") >= 3
    assert [j.id for j in _jobs(store)] == [job["id"]]
    # What the sidebar's "open in notebook" writes reattaches and loads the fine-tuned model.
    code = (f"import physviz, physviz.jobs\njob = physviz.jobs.get({job['id']!r})\njob.wait()\n"
            "model = physviz.load_model(job.fetch() / 'final.safetensors')\nprint(type(model).__name__, 'loaded')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PHYSVIZ_JOB_STORE": str(store)})
    assert out.returncode == 0 and "loaded" in out.stdout, out.stderr[-2000:]
