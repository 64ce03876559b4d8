"""Screenshots of the views for the README: the quickstart's rollout in a RolloutScrubber and its SpectrumComparer.

The views are saved as standalone HTML (inline JavaScript) and drawn by Debian's Chromium at a notebook's
width. Run: `.venv/bin/python scripts/readme_screenshots.py [OUT_DIR]` (default docs/images).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
WIDTH = 1080  # the output width of a notebook in a 1500 px window with the file browser open


def views():
    """The quickstart's scrubber (bundled model, Navier-Stokes 64x64, frame 6) and its spectrum view."""
    import physviz
    import physviz.widgets as pw

    sim = physviz.simulate("navier_stokes", trajectories=1, resolution=64, steps=24, seed=0, viscosity=5e-3,
                           progress=False)
    one = sim.isel(trajectory=0)
    prediction = physviz.rollout(physviz.load_pretrained(), one, steps=16, context=4, start=4)
    scrubber = pw.RolloutScrubber(one, prediction, field="vorticity")
    scrubber.player.value = 6
    return {"scrubber": scrubber, "spectra": scrubber.spectrum()}


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": 200})  # the full page: as tall as the view
        for name, view in views().items():
            html = view.save_html(Path(tmp) / f"{name}.html")
            page.goto(html.as_uri())
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=60_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            print(out / f"{name}.png")
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs" / "images")
