"""JupyterLab as a JupyterHub single-user server starts it (base URL /user/alice/), in real Chromium.

The server extension answers under the base URL only; the widgets render and respond there, also after a
lost acknowledgement (moves Panel holds in the browser reach the kernel without another touch); the jobs
page lists a job submitted by another process, shows its hostile name as text (no markup runs), streams
its log, refuses a cancel without the session's XSRF token, and cancels it with the button. One module
fixture starts the lab and runs the notebook; each test checks one of these, in order.
Screenshots are kept in tests/artifacts/browser_hub/.
"""
from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.realparts.browser import (
    Console,
    Lab,
    artifacts,
    cell_output,
    changed_fraction,
    chromium,
    deep_text,
    lab_folder,
    open_and_run_all,
    running_lab,
    wait_for,
    wait_for_count,
    write_notebook,
)

BASE = "/user/alice/"
HOSTILE = """<img src=x onerror="window.__pwned=1"> & 'quotes' "too" """
SLEEPER = "import time; print('sleeper up', flush=True); time.sleep(600)"
pytestmark = pytest.mark.slow

CELLS = [
    "import physviz.jobs\nimport physviz.widgets as pw\nfrom physviz.fields import sample_dataset\npw.ensure_panel()",
    "truth = sample_dataset(trajectories=1, n=64, steps=12, seed=0)\nexplorer = truth.physviz.explore(field='vorticity')\nexplorer",
    # What the kernel receives from the player, and the stats it then shows (read by the test if the frame never comes).
    "import os\ntrace = open(os.environ['PHYSVIZ_TEST_TRACE'], 'a', buffering=1)\n"
    "explorer.player.param.watch(lambda e: trace.write(f'player {e.new} stats {explorer.stats.object!r}\\n'), 'value')",
    "job = physviz.jobs.list()[-1]   # submitted by another process\nmonitor = pw.JobMonitor(job, period_ms=500)\nmonitor.start()\nmonitor",
    "assert explorer.error == '' and monitor.error == ''\nprint('hub widgets ' + 'OK')",
]


# Mark the explorer's CommManager as waiting for an acknowledgement that will not come (for `ms` more ms).
HOLD_JS = """(ms) => {
  for (const doc of window.Bokeh.documents) {
    const names = [...doc._all_models.values()].map((m) => m.constructor.__qualified__ || "");
    if (!names.some((n) => n.endsWith(".Player"))) continue;
    for (const m of doc.roots()) {
      if ("_event_buffer" in m) { m._blocked = true; m._timeout = Date.now() + ms; return true; }
    }
  }
  return false;
}"""

# What each Panel CommManager on the page holds, to tell a lost message from a slow kernel.
STATE_JS = """() => JSON.stringify(window.Bokeh.documents.flatMap((doc) => doc.roots()
  .filter((m) => "_event_buffer" in m)
  .map((m) => ({plot: m.plot_id, blocked: m._blocked, held: m._event_buffer.length,
                ms_past_timeout: Date.now() - m._timeout, flush_script: !!window.__physvizCommFlush}))))"""


def explorer_state(page, trace: Path) -> str:
    """The browser's CommManagers and what the kernel received, for a failure message."""
    got = trace.read_text().splitlines() if trace.exists() else []
    return f"comm managers: {page.evaluate(STATE_JS)}; kernel received: {got[-3:] or 'nothing'}"


@dataclass
class Hub:
    """The hub-style lab after Run All: the lab, the browser, the notebook's page, the job and the files."""

    lab: Lab
    ctx: Any
    page: Any
    console: Console
    job: Any
    store: Path
    trace: Path
    shots: Path


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    """Submit a sleeper job with a hostile name, start JupyterLab under /user/alice/, run the notebook (once)."""
    import physviz.jobs

    shots = artifacts("browser_hub")
    with lab_folder("physviz-hub-") as f:
        write_notebook(f.root / "hub_widgets.ipynb", CELLS)
        job = physviz.jobs.submit({"name": HOSTILE, "command": [sys.executable, "-c", SLEEPER]}, store=f.store)
        trace = f.tmp / "kernel_trace.txt"
        env = {"PHYSVIZ_JOB_STORE": str(f.store), "OMP_NUM_THREADS": "1", "PHYSVIZ_TEST_TRACE": str(trace)}
        with running_lab(f.tmp, f.root, base_url=BASE, env=env) as lab, chromium(f.tmp) as (ctx, console):
            page = ctx.new_page()
            open_and_run_all(page, lab, "hub_widgets.ipynb", "hub widgets OK", timeout_s=180)
            yield Hub(lab, ctx, page, console, job, f.store, trace, shots)


def _explorer(hub: Hub) -> Any:
    """The explorer's output area, once its figure has a canvas."""
    view = cell_output(hub.page, "truth.physviz.explore(")
    view.scroll_into_view_if_needed()
    wait_for_count(view.locator(".bk-Figure"), 1)
    wait_for_count(view.locator("canvas"), 1)
    return view


def _player_value(view: Any) -> int:
    return int(view.locator("input[type=range]").first.input_value())


def test_the_rest_api_answers_under_the_base_url_only(hub: Hub) -> None:
    lab = hub.lab
    assert lab.url.endswith(BASE) and hub.page.url.startswith(f"{lab.url}lab/")
    status, body = lab.api("physviz", "api", "jobs", hub.job.id)
    assert status == 200 and body["name"] == HOSTILE, body
    root_url = lab.url[: -len(BASE)] + "/"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{root_url}physviz/api/jobs?token={lab.token}", timeout=10)
    assert e.value.code == 404


def test_the_explorer_answers_the_time_player(hub: Hub) -> None:
    page, shots, trace = hub.page, hub.shots, hub.trace
    view = _explorer(hub)
    page.wait_for_timeout(800)
    figure = view.locator(".bk-Figure").first
    before = figure.screenshot()
    view.screenshot(path=str(shots / "explorer_t0.png"))
    stats = view.locator("p:has(strong:text-is('vorticity'))").first  # min/max of the frame shown
    stats_before = stats.inner_text()
    start = _player_value(view)
    # Move the player four frames on: the kernel sends the new frame back.
    for _ in range(4):
        view.locator("button.next").first.click()
        page.wait_for_timeout(150)
    assert _player_value(view) == start + 4
    try:
        wait_for(lambda: stats.inner_text() != stats_before, 30, "the kernel to send the new frame")
        wait_for(lambda: f"player {start + 4} " in trace.read_text(), 15, f"the kernel to receive frame {start + 4}")
    except AssertionError as exc:
        view.screenshot(path=str(shots / "explorer_stuck.png"))
        raise AssertionError(f"{exc}; {explorer_state(page, trace)}") from None
    page.wait_for_timeout(1200)
    after = figure.screenshot()
    view.screenshot(path=str(shots / "explorer_t4.png"))
    frac = changed_fraction(before, after)
    assert frac > 0.05, f"the field image hardly changed ({frac:.3f} of its pixels)"


def test_moves_held_after_a_lost_acknowledgement_reach_the_kernel(hub: Hub) -> None:
    # A lost acknowledgement (the kernel dropped a batch, as it does when the batch beats its comm_open
    # there): Panel holds later moves; physviz's flush script sends them once Panel's timeout has passed,
    # without another touch of a control.
    page, trace = hub.page, hub.trace
    view = _explorer(hub)
    start = _player_value(view)
    assert page.evaluate(HOLD_JS, 2000), "no CommManager found for the explorer's document"
    for _ in range(2):
        view.locator("button.next").first.click()
        page.wait_for_timeout(150)
    assert _player_value(view) == start + 2
    try:
        wait_for(lambda: f"player {start + 2} " in trace.read_text(), 15, "the held moves to reach the kernel")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {explorer_state(page, trace)}") from None


def test_the_monitor_tails_the_log_and_shows_the_hostile_name_as_text(hub: Hub) -> None:
    monitor = cell_output(hub.page, "pw.JobMonitor(job")
    monitor.scroll_into_view_if_needed()
    log_tail = monitor.locator("textarea").first
    wait_for(lambda: "sleeper up" in log_tail.input_value(), 30, "the log tail in the monitor")
    text = deep_text(monitor)
    assert "running" in text and "<img src=x" in text, text[:1500]
    monitor.screenshot(path=str(hub.shots / "job_monitor.png"))


def _jobs_page(hub: Hub) -> tuple[Any, Any]:
    """The server's jobs page under the base URL (logged in by the lab's cookie) and the job's row."""
    jobs_page = hub.ctx.new_page()
    jobs_page.goto(f"{hub.lab.url}physviz/jobs")
    row = jobs_page.locator(f"tr.job[data-id='{hub.job.id}']")
    try:
        row.wait_for(timeout=15_000)
    except Exception:
        jobs_page.screenshot(path=str(hub.shots / "jobs_page_failed.png"))
        raise AssertionError(f"{jobs_page.locator('#error').text_content()!r}; {hub.console.messages[-10:]}") from None
    return jobs_page, row


def test_the_jobs_page_lists_the_hostile_name_as_text_and_streams_the_log(hub: Hub) -> None:
    jobs_page, row = _jobs_page(hub)
    try:
        assert row.get_attribute("data-status") == "running"
        assert row.locator("td").first.text_content() == HOSTILE  # shown as text ...
        assert jobs_page.evaluate("window.__pwned") is None        # ... never run as markup
        assert not jobs_page.locator("#jobs img").count()
        row.click()
        jobs_page.wait_for_function(
            "document.getElementById('log').textContent.includes('sleeper up')", timeout=20_000)
    finally:
        jobs_page.close()


def test_a_forged_cancel_is_refused_and_the_button_cancels(hub: Hub) -> None:
    import physviz.jobs

    job, store = hub.job, hub.store
    # A forged cancel (the session cookie, no XSRF token) is refused; the job runs on.
    forged = hub.ctx.request.post(f"{hub.lab.url}physviz/api/jobs/{job.id}/cancel")
    assert forged.status == 403, forged.text()
    assert physviz.jobs.get(job.id, store=store).status() == "running"
    # The page's button sends the token: cancelled.
    jobs_page, row = _jobs_page(hub)
    row.click()
    jobs_page.locator("#cancel").click()
    jobs_page.wait_for_function(
        "document.getElementById('detail-status').textContent === 'cancelled'", timeout=60_000)
    jobs_page.screenshot(path=str(hub.shots / "jobs_page_cancelled.png"))
    assert physviz.jobs.get(job.id, store=store).status() == "cancelled"
    status, body = hub.lab.api("physviz", "api", "jobs", job.id)
    assert body["status"] == "cancelled" and body["cancel_requested"] is True


def test_the_browser_console_has_no_errors(hub: Hub) -> None:
    errors = hub.console.errors()
    assert not errors, f"browser console errors: {json.dumps(errors)[:3000]}"
