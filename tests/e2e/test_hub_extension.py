"""A real JupyterHub (PyPI) behind configurable-http-proxy (npm), two users, the physviz JupyterLab extension in Chromium.

The Hub logs users in with a shared password and starts each one's JupyterLab with
SimpleLocalProcessSpawner (a home folder per user, no system users) and its own physviz job store
($PHYSVIZ_JOB_STORE in the user's home). alice opens the physviz sidebar, submits a small local
fine-tune of the bundled model from the Launcher's form (after the form refused bad values next to
their fields), watches it complete with its loss curve drawn, reloads and finds it again, opens
it in a notebook, cancels a second job from the sidebar (after a confirmation), and finds both jobs
again after the Hub restarts her server. bob's requests to alice's jobs API are refused and his sidebar lists only his own
job. No console errors. Screenshots go to tests/artifacts/hub_extension/.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.paths import REPO
from tests.realparts.browser import CHROMIUM, CHROMIUM_ARGS, Console, artifacts, http_get, wait_for
from tests.realparts.data import navier_stokes_32
from tests.realparts.procs import free_port, pids_with_env, stop_pids

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
PASSWORD = "physviz-hub-test"
SERVICE_TOKEN = "physviz-test-service-token-0123456789"
STEPS = 4
CHP_PLACES = (REPO / ".venv" / "share" / "physviz-node" / "node_modules" / ".bin" / "configurable-http-proxy",)

HUB_CONFIG = """
import os
c = get_config()  # noqa
tmp = {tmp!r}
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///" + os.path.join(tmp, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(tmp, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(tmp, "jupyterhub.pid")
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.pid_file = os.path.join(tmp, "proxy.pid")
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {password!r}
c.Authenticator.allowed_users = {{"alice", "bob"}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(tmp, "homes", "{{username}}")
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = {args!r}
c.Spawner.ip = "127.0.0.1"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.LocalProcessSpawner.interrupt_timeout = 5
c.LocalProcessSpawner.term_timeout = 3
# a service token for the test: stop and start a user's server through the Hub's REST API
c.JupyterHub.services = [{{"name": "physviz-test", "api_token": {service_token!r}}}]
c.JupyterHub.load_roles = [{{"name": "physviz-test", "scopes": ["admin:servers", "admin:users"],
                             "services": ["physviz-test"]}}]
c.Spawner.environment = {{
    # each user's server keeps its own job store, in the user's home
    "PHYSVIZ_JOB_STORE": lambda spawner: os.path.join(tmp, "homes", spawner.user.name, ".physviz", "jobs.sqlite"),
    "OMP_NUM_THREADS": "1",
    "PHYSVIZ_TEST_HUB": tmp,  # marks the user servers, their kernels and jobs, to stop what the Hub leaves
    # the fused CPU kernels built once for this machine (else each new home builds its own: about a minute)
    "PHYSVIZ_KERNEL_CACHE": {kernel_cache!r},
}}
"""


def configurable_http_proxy() -> str:
    """The configurable-http-proxy that scripts/setup-env.sh --system installed (or one on PATH)."""
    for place in CHP_PLACES:
        if place.exists():
            return str(place)
    found = shutil.which("configurable-http-proxy")
    assert found, "configurable-http-proxy (npm) is missing: run `bash scripts/setup-env.sh --system`"
    return found


@dataclass
class Hub:
    """A running JupyterHub: its public URL, temp folder and log."""

    url: str
    tmp: Path
    log: Path
    proc: subprocess.Popen = field(repr=False)

    def home(self, user: str) -> Path:
        return self.tmp / "homes" / user

    def store(self, user: str) -> Path:
        return self.home(user) / ".physviz" / "jobs.sqlite"

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else "(no log)"

    def api(self, method: str, path: str) -> tuple[int, Any]:
        """Call the Hub's REST API with the test service's token."""
        import urllib.error
        import urllib.request

        req = urllib.request.Request(f"{self.url}/hub/api/{path}", method=method,
                                     headers={"Authorization": f"token {SERVICE_TOKEN}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = r.read()
                return r.status, json.loads(body) if body.strip() else None
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def server_ready(self, user: str) -> bool:
        status, info = self.api("GET", f"users/{user}")
        server = (info or {}).get("servers", {}).get("", {}) if status == 200 else {}
        return bool(server.get("ready"))


@contextlib.contextmanager
def running_hub(tmp: Path) -> Iterator[Hub]:
    """Start JupyterHub on free loopback ports; stop it (with the proxy and user servers) after."""
    port, hub_port, api_port = free_port(), free_port(), free_port()
    config = tmp / "jupyterhub_config.py"
    config.write_text(HUB_CONFIG.format(
        tmp=str(tmp), port=port, hub_port=hub_port, api_port=api_port, chp=configurable_http_proxy(),
        password=PASSWORD, service_token=SERVICE_TOKEN, kernel_cache=os.environ.get("PHYSVIZ_KERNEL_CACHE") or str(
            Path.home() / ".cache" / "physviz" / "kernels"), singleuser=str(VENV_BIN / "jupyterhub-singleuser"),
        args=["--allow-root"] if os.geteuid() == 0 else []))
    log = tmp / "hub.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "PHYSVIZ_JOB_STORE")) and k != "CONFIGPROXY_AUTH_TOKEN"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(VENV_BIN / "jupyterhub"), "-f", str(config)], cwd=tmp, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    hub = Hub(f"http://127.0.0.1:{port}", tmp, log, proc)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"jupyterhub exited with {proc.returncode}:\n{hub.tail()}"
            with contextlib.suppress(OSError):
                if http_get(f"{hub.url}/hub/api", timeout=2)[0] == 200:
                    break
            assert time.monotonic() < deadline, f"jupyterhub did not answer in 90 s:\n{hub.tail()}"
            time.sleep(0.5)
        yield hub
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the hub stops the proxy and the user servers itself
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        stop_pids(pids_with_env("PHYSVIZ_TEST_HUB", str(tmp)))  # user servers run in sessions of their own


@dataclass
class Session:
    """One user's browser on the Hub."""

    user: str
    ctx: Any
    page: Any
    console: Console


@dataclass
class World:
    hub: Hub
    alice: Session
    bob: Session
    shots: Path
    data: Path
    state: dict[str, Any] = field(default_factory=dict)


def login(hub: Hub, ctx: Any, console: Console, user: str) -> Session:
    """Log in at the Hub and wait for the user's JupyterLab."""
    page = ctx.new_page()
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    try:
        page.wait_for_url(f"**/user/{user}/lab**", timeout=120_000)
        page.wait_for_selector(".jp-LabShell", timeout=60_000)
    except Exception:
        raise AssertionError(f"{user}'s JupyterLab did not open:\n{hub.tail()}") from None
    return Session(user, ctx, page, console)


def jobs_tab(page: Any) -> Any:
    return page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[title='physviz jobs']")


def open_sidebar(session: Session) -> Any:
    """Show the physviz jobs panel (once the page has loaded) and return it."""
    page = session.page
    tab = jobs_tab(page)
    tab.wait_for(timeout=60_000)
    panel = page.locator("#physviz-jobs")
    for _ in range(5):  # a click on the open tab closes the sidebar: look again after each click
        if panel.is_visible():
            return panel
        tab.click()
        with contextlib.suppress(Exception):
            panel.wait_for(state="visible", timeout=3_000)
    assert panel.is_visible(), "the physviz jobs panel does not open"
    return panel


def job_rows(panel: Any) -> Any:
    return panel.locator("li.physviz-job")


class HubConsole(Console):
    """Console messages with the URL of the resource a failed load names (Chromium's text leaves it out)."""

    leaving = False  # set while the test navigates away: requests the navigation aborts are expected

    def watch(self, page) -> None:
        page.on("console", lambda m: self.messages.append((m.type, f"{m.text} [{m.location.get('url', '')}]", page.url)))
        page.on("pageerror", lambda e: self.messages.append(("pageerror", str(e), page.url)))
        page.on("requestfailed", lambda r: self.messages.append(
            ("requestfailed-leaving" if self.leaving else "requestfailed", f"{r.url} {r.failure}", page.url)))

    def errors(self) -> list[tuple[str, str, str]]:
        out = []
        for kind, text, url in self.messages:
            if kind not in ("error", "pageerror", "requestfailed"):
                continue
            if kind == "requestfailed" and "ERR_ABORTED" in text and (
                    "/stream?" in text or "/server/progress" in text):
                continue  # an event stream the page closed itself (job ended, page left)
            if kind == "error" and "status of 400" in text and re.search(r"/physviz/api/jobs(\?\d+)?\]$", text):
                continue  # the form's refusal, which the test asks for: its answer is a 400 by design
            out.append((kind, text, url))
        return out


@pytest.fixture
def jp_asyncio_loop():
    """No asyncio loop of pytest-jupyter here: its autouse fixtures (the plugin is loaded by the server tests)
    would close, or run its cleanup in, the loop Playwright's sync API keeps running for the module's browser."""
    yield None


@pytest.fixture
def jp_server_cleanup():
    """Nothing to clean: this module starts no in-process Jupyter server (see jp_asyncio_loop)."""
    yield


@contextlib.contextmanager
def two_browsers() -> Iterator[tuple[tuple[Any, Console], tuple[Any, Console]]]:
    """One headless Debian Chromium with two separate contexts (cookie jars), each with its console log."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `bash scripts/setup-env.sh --system`."
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            out = []
            for _ in range(2):
                console = HubConsole()
                ctx = browser.new_context(viewport={"width": 1500, "height": 950})
                ctx.on("page", console.watch)
                out.append((ctx, console))
            yield out[0], out[1]
        finally:
            browser.close()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """The Hub with alice and bob logged in, each in their own Chromium; alice has data, bob a finished job."""
    import physviz.jobs

    shots = artifacts("hub_extension")
    with tempfile.TemporaryDirectory(prefix="physviz-hubext-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "homes" / "alice").mkdir(parents=True)
        (tmp / "homes" / "bob" / ".physviz").mkdir(parents=True)
        data = navier_stokes_32(tmp / "homes" / "alice")  # alice's data: homes/alice/ns32
        bob_job = physviz.jobs.submit({"name": "bob-smoke", "command": [sys.executable, "-c", "print('bob ran')"]},
                                      store=tmp / "homes" / "bob" / ".physviz" / "jobs.sqlite")
        bob_job.wait(timeout=60)
        with running_hub(tmp) as hub, two_browsers() as ((actx, acons), (bctx, bcons)):
            try:
                alice = login(hub, actx, acons, "alice")
                bob = login(hub, bctx, bcons, "bob")
                yield World(hub, alice, bob, shots, data, {"bob_job": bob_job.id})
            finally:
                for user in ("alice", "bob"):
                    store = hub.store(user)
                    if store.exists():
                        for job in physviz.jobs.list(store=store):
                            with contextlib.suppress(Exception):
                                if job.status() not in ("completed", "failed", "cancelled"):
                                    job.cancel()


def test_the_extension_is_installed_and_the_sidebar_opens(world: World) -> None:
    page = world.alice.page
    panel = open_sidebar(world.alice)
    wait_for(lambda: panel.locator(".physviz-empty").count() == 1, 30, "alice's empty job list")
    assert panel.locator(".physviz-empty").inner_text() == "No jobs yet."
    assert page.locator(".jp-LauncherCard[data-category='physviz']").count() == 1


def test_the_form_refuses_bad_values_next_to_their_fields(world: World) -> None:
    page = world.alice.page
    page.locator(".jp-LauncherCard[data-category='physviz']").click()
    form = page.locator(".physviz-FinetuneForm:visible")
    form.wait_for(timeout=20_000)
    form.locator("input[name='name']").fill("ft; rm -rf ~")
    form.locator("input[name='data']").fill("no-such-folder")
    form.locator("input[name='steps']").fill("0")
    form.locator(".physviz-submit").click()
    error = form.locator(".physviz-field-error[data-error-for='steps']")
    error.wait_for(state="visible", timeout=20_000)
    assert "at least 1" in error.inner_text() or "steps" in error.inner_text()
    assert "does not exist on the server" in form.locator(".physviz-field-error[data-error-for='data']").inner_text()
    assert "';'" in form.locator(".physviz-field-error[data-error-for='name']").inner_text()
    # The error sits in the field's own row, under its input.
    row = form.locator(".physviz-row[data-field='steps']")
    assert row.locator(".physviz-field-error").inner_text() == error.inner_text()
    assert "Nothing was submitted" in form.locator(".physviz-result").inner_text()
    assert "shell code" in form.locator(".physviz-row[data-field='environment.prologue'] label").inner_text()
    form.screenshot(path=str(world.shots / "launcher_form_errors.png"))
    import physviz.jobs

    store = world.hub.store("alice")
    assert not store.exists() or physviz.jobs.list(store=store) == []  # nothing was submitted


def test_alice_submits_a_fine_tune_and_watches_it_complete(world: World) -> None:
    page = world.alice.page
    form = page.locator(".physviz-FinetuneForm:visible")
    form.locator("input[name='name']").fill("ns32 fine-tune")
    form.locator("input[name='data']").fill("ns32")  # relative to alice's home, where the file browser starts
    form.locator("input[name='steps']").fill(str(STEPS))
    form.locator("input[name='lr']").fill("2e-4")
    form.locator("textarea[name='environment.prologue']").fill("echo prologue ran on $(hostname)")
    form.screenshot(path=str(world.shots / "launcher_form.png"))
    form.locator(".physviz-submit").click()
    result = form.locator(".physviz-result.physviz-ok")
    result.wait_for(timeout=30_000)
    job_id = result.get_attribute("data-job-id")
    assert job_id and "ns32 fine-tune" in result.inner_text()
    world.state["job"] = job_id
    # The sidebar comes forward with the job selected; progress, the log and the loss curve follow live.
    panel = open_sidebar(world.alice)
    row = panel.locator(f"li.physviz-job[data-id='{job_id}']")
    row.wait_for(timeout=20_000)
    assert row.locator(".physviz-backend").inner_text() == "local"
    detail = panel.locator(".physviz-detail-status")
    detail.wait_for(timeout=10_000)
    try:
        page.wait_for_function(
            "document.querySelector('.physviz-detail-status')?.dataset.status === 'completed'", timeout=180_000)
    except Exception:
        page.screenshot(path=str(world.shots / "job_not_completed.png"))
        log = panel.locator("pre.physviz-log").inner_text()
        raise AssertionError(f"job still {detail.inner_text()}; log:\n{log[-3000:]}") from None
    train = panel.locator("path.physviz-line.physviz-train")
    wait_for(lambda: train.count() == 1 and int(train.get_attribute("data-points")) >= STEPS - 1, 30,
             "the train loss curve")
    valid = panel.locator("path.physviz-line.physviz-valid")
    assert valid.count() == 1 and int(valid.get_attribute("data-points")) >= 1
    wait_for(lambda: row.locator(".physviz-progress").inner_text() == f"{STEPS}/{STEPS}", 30, "the progress to read 4/4")
    assert row.get_attribute("data-status") == "completed"
    log = panel.locator("pre.physviz-log")
    wait_for(lambda: "step" in log.inner_text(), 30, "rank 0's log")
    page.screenshot(path=str(world.shots / "alice_lab.png"))
    panel.screenshot(path=str(world.shots / "sidebar.png"))
    # The prologue runs in the node's launcher, before torchrun: its line is in node 0's log.
    panel.locator("select.physviz-rank").select_option("node0")
    wait_for(lambda: "prologue ran on" in log.inner_text(), 30, "the prologue's line in node 0's log")


def test_after_a_reload_the_job_is_still_there(world: World) -> None:
    page, job_id = world.alice.page, world.state["job"]
    page.reload()
    page.wait_for_selector(".jp-LabShell", timeout=60_000)
    panel = open_sidebar(world.alice)
    row = panel.locator(f"li.physviz-job[data-id='{job_id}']")
    row.wait_for(timeout=30_000)
    assert row.get_attribute("data-status") == "completed"
    assert job_rows(panel).count() == 1  # only alice's job: bob's store is his own
    # Filters: by status and by backend.
    panel.locator("select.physviz-filter-status").select_option("running")
    wait_for(lambda: job_rows(panel).count() == 0, 5, "the running filter to hide the completed job")
    panel.locator("select.physviz-filter-status").select_option("completed")
    panel.locator("select.physviz-filter-backend").select_option("local")
    wait_for(lambda: job_rows(panel).count() == 1, 5, "the completed/local filter to show it")
    panel.locator("select.physviz-filter-status").select_option("")
    panel.locator("select.physviz-filter-backend").select_option("")


def test_open_in_notebook_inserts_the_reattach_code(world: World) -> None:
    page, job_id = world.alice.page, world.state["job"]
    panel = open_sidebar(world.alice)
    panel.locator(f"li.physviz-job[data-id='{job_id}']").click()
    panel.locator("button.physviz-open").click()
    cell = page.locator(".jp-Notebook .jp-Cell .jp-InputArea-editor", has_text="physviz.jobs.get(")
    cell.wait_for(timeout=60_000)
    text = cell.inner_text()
    assert f'job = physviz.jobs.get("{job_id}")' in text and "physviz.load_model(" in text, text


def test_bob_cannot_reach_alice_jobs_and_sees_only_his_own(world: World) -> None:
    bob = world.bob
    # bob's browser (his Hub login) asking alice's server: refused, no job data.
    for path in ("physviz/api/jobs", f"physviz/api/jobs/{world.state['job']}", f"physviz/api/jobs/{world.state['job']}/logs"):
        response = bob.ctx.request.get(f"{world.hub.url}/user/alice/{path}")
        assert response.status == 403, (path, response.status, response.text()[:300])
        assert "ns32 fine-tune" not in response.text()
    forged = bob.ctx.request.post(f"{world.hub.url}/user/alice/physviz/api/jobs", data=json.dumps({"data": "ns32"}))
    assert forged.status == 403
    # His own sidebar lists his job only.
    panel = open_sidebar(bob)
    row = panel.locator(f"li.physviz-job[data-id='{world.state['bob_job']}']")
    row.wait_for(timeout=30_000)
    assert job_rows(panel).count() == 1 and row.locator(".physviz-name").inner_text() == "bob-smoke"
    bob.page.screenshot(path=str(world.shots / "bob_lab.png"))
    import physviz.jobs

    assert [j.name for j in physviz.jobs.list(store=world.hub.store("alice"))] == ["ns32 fine-tune"]
    assert [j.name for j in physviz.jobs.list(store=world.hub.store("bob"))] == ["bob-smoke"]


def test_cancel_asks_first_then_ends_the_job(world: World) -> None:
    import physviz.jobs

    page = world.alice.page
    # This time the form comes from the command palette.
    page.click("li.lm-MenuBar-item:has-text('View')")
    page.click("li.lm-Menu-item[data-command='apputils:activate-command-palette']")
    page.locator(".lm-CommandPalette-input").fill("New Fine-tune")
    page.locator(".lm-CommandPalette-item", has_text="physviz: New Fine-tune Job").first.click()
    form = page.locator(".physviz-FinetuneForm:visible")
    form.wait_for(timeout=20_000)
    form.locator("input[name='data']").fill("ns32")
    form.locator("input[name='name']").fill("long run")
    form.locator("input[name='steps']").fill("5000")
    form.locator(".physviz-submit").click()
    result = form.locator(".physviz-result.physviz-ok", has_text="long run")
    result.wait_for(timeout=30_000)
    job_id = result.get_attribute("data-job-id")
    panel = open_sidebar(world.alice)
    row = panel.locator(f"li.physviz-job[data-id='{job_id}']")
    row.wait_for(timeout=20_000)
    status = panel.locator(".physviz-detail-status")
    page.wait_for_function(
        "document.querySelector('.physviz-detail-status')?.dataset.status === 'running'", timeout=60_000)
    # The first answer keeps it running ...
    panel.locator("button.physviz-cancel").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=10_000)
    assert "long run" in dialog.inner_text()
    dialog.locator("button", has_text="Keep running").click()
    dialog.wait_for(state="detached", timeout=10_000)
    assert physviz.jobs.get(job_id, store=world.hub.store("alice")).status() == "running"
    # ... the second ends it.
    panel.locator("button.physviz-cancel").click()
    page.locator(".jp-Dialog button", has_text="Cancel job").click()
    page.wait_for_function(
        "document.querySelector('.physviz-detail-status')?.dataset.status === 'cancelled'", timeout=60_000)
    assert status.inner_text() == "cancelled" and not panel.locator("button.physviz-cancel").is_visible()
    assert physviz.jobs.get(job_id, store=world.hub.store("alice")).status() == "cancelled"
    wait_for(lambda: row.get_attribute("data-status") == "cancelled", 30, "the list to show it cancelled")


def test_after_a_server_restart_the_store_still_lists_every_job(world: World) -> None:
    hub, page = world.hub, world.alice.page
    # The tab is left while the server restarts (an open lab would retry and log 424s).
    world.alice.console.leaving = True
    page.goto("about:blank")
    page.wait_for_timeout(300)  # the aborted requests' events arrive
    world.alice.console.leaving = False
    status, _ = hub.api("DELETE", "users/alice/server")
    assert status in (202, 204), status
    wait_for(lambda: not hub.server_ready("alice") and hub.api("GET", "users/alice")[1]["servers"] == {}, 60,
             "alice's server to stop")
    status, _ = hub.api("POST", "users/alice/server")
    assert status in (201, 202), status
    wait_for(lambda: hub.server_ready("alice"), 120, "alice's server to start again")
    page.goto(f"{hub.url}/user/alice/lab")
    page.wait_for_selector(".jp-LabShell", timeout=60_000)
    panel = open_sidebar(world.alice)
    wait_for(lambda: job_rows(panel).count() == 2, 30, "both of alice's jobs")
    shown = {row.get_attribute("data-id"): row.get_attribute("data-status") for row in job_rows(panel).all()}
    assert shown[world.state["job"]] == "completed" and sorted(shown.values()) == ["cancelled", "completed"]


def test_no_console_errors(world: World) -> None:
    errors = world.alice.console.errors() + world.bob.console.errors()
    assert not errors, f"browser console errors: {json.dumps(errors)[:3000]}"
