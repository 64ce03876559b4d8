"""The job monitor in a real JupyterLab (Debian's Chromium through Python Playwright), read from the page.

A small job writes what real runs write: a loss whose steps come again (as after a resume), one validation
point, and a progress bar that refreshes with carriage returns and colours with ANSI codes. The page's Bokeh
documents, and the kernel, must hold each curve once a step with markers drawn; the log tail must show one line
per progress bar, without escape codes, in readable contrast, and the server's jobs page the same lines; the
plots must wrap in a narrow window. Screenshots go to tests/artifacts/browser_monitor/.
"""
from __future__ import annotations

import json

import pytest

from tests.realparts.browser import (
    artifacts,
    cell_output,
    chromium,
    deep_text,
    lab_folder,
    open_and_run_all,
    running_lab,
    wait_for,
    write_notebook,
)

pytestmark = pytest.mark.slow

JOB = r"""
import json, os, sys, time
out = os.environ['PHYSVIZ_OUTPUT_DIR']
os.makedirs(out, exist_ok=True)
f = open(os.path.join(out, 'metrics.jsonl'), 'a')
def write(record):
    f.write(json.dumps({**record, 'time': time.time()}) + '\n'); f.flush(); time.sleep(0.2)
for step in (1, 2):
    write({'kind': 'train', 'step': step, 'loss': 1.0 / step})
write({'kind': 'valid', 'step': 2, 'loss': 0.6, 'vrmse': {'u': 0.4, 'v': 0.2}})
for step in range(3, 7):
    write({'kind': 'train', 'step': step, 'loss': 1.0 / step})
for step in range(4, 9):  # resumed from the checkpoint at step 3: these steps come again
    write({'kind': 'train', 'step': step, 'loss': 0.9 / step})
for p in range(0, 101, 20):
    sys.stdout.write('\rtraining \x1b[32m%3d%%\x1b[0m|%-5s|' % (p, '#' * (p // 20))); sys.stdout.flush(); time.sleep(0.2)
print('\n\x1b[1mall done\x1b[0m', flush=True)
"""

CELLS = [
    ("import sys\nimport physviz.jobs\nimport physviz.widgets as pw\n\npw.ensure_panel()\n"
     f"JOB = {JOB!r}\n"
     "job = physviz.jobs.submit(physviz.jobs.JobSpec(name='monitor-check', command=[sys.executable, '-c', JOB]))\n"
     "monitor = pw.JobMonitor(job, period_ms=300)\nmonitor.start()\nmonitor"),
    # what the kernel holds, written from the event loop (a cell waiting on the job would stop the polls)
    ("import json\nimport panel as pn\n\ndef dump():\n"
     "    x = monitor.loss.data('train loss')[0].tolist()\n"
     "    steps = [r['step'] for r in monitor.rows if r['kind'] == 'train']\n"
     "    open('kernel_curve.json', 'w').write(json.dumps({'x': x, 'steps': steps, 'state': monitor.state}))\n\n"
     "dumper = pn.state.add_periodic_callback(dump, period=300)"),
    "print('monitor cells ' + 'OK')",
]

# Each plot of the page's Bokeh documents by title: its renderers' glyph types, legend labels and data.
CURVES_JS = """() => {
  const out = {};
  const col = (d, k) => Array.from((d instanceof Map ? d.get(k) : d[k]) || []);
  const text = (l) => typeof l === "string" ? l : (l && (l.value ?? l.field));
  for (const doc of window.Bokeh.documents) {
    for (const m of doc._all_models.values()) {
      if (!Array.isArray(m.renderers) || !m.title || !Array.isArray(m.center)) continue;
      const labels = new Map();
      const panels = [m.center, m.left, m.right, m.above, m.below].flat().filter((c) => c && Array.isArray(c.items));
      for (const legend of panels) {
        for (const item of legend.items) { for (const r of item.renderers) labels.set(r.id, text(item.label)); }
      }
      out[text(m.title.text)] = m.renderers.filter((r) => r.glyph && r.data_source).map((r) => ({
        glyph: r.glyph.constructor.__name__, label: labels.get(r.id) || null,
        x: col(r.data_source.data, "x"), y: col(r.data_source.data, "y")}));
    }
  }
  return JSON.stringify(out);
}"""

# The log tail's text and background colours as drawn.
COLORS_JS = """(el) => { const s = getComputedStyle(el);
  return JSON.stringify({color: s.color, background: s.backgroundColor, opacity: s.opacity}); }"""


def _rgb(css: str) -> tuple[float, ...]:
    return tuple(float(v) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""
    def lum(rgb: tuple[float, ...]) -> float:
        c = [v / 255 for v in rgb]
        c = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    hi, lo = sorted((lum(_rgb(a)), lum(_rgb(b))), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_monitor_draws_each_step_once_with_markers_and_a_readable_log() -> None:
    shots = artifacts("browser_monitor")
    with lab_folder("physviz-monitor-") as folder:
        root, store = folder.root, folder.store
        write_notebook(root / "monitor.ipynb", CELLS)
        with running_lab(folder.tmp, root, env={"PHYSVIZ_JOB_STORE": str(store)}) as lab, \
                chromium(folder.tmp, width=1400) as (ctx, console):
            page = ctx.new_page()
            open_and_run_all(page, lab, "monitor.ipynb", "monitor cells OK")
            mon = cell_output(page, "pw.JobMonitor(job")
            mon.scroll_into_view_if_needed()
            wait_for(lambda: "completed" in deep_text(mon), 90, "the monitor to show the job completed")
            log = mon.locator("textarea").first
            wait_for(lambda: "all done" in log.input_value(), 30, "the end of the log in the tail")
            page.wait_for_timeout(1000)
            mon.screenshot(path=str(shots / "job_monitor.png"))
            curves = json.loads(page.evaluate(CURVES_JS))
            text = log.input_value()
            colors = json.loads(log.evaluate(COLORS_JS))
            dumped = root / "kernel_curve.json"
            wait_for(lambda: dumped.exists() and json.loads(dumped.read_text())["state"] == "completed", 15,
                     "the kernel's record of the curve")
            page.wait_for_timeout(1000)  # changes the browser sends back reach the kernel
            kernel = json.loads(dumped.read_text())
            page.set_viewport_size({"width": 1000, "height": 1100})  # narrower than the two plots side by side
            page.wait_for_timeout(1500)
            mon.scroll_into_view_if_needed()
            mon.screenshot(path=str(shots / "job_monitor_narrow.png"))
            area = mon.bounding_box()
            boxes = [b for b in (f.bounding_box() for f in mon.locator(".bk-Figure").all()) if b]
            jobs_page = ctx.new_page()
            jobs_page.goto(f"{lab.url}physviz/jobs")
            jobs_page.locator("tr.job").first.click()
            jobs_page.wait_for_function("document.getElementById('log').textContent.includes('all done')",
                                        timeout=15_000)
            page_log = jobs_page.locator("#log").text_content()
            jobs_page.screenshot(path=str(shots / "jobs_page.png"))
            errors = console.errors()
    train = [r for r in curves["loss"] if r["label"] == "train loss"]
    assert {c["glyph"] for c in train} == {"Line", "Scatter"}, curves  # the markers share the legend entry
    for renderer in train:
        assert renderer["x"] == [1, 2, 3, 4, 5, 6, 7, 8], train  # once a step, never doubling back
        assert renderer["y"][3:] == pytest.approx([0.9 / s for s in range(4, 9)])  # the resumed run's values
    assert kernel["x"] == kernel["steps"] == [1, 2, 3, 4, 5, 6, 7, 8], kernel  # the kernel holds what the page does
    vrmse = curves["validation VRMSE"]
    assert {c["glyph"] for c in vrmse} == {"Line", "Scatter"}, vrmse  # one point shows as a marker
    assert all(c["x"] == [2] and c["y"] == pytest.approx([0.3]) for c in vrmse), vrmse
    assert len(boxes) == 2 and all(b["x"] + b["width"] <= area["x"] + area["width"] + 1 for b in boxes), (area, boxes)
    assert boxes[1]["y"] >= boxes[0]["y"] + boxes[0]["height"] - 1, boxes  # the plots wrap onto two lines
    lines = text.splitlines()
    assert lines[-2:] == ["training 100%|#####|", "all done"], lines
    assert sum("training" in line for line in lines) == 1 and "\x1b" not in text and "[0m" not in text, lines
    assert page_log.splitlines()[-2:] == lines[-2:] and "\x1b" not in page_log, page_log  # the jobs page too
    assert float(colors["opacity"]) == 1 and contrast(colors["color"], colors["background"]) >= 7, colors
    assert not errors, errors
