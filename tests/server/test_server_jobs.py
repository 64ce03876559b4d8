"""The jobs REST API of the server extension, under a JupyterHub-style base URL, over real local jobs.

Jobs are submitted by another process (as a kernel would), into a durable store the server reads.
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
from urllib.parse import urlsplit

import pytest
from tornado.httpclient import HTTPClientError

pytest_plugins = ["pytest_jupyter.jupyter_server"]

BASE = "/user/alice/"
STEPS = 8
TALKER = r"""
import json, os, sys, time
out = os.environ["PHYSVIZ_OUTPUT_DIR"]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "metrics.jsonl"), "a") as m:
    for step in range(int(sys.argv[1])):
        print(f"step {step} of the talker, caf\u00e9", flush=True)
        loss = float("nan") if step == 0 else 1.0 / step
        m.write(json.dumps({"kind": "train", "step": step, "loss": loss, "time": time.time()}) + "\n")
        m.flush()
        time.sleep(float(sys.argv[2]))
    m.write(json.dumps({"kind": "done", "step": step, "checkpoint": "final.safetensors", "time": time.time()}) + "\n")
print("talker done", flush=True)
"""
SLEEPER = "import time; print('sleeper up', flush=True); time.sleep(600)"
SUBMIT = r"""
import json, sys
import physviz.jobs as jobs
ids = {}
for name, command in json.loads(sys.argv[1]).items():
    ids[name] = jobs.submit({"name": name, "backend": "local", "command": command}).id
print(json.dumps(ids))
"""


def submit_elsewhere(store: Path, commands: dict[str, list[str]]) -> dict[str, str]:
    """Submit command jobs from a separate Python process; return their ids by name."""
    out = subprocess.run([sys.executable, "-c", SUBMIT, json.dumps(commands)], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PHYSVIZ_JOB_STORE": str(store)})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A job store with a talker (logs, metrics with a NaN, exits 0) and two sleepers, all started now."""
    path = tmp_path_factory.mktemp("jobs") / "jobs.sqlite"
    ids = submit_elsewhere(path, {
        "talker": ["python", "-c", TALKER, str(STEPS), "0.4"],
        "sleeper-a": ["python", "-c", SLEEPER],
        "sleeper-b": ["python", "-c", SLEEPER],
    })
    yield path, ids
    import physviz.jobs as jobs

    for job in jobs.list(store=path):
        if job.status() not in ("completed", "failed", "cancelled"):
            job.cancel()


@pytest.fixture
def jp_server_config(store, request, monkeypatch):
    """The extension on, reading the store set by PhysvizServer.job_store (or, if asked, $PHYSVIZ_JOB_STORE)."""
    config = {"ServerApp": {"jpserver_extensions": {"physviz.server": True}},
              "PhysvizServer": {"job_store": str(store[0]), "stream_interval": 0.1, "status_interval": 0.2}}
    if "store_from_env" in request.fixturenames:
        monkeypatch.setenv("PHYSVIZ_JOB_STORE", str(store[0]))
        del config["PhysvizServer"]["job_store"]
    return config


@pytest.fixture
def store_from_env():
    """Marks a test whose server finds the store through $PHYSVIZ_JOB_STORE alone."""


@pytest.fixture
def jp_base_url():
    return BASE  # as JupyterHub starts a single-user server


async def get_json(jp_fetch, *parts, **kw):
    response = await jp_fetch("physviz", "api", *parts, **kw)
    assert response.code == 200
    assert urlsplit(response.effective_url).path.startswith(f"{BASE}physviz/api/")
    return json.loads(response.body)


async def wait_status(jp_fetch, job_id, wanted, timeout=90.0):
    deadline = time.monotonic() + timeout
    while True:
        job = await get_json(jp_fetch, "jobs", job_id)
        if job["status"] in wanted:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout} s"
        await asyncio.sleep(0.3)


def parse_sse(text: str) -> list[tuple[str, str | None, dict]]:
    """(event, id, data) of each Server-Sent Event; comments skipped."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ": " not in line:
                continue
            key, value = line.split(": ", 1)
            fields[key] = value
        if "event" in fields:
            events.append((fields["event"], fields.get("id"), json.loads(fields["data"])))
    return events


async def stream(jp_fetch, job_id, what, headers=None, **params):
    """Read a whole SSE stream; return its events and when each chunk arrived."""
    chunks: list[tuple[float, bytes]] = []
    response = await jp_fetch("physviz", "api", "jobs", job_id, what, "stream", params=params, headers=headers,
                              streaming_callback=lambda c: chunks.append((time.monotonic(), c)),
                              request_timeout=120)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    return parse_sse(b"".join(c for _, c in chunks).decode()), chunks


async def test_list_and_get_show_a_job_submitted_by_another_process(jp_fetch, store):
    path, ids = store
    listing = await get_json(jp_fetch, "jobs")
    by_name = {j["name"]: j for j in listing["jobs"]}
    assert set(by_name) == {"talker", "sleeper-a", "sleeper-b"}
    assert {j["id"] for j in listing["jobs"]} == set(ids.values())
    talker = by_name["talker"]
    assert talker["backend"] == "local" and talker["status"] in ("pending", "running", "completed")
    assert talker["spec"]["command"][0] == "python"
    assert Path(talker["output_dir"]).parent == Path(talker["job_dir"])
    one = await get_json(jp_fetch, "jobs", ids["talker"])
    assert one["id"] == ids["talker"] and one["name"] == "talker"
    running = await get_json(jp_fetch, "jobs", params={"status": "running"})
    assert {j["name"] for j in running["jobs"]} >= {"sleeper-a", "sleeper-b"}
    assert (await get_json(jp_fetch, "jobs", params={"backend": "slurm"}))["jobs"] == []
    recorded = await get_json(jp_fetch, "jobs", params={"fresh": "0"})  # no backend asked
    assert {j["id"]: j["status"] for j in recorded["jobs"]}[ids["sleeper-a"]] == "running"


async def test_the_default_store_is_the_one_named_by_the_environment(jp_fetch, store, store_from_env):
    listing = await get_json(jp_fetch, "jobs")
    assert {j["id"] for j in listing["jobs"]} == set(store[1].values())


async def test_log_and_metrics_streams_arrive_while_the_job_runs(jp_fetch, store):
    _, ids = store
    job_id = ids["talker"]
    (events, chunks), (metric_events, _) = await asyncio.gather(
        stream(jp_fetch, job_id, "logs", rank=0), stream(jp_fetch, job_id, "metrics"))

    kinds = [e for e, _, _ in events]
    assert kinds[0] == "open" and kinds[-1] == "end"
    assert events[-1][2]["status"] == "completed"
    logs = [(eid, data) for e, eid, data in events if e == "log"]
    text = "".join(d["text"] for _, d in logs)
    assert [f"step {i} of the talker, café" for i in range(STEPS)] == [
        line for line in text.splitlines() if line.startswith("step ")]
    assert text.rstrip().endswith("talker done")
    # Offsets are byte offsets, ids of the events, growing; the text came in pieces, over time.
    offsets = [d["offset"] for _, d in logs]
    assert offsets == sorted(offsets) and [int(eid) for eid, _ in logs] == offsets
    assert offsets[-1] == len(text.encode())
    assert len(logs) >= 3
    assert chunks[-1][0] - chunks[0][0] > 1.0, "the stream was buffered, not streamed"

    metrics = [row for e, _, d in metric_events if e == "metrics" for row in d["metrics"]]
    assert [r["step"] for r in metrics if r["kind"] == "train"] == list(range(STEPS))
    assert metrics[0]["loss"] is None  # NaN is not JSON: it travels as null
    assert metrics[-1]["kind"] == "done"
    assert metric_events[-1][0] == "end"

    # Resuming at the last offset: nothing more, then the end.
    again, _ = await stream(jp_fetch, job_id, "logs", offset=offsets[-1])
    assert [e for e, _, _ in again] == ["open", "status", "end"]
    resumed, _ = await stream(jp_fetch, job_id, "logs", headers={"Last-Event-ID": str(offsets[2])})
    assert "".join(d["text"] for e, _, d in resumed if e == "log") == text.encode()[offsets[2]:].decode()


async def test_log_tail_and_metrics_by_offset(jp_fetch, store):
    _, ids = store
    job_id = ids["talker"]
    await wait_status(jp_fetch, job_id, ("completed",))
    full = await get_json(jp_fetch, "jobs", job_id, "logs", params={"offset": 0, "rank": 0})
    assert full["status"] == "completed" and full["rank"] == 0
    raw = full["text"].encode()
    assert full["offset"] == len(raw) and b"talker done" in raw
    cut = raw.index(b"step 3")
    tail = await get_json(jp_fetch, "jobs", job_id, "logs", params={"offset": cut})
    assert tail["text"].encode() == raw[cut:] and tail["offset"] == len(raw)
    nothing = await get_json(jp_fetch, "jobs", job_id, "logs", params={"offset": full["offset"]})
    assert nothing["text"] == "" and nothing["offset"] == full["offset"]

    metrics = await get_json(jp_fetch, "jobs", job_id, "metrics")
    rows = metrics["metrics"]
    assert len(rows) == STEPS + 1 and rows[0]["loss"] is None and rows[2]["loss"] == 0.5
    later = await get_json(jp_fetch, "jobs", job_id, "metrics", params={"offset": metrics["offset"]})
    assert later["metrics"] == [] and later["offset"] == metrics["offset"]


async def test_cancel_needs_xsrf_with_cookie_login_and_works_by_post_and_delete(jp_fetch, jp_serverapp, store):
    _, ids = store
    for name in ("sleeper-a", "sleeper-b"):
        await wait_status(jp_fetch, ids[name], ("running",))

    # A browser session: logged in by cookie (no token on the request), as JupyterLab's pages are.
    token = jp_serverapp.identity_provider.token
    login = await jp_fetch("api", "status", headers={"Authorization": ""}, params={"token": token})
    page = await jp_fetch("login", headers={"Authorization": ""})
    jar = SimpleCookie()
    for header in [*login.headers.get_list("Set-Cookie"), *page.headers.get_list("Set-Cookie")]:
        jar.load(header)
    assert "_xsrf" in jar and any(k.startswith("username-") for k in jar)
    cookie = "; ".join(f"{k}={m.value}" for k, m in jar.items())
    no_token = {"Authorization": "", "Cookie": cookie}

    # Logged in by cookie, GET works ...
    ok = await jp_fetch("physviz", "api", "jobs", ids["sleeper-a"], headers=no_token)
    assert json.loads(ok.body)["status"] == "running"
    # ... but a POST without the XSRF header is refused, and the job runs on.
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("physviz", "api", "jobs", ids["sleeper-a"], "cancel", method="POST", body=b"", headers=no_token)
    assert e.value.code == 403
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("physviz", "api", "jobs", ids["sleeper-a"], method="DELETE",
                       headers={**no_token, "X-XSRFToken": "forged"})
    assert e.value.code == 403
    assert (await get_json(jp_fetch, "jobs", ids["sleeper-a"]))["status"] == "running"

    # With the XSRF token of the session it goes through.
    response = await jp_fetch("physviz", "api", "jobs", ids["sleeper-a"], "cancel", method="POST", body=b"",
                              headers={**no_token, "X-XSRFToken": jar["_xsrf"].value})
    assert json.loads(response.body)["status"] == "cancelled"

    # A token-authenticated DELETE (scripts, JupyterHub services) needs no XSRF cookie.
    response = await jp_fetch("physviz", "api", "jobs", ids["sleeper-b"], method="DELETE")
    assert json.loads(response.body)["status"] == "cancelled"

    import physviz.jobs as jobs

    for name in ("sleeper-a", "sleeper-b"):
        assert jobs.get(ids[name], store=store[0]).status() == "cancelled"
    # Cancelling again is harmless.
    again = await get_json(jp_fetch, "jobs", ids["sleeper-b"], "cancel", method="POST", body=b"")
    assert again["status"] == "cancelled"


@pytest.mark.parametrize("method, route", [
    ("GET", ()), ("GET", ("{id}",)), ("GET", ("{id}", "logs")), ("GET", ("{id}", "logs", "stream")),
    ("GET", ("{id}", "metrics")), ("GET", ("{id}", "metrics", "stream")), ("POST", ("{id}", "cancel")),
    ("DELETE", ("{id}",)),
])
@pytest.mark.parametrize("auth", ["", "token not-the-token"])
async def test_every_route_refuses_a_request_without_the_token(jp_fetch, store, method, route, auth):
    job_id = store[1]["talker"]
    parts = [p.format(id=job_id) for p in route]
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("physviz", "api", "jobs", *parts, method=method, headers={"Authorization": auth},
                       **({"body": b""} if method == "POST" else {}))
    assert e.value.code in (401, 403)


async def test_bad_requests_get_one_clear_json_message(jp_fetch, store):
    job_id = store[1]["talker"]
    cases = [
        (("jobs", "no-such-job"), {}, 404, "No job 'no-such-job'"),
        (("jobs", "no-such-job", "logs"), {}, 404, "No job 'no-such-job'"),
        (("jobs", job_id, "logs"), {"offset": "-3"}, 400, "offset='-3' must be an integer of at least 0"),
        (("jobs", job_id, "logs"), {"offset": "ten"}, 400, "offset='ten' must be an integer"),
        (("jobs", job_id, "logs"), {"rank": "chief"}, 400, "rank='chief' is not a log"),
        (("jobs", job_id, "logs", "stream"), {"rank": "chief"}, 400, "rank='chief' is not a log"),
        (("jobs", job_id, "metrics", "stream"), {"interval": "0"}, 400, "interval='0' must be a number"),
    ]
    for parts, params, code, message in cases:
        with pytest.raises(HTTPClientError) as e:
            await jp_fetch("physviz", "api", *parts, params=params)
        assert e.value.code == code, parts
        body = json.loads(e.value.response.body)
        assert message in body["message"], body


def test_the_server_side_never_imports_torch():
    code = ("import sys, physviz.server, physviz.server.handlers, physviz.jobs.job; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


async def test_jobs_page_is_served_under_the_base_url_behind_login(jp_fetch, store):
    page = await jp_fetch("physviz", "jobs")
    assert page.code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.body.decode()
    assert f'data-base-url="{BASE}"' in html and 'data-xsrf="2|' in html
    assert "<script src" not in html and "http" not in html.split("<script>")[1]  # nothing from a CDN
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("physviz", "jobs", headers={"Authorization": ""}, follow_redirects=False)
    assert e.value.code == 302
    assert e.value.response.headers["Location"].startswith(f"{BASE}login?next=")
