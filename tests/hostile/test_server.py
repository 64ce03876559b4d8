"""Hostile requests to the physviz REST API: each is a 400/404/409 with one JSON message naming the parameter,
never a 500, and nothing is lost, read from the server's own folder or executed."""
from __future__ import annotations

import json
import os

import pytest
from tornado.httpclient import HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

import physviz.jobs as pj
from physviz.jobs.layout import MAX_OFFSET

pytest_plugins = ["pytest_jupyter.jupyter_server"]

BASE = "/user/bob/"
TALKER = ("import json, os; out = os.environ['PHYSVIZ_OUTPUT_DIR']; os.makedirs(out, exist_ok=True); "
          "print('talker line', flush=True); "
          "open(os.path.join(out, 'metrics.jsonl'), 'w').write(json.dumps({'kind': 'train', 'step': 1, 'loss': 0.5}) + '\\n')")
SECRET = "secret of the server's own folder"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with a finished talker job and a record of a job that never started (no job folder)."""
    path = tmp_path_factory.mktemp("hostile-jobs") / "jobs.sqlite"
    job = pj.submit({"name": "talker", "backend": "local", "command": ["python", "-c", TALKER]}, store=path)
    assert job.wait(timeout=60, poll=0.2) == "completed", job.logs(0, rank="node0")[0]
    pj.JobStore(path).add({"id": "never-started", "name": "never", "backend": "local", "created": 2.0,
                           "spec": {"name": "never", "command": ["true"]}, "status": "failed", "final": True,
                           "cancel_requested": False, "job_dir": "", "output_dir": "", "error": "no workdir"})
    return path, job.id


@pytest.fixture
def server_folder(tmp_path, monkeypatch):
    """The server's current folder holds files named like a job's: no request may ever read them."""
    for rel, text in {"logs/rank0.log": SECRET, "output/metrics.jsonl": json.dumps({"kind": SECRET}) + "\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def jp_server_config(store, request, tmp_path):
    path = store[0]
    if "corrupt_store" in request.fixturenames:
        path = request.getfixturevalue("corrupt_store")
    return {"ServerApp": {"jpserver_extensions": {"physviz.server": True}},
            "PhysvizServer": {"job_store": str(path), "stream_interval": 0.05, "status_interval": 0.1}}


@pytest.fixture
def corrupt_store(tmp_path):
    path = tmp_path / "broken.sqlite"
    path.write_bytes(b"SQLite format 3\0" + os.urandom(4000))
    path.chmod(0o600)
    return path


@pytest.fixture
def jp_base_url():
    return BASE


@pytest.fixture
def fetch_raw(http_server_client, jp_auth_header, jp_base_url):
    """Fetch a path (already escaped, with its query) under the base URL, headers as given."""

    async def go(path: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
        url = http_server_client.get_url(f"{jp_base_url}{path}")
        request = HTTPRequest(url, method=method, headers={**jp_auth_header, **(headers or {})}, body=body,
                              allow_nonstandard_methods=True, request_timeout=60)
        return await SimpleAsyncHTTPClient.fetch(http_server_client, request, raise_error=False)

    return go


def _refusal(response, code: int, *words: str) -> dict:
    assert response.code == code, (response.code, response.body[:500])
    body = json.loads(response.body)
    for word in words:
        assert word in body["message"], body
    return body


# The seven requests that were 500s, and more of the same kind.
@pytest.mark.parametrize("route, query, headers, words", [
    ("logs", "offset=" + "1" + "0" * 30, {}, ["offset"]),
    ("metrics", "offset=" + "1" + "0" * 30, {}, ["offset"]),
    ("logs", "rank=%C2%B2", {}, ["rank"]),
    ("logs", "rank=node%C2%B2", {}, ["rank"]),
    ("logs/stream", "rank=%C2%B2", {}, ["rank"]),
    ("logs/stream", "", {"Last-Event-ID": "1" * 40}, ["Last-Event-ID"]),
    ("logs/stream", "", {"Last-Event-ID": "\xb2"}, ["Last-Event-ID"]),
    # of our own
    ("metrics/stream", "offset=" + "9" * 40, {}, ["offset"]),
    ("metrics/stream", "", {"Last-Event-ID": "-1"}, ["Last-Event-ID"]),
    ("logs", f"offset={MAX_OFFSET + 1}", {}, ["offset"]),
    ("logs", "offset=%D9%A1%D9%A2", {}, ["offset"]),  # Arabic-Indic digits: int() reads them as 12
    ("logs", "offset=%2B1", {}, ["offset"]),
    ("logs", "offset=1_000", {}, ["offset"]),
    ("logs", "rank=-1", {}, ["rank"]),
    ("logs", "rank=" + "9" * 40, {}, ["rank"]),
    ("logs", "rank=..%2F..%2Fetc%2Fpasswd", {}, ["rank"]),
    ("logs", "rank=rank%D9%A1", {}, ["rank"]),
    ("logs/stream", "interval=nan", {}, ["interval"]),
    ("metrics/stream", "timeout=inf", {}, ["timeout"]),
    ("metrics/stream", "timeout=-1", {}, ["timeout"]),
])
async def test_bad_parameters_are_a_400_naming_them(fetch_raw, store, server_folder, route, query, headers, words):
    response = await fetch_raw(f"physviz/api/jobs/{store[1]}/{route}?{query}", headers=headers)
    _refusal(response, 400, *words)
    assert SECRET.encode() not in response.body


async def test_the_largest_offset_is_taken(fetch_raw, store):
    response = await fetch_raw(f"physviz/api/jobs/{store[1]}/logs?offset={MAX_OFFSET}")
    assert response.code == 200
    body = json.loads(response.body)
    assert body["text"] == "" and body["offset"] == MAX_OFFSET


@pytest.mark.parametrize("job_id", ["..%2F..%2Fetc", "..", "%00", "x%0Ay", "%2E%2E%2Fjobs.sqlite"])
@pytest.mark.parametrize("method, route", [("GET", ""), ("GET", "/logs"), ("GET", "/metrics/stream"),
                                           ("POST", "/cancel"), ("DELETE", "")])
async def test_unknown_and_traversing_ids_are_a_404(fetch_raw, store, server_folder, job_id, method, route):
    response = await fetch_raw(f"physviz/api/jobs/{job_id}{route}", method=method,
                               body=b"" if method == "POST" else None)
    assert response.code in (400, 404), response.code
    if response.code == 404 and response.body.startswith(b"{"):
        assert "No job" in json.loads(response.body)["message"]
    assert SECRET.encode() not in response.body


async def test_a_job_that_never_started_reads_nothing_from_the_server_folder(fetch_raw, store, server_folder):
    for route in ("logs", "metrics", "logs/stream", "metrics/stream"):
        response = await fetch_raw(f"physviz/api/jobs/never-started/{route}")
        _refusal(response, 409, "no job folder", "never-started")
        assert SECRET.encode() not in response.body
    job = await fetch_raw("physviz/api/jobs/never-started")
    assert job.code == 200 and json.loads(job.body)["status"] == "failed"
    listing = await fetch_raw("physviz/api/jobs")
    assert {j["id"] for j in json.loads(listing.body)["jobs"]} == {store[1], "never-started"}


async def test_junk_bodies_to_delete_and_cancel_change_nothing(fetch_raw, store):
    for method, route in (("DELETE", ""), ("POST", "/cancel")):
        for body in (b"\xff{not json", b"\0" * 64, json.dumps({"id": "../../etc"}).encode()):
            response = await fetch_raw(f"physviz/api/jobs/{store[1]}{route}", method=method, body=body,
                                       headers={"Content-Type": "application/json"})
            assert response.code == 200 and json.loads(response.body)["status"] == "completed"
            gone = await fetch_raw(f"physviz/api/jobs/no-such-job{route}", method=method, body=body)
            _refusal(gone, 404, "No job 'no-such-job'")
    assert pj.get(store[1], store=store[0]).status() == "completed"
    assert pj.get(store[1], store=store[0]).logs(0)[0] == "talker line\n"


async def test_a_corrupt_store_is_a_clear_error_and_left_as_it_was(fetch_raw, corrupt_store):
    data = corrupt_store.read_bytes()
    response = await fetch_raw("physviz/api/jobs")
    body = _refusal(response, 500, str(corrupt_store))
    assert body["reason"] == "Job Store Error"
    assert corrupt_store.read_bytes() == data

