"""`physviz serve TRUTH --prediction PRED` as a real process, in Debian's Chromium: what the page's Bokeh documents show.

The truth is written by `physviz.simulate(..., out=...)` (Well train/valid/test files); the prediction is one
trajectory rolled out by `physviz rollout TRUTH -o PRED --trajectory 0`. The module fixture starts the server on a free port,
opens the page and visits each tab (Explore, Rollout, Spectra; Panel renders a tab when it is shown); each
test checks one thing: image data in every Image glyph of each tab, the predicted frame changes when the
player moves, no console errors. Screenshots are kept in tests/artifacts/browser_serve/.
"""
from __future__ import annotations

import contextlib
import os
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
from tests.realparts.browser import (
    Console,
    artifacts,
    bokeh_images,
    chromium,
    http_get,
    image_problem,
    image_stats,
    wait_for,
)
from tests.realparts.procs import free_port

pytestmark = pytest.mark.slow

TABS = ("Explore", "Rollout", "Spectra")
PREDICTION = "prediction"  # the title of the scrubber's predicted frame starts so
STEPS = 12


@dataclass
class Served:
    """The page of a running `physviz serve`, its console, and the Image glyphs seen on each tab."""

    url: str
    page: Any
    console: Console
    shots: Path
    log: Path
    images: dict[str, list[dict]] = field(default_factory=dict)


def _physviz(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "physviz", *args], check=False, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def _write_data(tmp: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """A simulated truth file (three trajectories) and `physviz rollout`'s prediction of its first trajectory."""
    import physviz

    physviz.simulate("navier_stokes", trajectories=3, resolution=64, steps=24, seed=0, viscosity=5e-3,
                     out=tmp / "ns64", progress=False)
    truth = next((tmp / "ns64").rglob("train/*.hdf5"))
    pred = tmp / "pred.hdf5"
    done = _physviz("rollout", str(truth), "-o", str(pred), "--trajectory", "0", "--steps", str(STEPS), "-q",
                    cwd=tmp, env=env)
    assert done.returncode == 0 and pred.exists(), f"physviz rollout failed:\n{done.stdout}\n{done.stderr}"
    return truth, pred


def _show_tab(page: Any, name: str) -> None:
    page.locator(".bk-tab", has_text=name).first.click()
    page.wait_for_timeout(1500)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """Write the data, start `physviz serve` on a free port, open the page in Chromium and visit each tab."""
    shots = artifacts("browser_serve")
    with tempfile.TemporaryDirectory(prefix="physviz-serve-") as tmpdir:
        tmp = Path(tmpdir)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        truth, pred = _write_data(tmp, env)
        port = free_port()
        log = tmp / "serve.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "physviz", "serve", str(truth), "--prediction", str(pred),
                                     "--port", str(port)], cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}/"

        def answers() -> bool:
            assert proc.poll() is None, f"physviz serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
            with contextlib.suppress(OSError):
                return http_get(url, timeout=5)[0] == 200
            return False

        try:
            wait_for(answers, 90, "physviz serve to answer")
            with chromium(tmp, width=1500) as (ctx, _console):
                page = ctx.new_page()
                console = Console()
                console.watch(page)
                page.goto(url)
                page.wait_for_selector(".bk-tab", timeout=60_000)
                state = Served(url, page, console, shots, log)
                for tab in TABS:
                    _show_tab(page, tab)
                    deadline = time.monotonic() + 20
                    while not (images := bokeh_images(page)) and time.monotonic() < deadline:
                        page.wait_for_timeout(500)
                    state.images[tab] = images
                    page.screenshot(path=str(shots / f"{tab.lower()}.png"), full_page=True)
                yield state
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("tab", TABS)
def test_every_view_on_the_tab_has_image_data(served: Served, tab: str) -> None:
    images = served.images[tab]
    shown = [(s["title"], image_problem(s) or "ok") for s in images]
    assert images, f"{tab}: no Image glyph in the page; log:\n{served.log.read_text()[-3000:]}"
    if tab == "Rollout":
        assert len(images) >= 3 and any(s["title"].startswith(PREDICTION) for s in images), shown
    blank = [(s["title"], image_problem(s)) for s in images if image_problem(s)]
    assert not blank, f"{tab}: Image glyphs without a picture: {blank} (all: {shown})"


def test_the_predicted_frame_changes_when_the_player_moves(served: Served) -> None:
    page = served.page
    _show_tab(page, "Rollout")
    assert image_stats(page, PREDICTION), f"no prediction image: {[s['title'] for s in bokeh_images(page)]}"
    page.locator("button.first").first.click()
    page.wait_for_timeout(1500)
    before = image_stats(page, PREDICTION)
    page.screenshot(path=str(served.shots / "rollout-before.png"))
    page.locator("button.next").first.click()
    deadline = time.monotonic() + 20
    while (after := image_stats(page, PREDICTION)) == before and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    page.wait_for_timeout(500)
    page.screenshot(path=str(served.shots / "rollout-after.png"))
    assert after != before, f"the prediction image stayed {before} after the player's next"
    assert all(n and finite for n, finite, *_ in after), f"the next predicted frame is blank: {after}"


def test_the_console_has_no_errors(served: Served) -> None:
    errors = served.console.errors()
    assert not errors, f"console errors: {errors}"
    bokeh_warnings = [m for m in served.console.messages if m[0] == "warning" and ("Bokeh" in m[1] or "Panel" in m[1])]
    assert not bokeh_warnings, f"console warnings from Bokeh/Panel: {bokeh_warnings}"
