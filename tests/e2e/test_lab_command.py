"""`bash scripts/lab.sh` starts a real JupyterLab on the quickstart notebook."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from jupyter_client import BlockingKernelClient

from tests.paths import REPO
NOTEBOOK = "examples/quickstart.ipynb"


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, method: str = "GET", data: dict | None = None,
             timeout: float = 10.0) -> tuple[int, bytes, str]:
    """Send a request; return (status, body, final URL), also for HTTP errors."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), response.geturl()
    except urllib.error.HTTPError as error:
        return error.code, error.read(), url


def _get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET a URL; return (status, body), also for HTTP error statuses."""
    status, body, _ = _request(url, timeout=timeout)
    return status, body


def _processes_mentioning(text: str) -> dict[int, str]:
    """Processes (pid: command line) whose command line contains text."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found[int(entry.name)] = cmdline
    return found


def _tail(path: Path, n: int = 4000) -> str:
    """The end of a log file, for failure messages."""
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def _group_alive(pgid: int) -> bool:
    """Whether any process is left in the process group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """Terminate the process group politely, then kill what is left."""
    pgid = proc.pid  # started with start_new_session, so the leader's pid
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + grace
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=10)
        time.sleep(0.5)


@pytest.mark.slow
def test_lab_script_serves_quickstart_with_token(tmp_path: Path) -> None:
    """The lab script serves the notebook and the physviz kernel, behind a token."""
    assert (REPO / NOTEBOOK).is_file(), f"{NOTEBOOK} is missing"
    port = _free_port()
    token = secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"

    env = dict(os.environ)
    for name in ("JUPYTER_TOKEN", "JUPYTER_CONFIG_PATH", "JUPYTER_PATH"):
        env.pop(name, None)
    for name in ("JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTERLAB_WORKSPACES_DIR",
                 "JUPYTERLAB_SETTINGS_DIR"):
        env[name] = str(tmp_path / name.lower())
    env["PHYSVIZ_SKIP_SETUP"] = "1"

    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", "scripts/lab.sh", "--port", str(port),
             f"--IdentityProvider.token={token}", "--no-browser"],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        # The server answers (about 7 s on a small machine).
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (
                f"lab.sh exited with {proc.returncode} before serving:\n{_tail(log)}")
            try:
                status, body = _get(f"{base}/api/status?token={token}", timeout=2)
                if status == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, (
                f"no answer on port {port} after 60 s:\n{_tail(log)}")
            time.sleep(0.5)
        assert "started" in json.loads(body)

        # The quickstart notebook is served from the repository root.
        status, body = _get(f"{base}/api/contents/{NOTEBOOK}?token={token}")
        assert status == 200, body[:500]
        model = json.loads(body)
        assert model["type"] == "notebook"
        assert model["name"] == "quickstart.ipynb"
        assert model["content"]["cells"], "the quickstart notebook has no cells"

        # Nothing is served without the token.
        status, _ = _get(f"{base}/api/contents")
        assert status in (401, 403), f"/api/contents without a token answered {status}"
        status, _ = _get(f"{base}/api/contents?token=not-{token}")
        assert status in (401, 403), f"/api/contents with a wrong token answered {status}"

        # The kit's kernel is installed with the package.
        status, body = _get(f"{base}/api/kernelspecs?token={token}")
        assert status == 200, body[:500]
        specs = json.loads(body)["kernelspecs"]
        assert "physviz" in specs, f"kernel specs found: {sorted(specs)}"
        spec = specs["physviz"]["spec"]
        assert spec["display_name"] == "Python (physviz)"
        assert spec["language"] == "python"
        assert set(specs["physviz"]["resources"]) >= {"logo-32x32", "logo-64x64"}

        # It is JupyterLab (not only the server); its start page is the notebook.
        status, body = _get(f"{base}/lab?token={token}")
        assert status == 200 and b"jupyter-config-data" in body
        status, body, final_url = _request(f"{base}/?token={token}")
        assert status == 200 and b"jupyter-config-data" in body
        assert urllib.parse.urlsplit(final_url).path == f"/lab/tree/{NOTEBOOK}", final_url

        # Without the news pop-up, which would cover the page.
        status, body = _get(
            f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}")
        assert status == 200, body[:500]
        plugin = json.loads(body)
        properties = plugin["schema"]["properties"]
        effective = {key: plugin["settings"].get(key, properties[key].get("default"))
                     for key in ("fetchNews", "checkForUpdates")}
        assert effective == {"fetchNews": "false", "checkForUpdates": False}, effective

        # A physviz kernel starts, in the environment's own python, and runs code.
        status, body, _ = _request(f"{base}/api/kernels?token={token}", "POST",
                                   {"name": "physviz"}, timeout=60)
        assert status == 201, body[:500]
        kernel_id = json.loads(body)["id"]
        connection_file = tmp_path / "jupyter_runtime_dir" / f"kernel-{kernel_id}.json"
        deadline = time.monotonic() + 30
        while not connection_file.exists():
            assert time.monotonic() < deadline, f"no {connection_file.name}:\n{_tail(log)}"
            time.sleep(0.2)
        client = BlockingKernelClient(connection_file=str(connection_file))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            printed: list[str] = []

            def on_output(msg: dict) -> None:
                if msg["msg_type"] == "stream":
                    printed.append(msg["content"]["text"])

            reply = client.execute_interactive(
                "import sys; print(sys.prefix)", output_hook=on_output, timeout=60)
        finally:
            client.stop_channels()
        assert reply["content"]["status"] == "ok", reply["content"]
        prefix = "".join(printed).strip()
        assert os.path.realpath(prefix) == os.path.realpath(REPO / ".venv"), printed
        # The kernel stays running: stopping the server must stop it too.
    finally:
        _stop_group(proc)
        leftovers = _processes_mentioning(str(tmp_path))
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    assert not _group_alive(proc.pid), f"processes left in group {proc.pid}"
    assert not leftovers, f"processes left behind: {leftovers}"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
