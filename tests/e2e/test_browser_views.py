"""Two blank-page regressions of the notebook views, read from the page in JupyterLab and Debian's Chromium.

- Run All of the teaching demo in a fresh kernel: its view is built, replaced and fed frames by a worker
  while the page has not yet opened the view's comm. Every Image glyph the page shows must hold finite
  pixels, the curves every predicted step, and the console no Bokeh errors (physviz/widgets/comm_order.py).
- The same notebook opened in a new page on the same kernel, Run All again: Panel's JavaScript must reach
  that page too, so its views are drawn, not left empty with "Bokeh or Panel library is missing"
  (physviz/widgets/page_js.py).

One module fixture runs both pages and keeps what each showed; screenshots go to tests/artifacts/browser_views/.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.paths import REPO
from tests.realparts.browser import artifacts, cell_output, chromium, deep_text, open_and_run_all, running_lab

pytestmark = pytest.mark.slow

NOTEBOOK, DONE, STEPS = "teaching_demo.ipynb", "teaching demo OK", 16
FIELD_PANELS = ("truth", "prediction", "error")

# Every glyph the page draws (reached from its Bokeh documents' views, so replaced views are left out):
# its figure's title, the glyph type, and for an Image the number of pixels and of finite pixels.
SHOWN_GLYPHS = """() => {
  const out = [];
  for (const doc of (window.Bokeh ? window.Bokeh.documents : [])) {
    const views = doc.views_manager;
    if (!views) continue;
    for (const v of views.query((v) => v.model && v.model.glyph && v.model.data_source)) {
      const glyph = v.model.glyph.constructor.__name__, data = v.model.data_source.data;
      let p = v.parent;
      while (p && !(p.model && p.model.title !== undefined && p.model.renderers)) p = p.parent;
      const rec = {glyph, title: p && p.model.title ? p.model.title.text : '', n: 0, finite: 0};
      if (glyph === 'Image') {
        const a = data.image && data.image[0], px = a ? (a.array || a) : [];
        rec.n = px.length;
        for (let i = 0; i < px.length; i++) if (Number.isFinite(px[i])) rec.finite += 1;
      } else {
        rec.n = (data.x || []).length;
      }
      out.push(rec);
    }
  }
  return out;
}"""
BOKEH_ERRORS = ("isn't known", "Python failed", "library is missing", "expected either None or a value of type")


@dataclass
class Shown:
    """What one page showed after Run All: its glyphs, the scrubber's text, its console messages, Panel's JS there."""

    glyphs: list[dict]
    scrubber_text: str
    console: list[tuple[str, str, str]]
    has_panel_js: bool


def _watch(page) -> list[tuple[str, str, str]]:
    """This page's own console messages and errors (the context's Console mixes every page)."""
    messages: list[tuple[str, str, str]] = []
    page.on("console", lambda m: messages.append((m.type, m.text, "")))
    page.on("pageerror", lambda e: messages.append(("pageerror", str(e), "")))
    return messages


def _read(page, shots: Path, name: str, messages: list[tuple[str, str, str]]) -> Shown:
    page.wait_for_timeout(2000)  # the patches sent when the page opened the view's comm
    out = cell_output(page, "simulate_and_follow(event=None)")
    out.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    out.screenshot(path=str(shots / f"{name}.png"))
    return Shown(page.evaluate(SHOWN_GLYPHS), deep_text(out), list(messages),
                 page.evaluate("() => !!(window.Bokeh && window.Bokeh.Panel && window.PyViz && window.PyViz.comm_manager)"))


@pytest.fixture(scope="module")
def pages() -> Iterator[dict[str, Shown]]:
    """Run All in a fresh kernel (page 'fresh'), then in a new page on the same kernel (page 'reopened')."""
    shots = artifacts("browser_views")
    with tempfile.TemporaryDirectory(prefix="physviz-views-") as tmpdir:
        tmp = Path(tmpdir)
        root = tmp / "root"
        root.mkdir()
        shutil.copy(REPO / "examples" / NOTEBOOK, root / NOTEBOOK)
        with running_lab(tmp, root) as lab, chromium(tmp) as (ctx, _):
            seen: dict[str, Shown] = {}
            first = ctx.new_page()
            messages = _watch(first)
            open_and_run_all(first, lab, NOTEBOOK, DONE)
            seen["fresh"] = _read(first, shots, "fresh", messages)
            second = ctx.new_page()  # a new page: its own connection to the same, still running kernel
            messages = _watch(second)
            open_and_run_all(second, lab, NOTEBOOK, DONE)
            seen["reopened"] = _read(second, shots, "reopened", messages)
            yield seen


def _check_views(shown: Shown) -> None:
    images = [g for g in shown.glyphs if g["glyph"] == "Image"]
    titles = [g["title"] for g in images]
    for panel in FIELD_PANELS:
        assert any(t.startswith(panel) for t in titles), f"no {panel} image in the page: {titles}"
    assert len(images) >= 4, titles  # three field panels and the spectra's log-ratio map
    for g in images:
        assert g["n"] > 0 and g["finite"] > 0, f"image {g['title']!r} shows nothing: {g}"
        if g["title"].startswith(FIELD_PANELS):
            assert g["finite"] == g["n"], f"image {g['title']!r} has NaN pixels: {g}"
    vrmse = [g["n"] for g in shown.glyphs if g["title"] == "VRMSE over time"]
    assert vrmse == [STEPS], f"the VRMSE curve holds {vrmse} points, not one per predicted step"
    binned = [g["n"] for g in shown.glyphs if g["title"].startswith("The Well's binned")]
    assert binned and all(n == STEPS for n in binned), binned
    assert f"rollout done: {STEPS} steps." in shown.scrubber_text, shown.scrubber_text[:500]
    assert "waiting for the first predicted frame" not in shown.scrubber_text


def test_run_all_in_a_fresh_kernel_draws_every_frame_of_the_replaced_view(pages: dict[str, Shown]) -> None:
    _check_views(pages["fresh"])


def test_run_all_in_a_fresh_kernel_leaves_no_bokeh_errors_in_the_console(pages: dict[str, Shown]) -> None:
    shown = pages["fresh"]
    bad = [m for m in shown.console if m[0] in ("error", "pageerror") or any(s in m[1] for s in BOKEH_ERRORS)]
    assert not bad, bad[:5]


def test_a_new_page_on_the_running_kernel_gets_panels_javascript_and_draws_the_views(pages: dict[str, Shown]) -> None:
    shown = pages["reopened"]
    missing = [m for m in shown.console if "library is missing" in m[1]]
    assert not missing and shown.has_panel_js, missing[:3]
    _check_views(shown)
    bad = [m for m in shown.console if m[0] in ("error", "pageerror") or any(s in m[1] for s in BOKEH_ERRORS)]
    assert not bad, bad[:5]
