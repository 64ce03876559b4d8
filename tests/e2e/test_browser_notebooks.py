"""Every example notebook in a real JupyterLab and Chromium: what the page's Bokeh documents show.

One JupyterLab serves all five example notebooks (each in its own folder, as a user's copy). For each notebook,
phase "fresh" opens it in a new page and runs all cells in a fresh kernel; phase "reopened" closes that
page, opens the notebook in another new page on the same kernel (no restart) and runs all cells again.
After each phase, one test checks one thing: every Image glyph in the page's Bokeh documents has image
data (not empty, not all NaN, not one flat value), the predicted frame changes when the player moves,
and the console has no errors. Each notebook and phase is its own test case, so the first failure does
not hide the rest. Screenshots are kept in tests/artifacts/browser_notebooks/.
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
    bokeh_images,
    cell_output,
    chromium,
    clear_workspaces,
    image_problem,
    image_stats,
    lab_folder,
    open_and_run_all,
    running_lab,
    shutdown_sessions,
)

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Example:
    """An example notebook: what its last cell prints, the cell holding its scrubber, its Image glyphs at least."""

    name: str
    done_text: str
    scrubber_cell: str
    min_images: int


EXAMPLES = [
    # quickstart: explorer 1, scrubber 3 (truth, prediction, error)
    Example("quickstart.ipynb", "quickstart OK", "RolloutScrubber(one", 4),
    # teaching demo: the stage shows the latest run's scrubber (3 images)
    Example("teaching_demo.ipynb", "teaching demo OK", "go.on_click", 3),
    # own data: explorer 1, scrubber 3
    Example("own_data.ipynb", "own data OK", "RolloutScrubber(test, pred_after", 4),
    # remote fine-tune: the scrubber of the fine-tuned model (3 images)
    Example("remote_finetune.ipynb", "remote fine-tune OK", "RolloutScrubber(test, prediction", 3),
    # walrus: the scrubber of a small Walrus's rollout (3 images)
    Example("walrus.ipynb", "walrus OK", "RolloutScrubber.from_model(model, one", 3),
]
PHASES = ("fresh", "reopened")
PREDICTION = "prediction"  # the title of the scrubber's predicted frame starts so


@dataclass
class Setup:
    """The lab and browser shared by every notebook."""

    lab: Lab
    ctx: Any
    root: Path
    shots: Path


@dataclass
class Phase:
    """One Run All of one notebook in its own page: the page, its console, what went wrong running it."""

    example: Example
    phase: str
    page: Any
    console: Console
    path: str
    failure: str
    ran_s: float

    @property
    def label(self) -> str:
        return f"{self.example.name.removesuffix('.ipynb')}-{self.phase}"


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    """One JupyterLab (its own job store, one thread per process) and one Chromium for the whole module."""
    shots = artifacts("browser_notebooks")
    with lab_folder("physviz-notebooks-") as f:
        env = {"PHYSVIZ_JOB_STORE": str(f.store), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        with running_lab(f.tmp, f.root, env=env) as lab, chromium(f.tmp) as (ctx, _console):
            yield Setup(lab, ctx, f.root, shots)


def _copy(setup: Setup, example: Example) -> str:
    """A pristine copy of the example in its own folder (no outputs); its path under the lab's root."""
    folder = setup.root / example.name.removesuffix(".ipynb")
    folder.mkdir(exist_ok=True)
    shutil.copy(REPO / "examples" / example.name, folder / example.name)
    return f"{folder.name}/{example.name}"


@pytest.fixture(scope="module", params=[(e, p) for e in EXAMPLES for p in PHASES],
                ids=[f"{e.name.removesuffix('.ipynb')}-{p}" for e in EXAMPLES for p in PHASES])
def run(request: pytest.FixtureRequest, setup: Setup) -> Iterator[Phase]:
    """Open the notebook in a new page and run all cells (fresh: a new kernel; reopened: the kernel of fresh)."""
    example, phase = request.param
    clear_workspaces(setup.lab)
    # The reopened page reads the notebook from disk: a pristine copy, so no output of the first run shows.
    path = _copy(setup, example)
    page = setup.ctx.new_page()
    console = Console()
    console.watch(page)
    state = Phase(example, phase, page, console, path, "", 0.0)
    t0 = time.monotonic()
    try:
        open_and_run_all(page, setup.lab, path, example.done_text, timeout_s=180)
    except AssertionError as exc:
        state.failure = str(exc)
    state.ran_s = time.monotonic() - t0
    page.wait_for_timeout(1500)  # the last frames and figures reach the page
    with contextlib.suppress(Exception):
        page.screenshot(path=str(setup.shots / f"{state.label}.png"), full_page=True)
    try:
        yield state
    finally:
        with contextlib.suppress(Exception):
            page.close()
        if phase == PHASES[-1]:
            shutdown_sessions(setup.lab, path)


def _ran(run: Phase) -> None:
    assert not run.failure, f"{run.label}: Run All failed: {run.failure[-3000:]}"


def _wait_for_images(run: Phase, timeout_s: float = 30) -> list[dict]:
    """The page's Image glyphs, once at least the notebook's number of them show data (or the timeout passed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        images = bokeh_images(run.page)
        good = [s for s in images if not image_problem(s)]
        if len(good) == len(images) >= run.example.min_images or time.monotonic() > deadline:
            return images
        run.page.wait_for_timeout(500)


def test_every_view_has_image_data(run: Phase) -> None:
    _ran(run)
    images = _wait_for_images(run)
    shown = [(s["title"], image_problem(s) or f"{s['finite']} px in [{s['min']:.3g}, {s['max']:.3g}]") for s in images]
    assert len(images) >= run.example.min_images, (
        f"{run.label}: {len(images)} Image glyphs in {len(run.page.evaluate('(window.Bokeh && Bokeh.documents) || []'))}"
        f" Bokeh documents, expected at least {run.example.min_images}: {shown}; console: {run.console.messages[-10:]}")
    blank = [(s["title"], image_problem(s)) for s in images if image_problem(s)]
    assert not blank, f"{run.label}: Image glyphs without a picture: {blank} (all: {shown})"


def test_the_predicted_frame_changes_when_the_player_moves(run: Phase, setup: Setup) -> None:
    _ran(run)
    _wait_for_images(run)
    assert image_stats(run.page, PREDICTION), (
        f"{run.label}: no prediction image in the page: {[s['title'] for s in bokeh_images(run.page)]}")
    scrub = cell_output(run.page, run.example.scrubber_cell)
    scrub.scroll_into_view_if_needed()
    # From the first frame (a live rollout leaves the player on its last), one step on.
    scrub.locator("button.first").first.click()
    run.page.wait_for_timeout(1500)
    before = image_stats(run.page, PREDICTION)
    scrub.screenshot(path=str(setup.shots / f"{run.label}-scrubber-before.png"))
    scrub.locator("button.next").first.click()
    deadline = time.monotonic() + 20
    while (after := image_stats(run.page, PREDICTION)) == before and time.monotonic() < deadline:
        run.page.wait_for_timeout(250)
    run.page.wait_for_timeout(500)
    scrub.screenshot(path=str(setup.shots / f"{run.label}-scrubber-after.png"))
    assert after != before, f"{run.label}: the prediction image stayed {before} after the player's next"
    assert all(n and finite for n, finite, *_ in after), f"{run.label}: the next predicted frame is blank: {after}"


def test_the_console_has_no_errors(run: Phase) -> None:
    errors = run.console.errors()
    warnings = [m for m in run.console.messages if m[0] == "warning" and ("Bokeh" in m[1] or "Panel" in m[1])]
    assert not errors, f"{run.label}: console errors: {errors}"
    assert not warnings, f"{run.label}: console warnings from Bokeh/Panel: {warnings}"
    print(f"{run.label}: Run All took {run.ran_s:.0f} s in the browser")
