"""The views' layout and pictures in a real JupyterLab in a 1500 px Chromium window with the file browser open.

A small notebook simulates a Navier-Stokes run (vorticity in 1/s, time in s, x and y in m), makes a
perturbed prediction of it and shows a RolloutScrubber and its SpectrumComparer. One module fixture runs
it once; each test then checks one thing from what the page holds: every Bokeh figure lies inside the
notebook panel's visible width, the field maps' color mappers, colorbars and axis labels, the time label
next to the player, and the spectra (masked round-off shells, legends outside the data, one k unit).
Screenshots are kept in tests/artifacts/browser_layout/.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.realparts.browser import (Console, Lab, artifacts, cell_output, chromium, deep_text, open_and_run_all,
                                     running_lab, wait_for, wait_for_count)

pytestmark = pytest.mark.slow

WIDTH = 1500
NOTEBOOK = "layout.ipynb"
CELLS = [
    """import numpy as np
import physviz
import physviz.widgets as pw
pw.ensure_panel()""",
    """sim = physviz.simulate('navier_stokes', trajectories=1, resolution=64, steps=12, seed=0, viscosity=5e-3,
                       progress=False)
truth = sim.isel(trajectory=0)
truth['vorticity'].attrs.update(units='1/s', long_name='vorticity')
truth['time'].attrs['units'] = 's'
for d in ('x', 'y'):
    truth[d].attrs['units'] = 'm'
rng = np.random.default_rng(0)
prediction = truth.isel(time=slice(2, None)).copy(deep=True)
for f in list(prediction.data_vars):
    prediction[f] = prediction[f] * 1.1 + (0.05 * rng.normal(size=prediction[f].shape)).astype('float32')""",
    """truth.physviz.explore(field='velocity_x')""",
    """scrubber = pw.RolloutScrubber(truth, prediction, field='vorticity')
scrubber""",
    """spectrum = scrubber.spectrum()
spectrum""",
    """live = pw.RolloutScrubber.from_model(physviz.load_pretrained(), truth, start=4, context=4, steps=6)
live""",
    """live.wait(180)
import time
time.sleep(2)  # the periodic callback's last draw reaches the page
print('live VRMSE x:', ' '.join(f'{x:.3f}' for x in live.curve.data('VRMSE')[0]))""",
    """assert scrubber.error == '' and spectrum.error == '' and live.error == ''
print('layout OK')""",
]


BOKEH_FIGURES = """() => {
  const out = [];
  const text = (t) => t == null ? '' : (typeof t === 'string' ? t : (t.text || ''));
  const arr = (a) => a == null ? [] : Array.from(a, (v) => (typeof v === 'number' && !Number.isFinite(v)) ? null : v);
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  docs.forEach((doc, d) => {
    for (const m of Array.from(doc.all_models || [])) {
      if (m.type !== 'Figure') continue;
      const side = (name) => Array.from(m[name] || []);
      const annotations = [];
      for (const name of ['left', 'right', 'above', 'below', 'center']) {
        for (const a of side(name)) {
          const entry = {type: a.type, side: name};
          if (a.type === 'ColorBar') {
            entry.title = text(a.title);
            const cm = a.color_mapper;
            entry.palette = cm ? Array.from(cm.palette) : [];
            entry.low = cm ? cm.low : null; entry.high = cm ? cm.high : null;
          }
          if (a.type === 'Legend') entry.items = Array.from(a.items || []).map((i) => text(i.label && i.label.value));
          if (a.type.endsWith('Axis')) entry.label = text(a.axis_label);
          annotations.push(entry);
        }
      }
      const glyphs = [];
      for (const r of Array.from(m.renderers || [])) {
        if (r.type !== 'GlyphRenderer' || !r.glyph) continue;
        const g = {type: r.glyph.type};
        const cm = r.glyph.color_mapper;
        if (cm) Object.assign(g, {palette: Array.from(cm.palette), low: cm.low, high: cm.high,
                                  low_color: cm.low_color, high_color: cm.high_color, nan_color: cm.nan_color});
        const src = r.data_source;
        if (r.glyph.type === 'Line' && src && src.get_column) { g.x = arr(src.get_column('x')); g.y = arr(src.get_column('y')); }
        glyphs.push(g);
      }
      out.push({doc: d, id: m.id, title: text(m.title), annotations, glyphs});
    }
  });
  return out;
}"""


def bokeh_figures(page) -> list[dict]:
    """Every figure in the page's Bokeh documents: title, annotations by side (axes with their labels, colorbars
    with title, palette and limits, legends with their items), and glyphs (an Image's color mapper: palette, low,
    high, low/high/nan colors; a Line's x and y, NaN as None)."""
    return page.evaluate(BOKEH_FIGURES)


def visible_box(page, selector: str) -> dict | None:
    """The bounding box of the first visible element matching `selector` (None when none is visible)."""
    loc = page.locator(selector)
    for i in range(loc.count()):
        if loc.nth(i).is_visible():
            return loc.nth(i).bounding_box()
    return None


@dataclass
class Layout:
    """The notebook after Run All with the file browser open: lab, page, console, screenshot folder."""

    lab: Lab
    page: Any
    console: Console
    shots: Path


def _notebook() -> dict:
    cells = [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {}, "outputs": [],
              "source": src} for i, src in enumerate(CELLS)]
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python (physviz)", "language": "python",
                                                         "name": "physviz"}, "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def _open_file_browser(page) -> None:
    """Show JupyterLab's file browser in the left sidebar (a click on its tab when it is closed)."""
    if visible_box(page, "#filebrowser") is None:
        page.locator(".jp-SideBar .lm-TabBar-tab[data-id='filebrowser']").first.click()
    wait_for(lambda: visible_box(page, "#filebrowser") is not None, 20, "the file browser to open")
    page.wait_for_timeout(1500)  # JupyterLab lays the notebook out again, the views reflow


@pytest.fixture(scope="module")
def layout() -> Iterator[Layout]:
    shots = artifacts("browser_layout")
    with tempfile.TemporaryDirectory(prefix="physviz-layout-") as tmpdir:
        tmp = Path(tmpdir)
        root = tmp / "root"
        root.mkdir()
        (root / NOTEBOOK).write_text(json.dumps(_notebook()))
        with running_lab(tmp, root, env={"OMP_NUM_THREADS": "1"}) as lab, \
                chromium(tmp, width=WIDTH, height=1000) as (ctx, console):
            page = ctx.new_page()
            open_and_run_all(page, lab, NOTEBOOK, "layout OK")
            _open_file_browser(page)
            for snippet in ("RolloutScrubber(truth", "scrubber.spectrum()"):
                out = cell_output(page, snippet)
                wait_for_count(out.locator(".bk-Figure"), 4)
                wait_for_count(out.locator("canvas"), 4)
            page.wait_for_timeout(1000)
            yield Layout(lab, page, console, shots)


def _figures(layout: Layout, prefix: str) -> list[dict]:
    return [f for f in bokeh_figures(layout.page) if f["title"].startswith(prefix)]


def _side(figure: dict, kind: str) -> list[dict]:
    return [a for a in figure["annotations"] if a["type"] == kind or (kind == "Axis" and a["type"].endswith("Axis"))]


def test_every_figure_fits_inside_the_notebook_with_the_file_browser_open(layout: Layout) -> None:
    page = layout.page
    browser = visible_box(page, "#filebrowser")
    panel = visible_box(page, ".jp-NotebookPanel")
    assert browser and browser["width"] > 150, browser
    assert panel, "no notebook panel is visible"
    right = panel["x"] + panel["width"]
    outside = []
    for snippet in ("physviz.explore(", "RolloutScrubber(truth", "scrubber.spectrum()"):
        out = cell_output(page, snippet)
        out.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        out.screenshot(path=str(layout.shots / f"{snippet.split('(')[0].replace('.', '_').strip('_')}.png"))
        figures = out.locator(".bk-Figure")
        for i in range(figures.count()):
            box = figures.nth(i).bounding_box()
            assert box and box["width"] > 100, (snippet, i, box)
            print(f"{snippet}: figure {i} at x {box['x']:.0f}..{box['x'] + box['width']:.0f}, y {box['y']:.0f}")
            if box["x"] < panel["x"] - 1 or box["x"] + box["width"] > right + 1:
                outside.append((snippet, i, round(box["x"]), round(box["x"] + box["width"])))
    page.screenshot(path=str(layout.shots / "lab.png"))
    print(f"notebook panel x {panel['x']:.0f}..{right:.0f}, file browser {browser['width']:.0f} px wide")
    assert not outside, f"figures (cell, index, left, right) beyond the notebook panel [{panel['x']:.0f}, {right:.0f}]: {outside}"


def test_the_signed_vorticity_map_is_diverging_symmetric_and_shows_clipping(layout: Layout) -> None:
    first = _figures(layout, "truth")[0]["doc"]  # the scrubber of the given prediction (the live one comes later)
    figures = [f for f in _figures(layout, "truth") + _figures(layout, "prediction") if f["doc"] == first]
    assert len(figures) == 2, [f["title"] for f in bokeh_figures(layout.page)]
    for fig in figures:
        image = next(g for g in fig["glyphs"] if g["type"] == "Image")
        assert image["palette"][0].lower() == "#053061" and image["palette"][-1].lower() == "#67001f", image["palette"][:3]
        assert image["low"] == pytest.approx(-image["high"]) and image["high"] > 0
        assert image["low_color"] and image["high_color"] and image["low_color"] != image["high_color"]
        colorbar = _side(fig, "ColorBar")[0]
        assert colorbar["title"] == "vorticity [1/s]"
        # clipping caps: the colorbar runs past the limits in the colors used beyond them
        assert colorbar["palette"][0] == image["low_color"] and colorbar["palette"][-1] == image["high_color"]
        assert colorbar["low"] < image["low"] and colorbar["high"] > image["high"]
        assert sorted(a["label"] for a in _side(fig, "Axis")) == ["x [m]", "y [m]"]
    explorer = _figures(layout, "velocity_x")[0]  # the explorer: a velocity, no attrs of its own
    image = next(g for g in explorer["glyphs"] if g["type"] == "Image")
    assert image["palette"][0].lower() == "#053061" and image["low"] == pytest.approx(-image["high"])
    assert _side(explorer, "ColorBar")[0]["title"] == "velocity_x"


def test_the_player_shows_the_time_with_its_units(layout: Layout) -> None:
    page = layout.page
    scrub = cell_output(page, "RolloutScrubber(truth")
    assert "t = 0.4 s" in deep_text(scrub)  # the prediction's first frame is the truth's third
    scrub.locator("button.next").first.click()
    wait_for(lambda: "t = 0.6 s" in deep_text(scrub), 20, "the time label to follow the player")


def test_the_spectra_mask_round_off_shells_with_legends_outside_and_one_k_unit(layout: Layout) -> None:
    page = layout.page
    ratio = _figures(layout, "spectral ratio")[0]
    line = next(g for g in ratio["glyphs"] if g["type"] == "Line")
    masked = [x for x, y in zip(line["x"], line["y"]) if y is None]
    shown = [y for y in line["y"] if y is not None]
    assert masked and min(masked) > 20, masked  # above the 2/3 dealiasing cutoff of a 64-point grid (k = 21)
    assert shown and max(shown) < 1e3, max(shown)
    text = deep_text(cell_output(page, "scrubber.spectrum()"))
    assert "masked in the ratio and the map" in text and "round-off" in text, text[:2000]
    spectrum = _figures(layout, "power spectrum")[0]
    binned = _figures(layout, "The Well's binned")[0]
    for fig, side in ((spectrum, "right"), (binned, "below")):
        legends = [a for a in _side(fig, "Legend") if a["items"]]
        assert legends and all(a["side"] == side for a in legends), (fig["title"], legends)
    assert not [a for a in _side(ratio, "Legend") if a["items"]]
    k_axes = {a["label"] for f in (spectrum, ratio) for a in _side(f, "Axis") if a["label"].startswith("k")}
    emap = _figures(layout, "log10")[0]
    k_axes |= {a["label"] for a in _side(emap, "Axis") if a["label"].startswith("k")}
    assert k_axes == {"k [rad/m]"}, k_axes
    assert "k range (rad/m)" in text and all("rad/m" in i for a in _side(binned, "Legend") for i in a["items"])


def test_a_live_rollouts_vrmse_curve_is_the_same_in_the_page_and_the_kernel(layout: Layout) -> None:
    """Frames streamed from a rollout add VRMSE points: the page holds each once, as the kernel does."""
    page = layout.page
    out = cell_output(page, "live.wait(")
    out.scroll_into_view_if_needed()  # JupyterLab draws only the cells in view
    wait_for(lambda: "live VRMSE x:" in out.inner_text(), 20, "the live rollout's printed VRMSE times")
    printed = out.inner_text()
    assert "live VRMSE x:" in printed, printed
    kernel = [float(v) for v in printed.split("live VRMSE x:")[1].split()]
    assert len(kernel) == 6, printed
    curves = []
    for fig in _figures(layout, "VRMSE over time"):
        line = next(g for g in fig["glyphs"] if g["type"] == "Line")
        curves.append([round(x, 3) for x in line["x"]])
    assert all(c == sorted(set(c)) for c in curves), f"a VRMSE curve doubles back in the page: {curves}"
    assert kernel in curves, f"kernel {kernel}, page {curves}"
