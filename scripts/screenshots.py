"""README screenshots from the quickstart as a user sees it: JupyterLab in Debian's Chromium, Run All.

Saves cropped PNGs of the notebook's outputs: the rollout scrubber (moved to frame 6), the spectrum view
and the job monitor of the finished fine-tune, to docs/screenshots/ (or OUT_DIR). Uses the same JupyterLab
and Chromium recipe as the browser tests (tests/realparts/browser.py).
Run: `.venv/bin/python scripts/screenshots.py [OUT_DIR]` (about a minute).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.realparts.browser import (
    cell_output,
    chromium,
    deep_text,
    lab_folder,
    open_and_run_all,
    running_lab,
    wait_for,
    wait_for_count,
)

WIDTH, HEIGHT = 1500, 1100  # a laptop-sized window, JupyterLab's file browser open
FRAME = 6  # the scrubber's frame shown
SHOTS = {
    # file name: (a snippet of the cell whose output is shot, Bokeh figures it shows at least)
    "scrubber.png": ("RolloutScrubber(one", 4),
    "spectra.png": ("scrubber.spectrum()", 2),
    "job_monitor.png": ("pw.JobMonitor(job", 1),
}


def main(out: Path) -> None:
    """Run the quickstart in JupyterLab and save the three views' screenshots to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with lab_folder("physviz-shots-") as folder:
        shutil.copy(REPO / "examples" / "quickstart.ipynb", folder.root / "quickstart.ipynb")
        with running_lab(folder.tmp, folder.root, env={"PHYSVIZ_JOB_STORE": str(folder.store)}) as lab, \
                chromium(folder.tmp, width=WIDTH, height=HEIGHT) as (ctx, console):
            page = ctx.new_page()
            open_and_run_all(page, lab, "quickstart.ipynb", "quickstart OK")
            scrub = cell_output(page, SHOTS["scrubber.png"][0])
            scrub.scroll_into_view_if_needed()
            wait_for_count(scrub.locator(".bk-Figure"), 4)
            for _ in range(FRAME):
                scrub.locator("button.next").first.click()
                page.wait_for_timeout(200)
            slider = scrub.locator("input[type=range]").first
            wait_for(lambda: slider.input_value() == str(FRAME), 30, f"the player at frame {FRAME}")
            monitor = cell_output(page, SHOTS["job_monitor.png"][0])
            wait_for(lambda: "completed" in deep_text(monitor), 60, "the job monitor to show the job completed")
            for name, (snippet, figures) in SHOTS.items():
                area = cell_output(page, snippet)
                area.scroll_into_view_if_needed()
                wait_for_count(area.locator(".bk-Figure"), figures)
                page.mouse.move(0, 0)  # no hover toolbar over a figure
                page.wait_for_timeout(1500)
                area.screenshot(path=str(out / name))
                print(out / name)
            errors = console.errors()
            if errors:
                print(f"browser console errors: {errors}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
