"""The quickstart in a real JupyterLab, in Debian's Chromium through Python Playwright.

JupyterLab runs with a token on a free loopback port with its own config, runtime, settings and
workspace folders. One module fixture runs every cell once; each test then checks one thing the page
shows (the scrubber's images, the time player, the spectrum plot, the job monitor, the server's jobs
page, the console), so the first failure does not hide the rest. Screenshots are kept in
tests/artifacts/browser_lab/.
"""
from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.paths import REPO
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
    wait_for_change,
    wait_for_count,
)

pytestmark = pytest.mark.slow


@dataclass
class Quickstart:
    """The quickstart after Run All: the lab, the browser context, the notebook's page and its console."""

    lab: Lab
    ctx: Any
    page: Any
    console: Console
    shots: Path
    ran_s: float


@pytest.fixture(scope="module")
def quickstart() -> Iterator[Quickstart]:
    """Start JupyterLab and Chromium, open the quickstart and run all its cells (once for this module)."""
    shots = artifacts("browser_lab")
    with lab_folder("physviz-browser-") as f:
        shutil.copy(REPO / "examples" / "quickstart.ipynb", f.root / "quickstart.ipynb")
        env = {"PHYSVIZ_JOB_STORE": str(f.store)}
        with running_lab(f.tmp, f.root, env=env) as lab, chromium(f.tmp) as (ctx, console):
            page = ctx.new_page()
            t0 = time.monotonic()
            open_and_run_all(page, lab, "quickstart.ipynb", "quickstart OK")
            yield Quickstart(lab, ctx, page, console, shots, time.monotonic() - t0)
            page.screenshot(path=str(shots / "lab.png"))


def _scrubber(q: Quickstart) -> Any:
    """The scrubber's output area, once its four Bokeh figures have canvases."""
    scrub = cell_output(q.page, "RolloutScrubber(")
    scrub.scroll_into_view_if_needed()
    wait_for_count(scrub.locator(".bk-Figure"), 4)
    wait_for_count(scrub.locator("canvas"), 4)
    return scrub


def test_the_scrubber_draws_three_field_images_and_the_vrmse_curve(quickstart: Quickstart) -> None:
    scrub = _scrubber(quickstart)
    quickstart.page.wait_for_timeout(1000)
    scrub.screenshot(path=str(quickstart.shots / "scrubber_t0.png"))
    for i in range(4):
        box = scrub.locator(".bk-Figure").nth(i).bounding_box()
        assert box and box["width"] > 100 and box["height"] > 100, (i, box)


def test_the_time_player_sends_new_frames_from_the_kernel(quickstart: Quickstart) -> None:
    page, shots = quickstart.page, quickstart.shots
    scrub = _scrubber(quickstart)
    figures = scrub.locator(".bk-Figure")
    truth_fig, pred_fig = figures.nth(0), figures.nth(1)
    slider = scrub.locator("input[type=range]").first
    stats = scrub.locator("p:has(strong:text-is('VRMSE'))").first  # the stats line of the frame shown
    assert slider.input_value() == "0"
    page.wait_for_timeout(1000)
    before = [truth_fig.screenshot(), pred_fig.screenshot()]
    stats_before = stats.inner_text()
    for _ in range(3):
        scrub.locator("button.next").first.click()
        page.wait_for_timeout(150)
    wait_for_change(stats.inner_text, stats_before)
    assert slider.input_value() == "3"
    page.wait_for_timeout(1000)
    after = [truth_fig.screenshot(), pred_fig.screenshot()]
    scrub.screenshot(path=str(shots / "scrubber_t3.png"))
    for name, a, b in zip(("truth", "prediction"), before, after):
        (shots / f"{name}_t0.png").write_bytes(a)
        (shots / f"{name}_t3.png").write_bytes(b)
        frac = changed_fraction(a, b)
        assert frac > 0.05, f"the {name} image hardly changed ({frac:.3f} of its pixels)"


def test_the_spectrum_view_draws_its_plots(quickstart: Quickstart) -> None:
    spec = cell_output(quickstart.page, "scrubber.spectrum()")
    spec.scroll_into_view_if_needed()
    assert wait_for_count(spec.locator(".bk-Figure"), 2) >= 2
    wait_for_count(spec.locator("canvas"), 2)
    quickstart.page.wait_for_timeout(500)
    spec.screenshot(path=str(quickstart.shots / "spectrum.png"))
    box = spec.locator(".bk-Figure").first.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 150, box


def test_the_job_monitor_shows_the_notebooks_fine_tune_completed(quickstart: Quickstart) -> None:
    mon = cell_output(quickstart.page, "pw.JobMonitor(job")
    mon.scroll_into_view_if_needed()
    quickstart.page.wait_for_timeout(500)
    mon.screenshot(path=str(quickstart.shots / "job_monitor.png"))
    text = deep_text(mon)
    assert "quickstart-finetune" in text and "completed" in text, text[:2000]
    assert "quickstart-finetune" in mon.locator("select").first.inner_text()


def _finetune_id(lab: Lab) -> str:
    """The id of the notebook's fine-tune, as the server's REST API lists it."""
    status, body = lab.api("physviz", "api", "jobs")
    assert status == 200, body
    jobs = {j["name"]: j for j in body["jobs"]}
    assert jobs["quickstart-finetune"]["status"] == "completed", jobs
    return jobs["quickstart-finetune"]["id"]


def test_the_server_lists_the_kernels_job_from_the_store(quickstart: Quickstart) -> None:
    assert _finetune_id(quickstart.lab)


def test_the_jobs_page_streams_the_log_and_the_last_loss(quickstart: Quickstart) -> None:
    job_id = _finetune_id(quickstart.lab)
    jobs_page = quickstart.ctx.new_page()
    try:
        jobs_page.goto(f"{quickstart.lab.url}physviz/jobs")
        row = jobs_page.locator(f"tr.job[data-id='{job_id}']")
        row.wait_for(timeout=15_000)
        assert row.get_attribute("data-status") == "completed"
        row.click()
        jobs_page.wait_for_function("document.getElementById('log').textContent.length > 0", timeout=15_000)
        jobs_page.wait_for_function(
            "document.getElementById('metrics').textContent.startsWith('step 8')", timeout=15_000)
        assert jobs_page.locator("#cancel").is_disabled()
        jobs_page.screenshot(path=str(quickstart.shots / "jobs_page.png"))
    finally:
        with contextlib.suppress(Exception):
            jobs_page.close()


def test_the_browser_console_has_no_errors(quickstart: Quickstart) -> None:
    errors = quickstart.console.errors()
    assert not errors, f"browser console errors: {errors}"
    print(f"notebook ran in the browser in {quickstart.ran_s:.0f} s")
