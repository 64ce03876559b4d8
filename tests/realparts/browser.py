"""Real JupyterLab and Debian Chromium for browser tests: start, drive, read what the page shows."""
from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.paths import REPO
from tests.realparts.procs import free_port

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
JUPYTER = str(Path(sys.executable).with_name("jupyter"))


# -- JupyterLab --------------------------------------------------------------------------------------
def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET a URL; (status, body), also for HTTP error statuses."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@dataclass
class Lab:
    """A running `jupyter lab`: its URL (ending in the base URL), token, log and environment."""

    url: str
    token: str
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen = field(repr=False)

    def api(self, *parts: str) -> tuple[int, object]:
        """GET a JSON route under the base URL with the token."""
        status, body = http_get(f"{self.url}{'/'.join(parts)}?token={self.token}")
        return status, json.loads(body) if body.strip().startswith((b"{", b"[")) else body

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else "(no log)"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def running_lab(tmp: Path, root: Path, base_url: str = "/", env: dict[str, str] | None = None) -> Iterator[Lab]:
    """Start JupyterLab on a free loopback port with a token and private Jupyter folders; stop it after."""
    port, token = free_port(), secrets.token_hex(16)
    lab_env = {k: v for k, v in os.environ.items()
               if k not in ("JUPYTER_TOKEN", "JUPYTER_CONFIG_PATH", "JUPYTER_PATH", "JUPYTERHUB_API_TOKEN")}
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_WORKSPACES_DIR", "JUPYTERLAB_SETTINGS_DIR"):
        lab_env[name] = str(tmp / name.lower())
    # No news pop-up over the page (it would also ask the internet).
    settings = tmp / "jupyterlab_settings_dir" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # Start the notebook's own kernel without asking (the physviz kernel named in its metadata).
    tracker = tmp / "jupyterlab_settings_dir" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"autoStartDefaultKernel": True}))
    lab_env.update(env or {})
    log = tmp / "lab.log"
    argv = [JUPYTER, "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", f"--ServerApp.base_url={base_url}", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=root, env=lab_env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}{base_url}", token, log, lab_env, proc)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"jupyter lab exited with {proc.returncode}:\n{lab.tail()}"
            with contextlib.suppress(OSError):
                if http_get(f"{lab.url}api/status?token={token}", timeout=2)[0] == 200:
                    break
            assert time.monotonic() < deadline, f"jupyter lab did not answer in 90 s:\n{lab.tail()}"
            time.sleep(0.5)
        yield lab
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


# -- Chromium ------------------------------------------------------------------------------------------
class Console:
    """Every console message and page error of the pages of a browser context."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str]] = []

    def watch(self, page) -> None:
        page.on("console", lambda m: self.messages.append((m.type, m.text, page.url)))
        page.on("pageerror", lambda e: self.messages.append(("pageerror", str(e), page.url)))
        page.on("requestfailed", lambda r: self.messages.append(("requestfailed", f"{r.url} {r.failure}", page.url)))

    def errors(self) -> list[tuple[str, str, str]]:
        # a log/metrics stream the page itself closes (the job ended, another job was picked) reads as ERR_ABORTED
        return [m for m in self.messages if m[0] in ("error", "pageerror", "requestfailed")
                and not (m[0] == "requestfailed" and "/stream " in m[1] and "ERR_ABORTED" in m[1])]


@contextlib.contextmanager
def chromium(tmp: Path, width: int = 1750, height: int = 1100):
    """A headless Debian Chromium context with a fresh profile, and its console log."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `bash scripts/setup-env.sh --system`."
    from playwright.sync_api import sync_playwright

    console = Console()
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": width, "height": height})
        context.on("page", console.watch)
        try:
            yield context, console
        finally:
            context.close()


def open_and_run_all(page, lab: Lab, notebook: str, done_text: str, timeout_s: float = 240) -> None:
    """Open a notebook in JupyterLab, run all cells from the Run menu, wait for `done_text` in an output."""
    page.goto(f"{lab.url}lab/tree/{notebook}?token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    wait_for_steady_kernel(page, lab, notebook)
    # Run > Run All Cells; again if no cell got an execution count (the click came too early).
    prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
    for attempt in range(3):
        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
        with contextlib.suppress(AssertionError):
            # text_content: JupyterLab skips rendering cells scrolled out of view, and inner_text reads them as ''
            wait_for(lambda: (prompt.text_content() or "").strip("[]: *").isdigit(), 60, "the first cell to run")
            break
        page.screenshot(path=str(ARTIFACTS / f"run-all-retry-{attempt}.png"))
        wait_for_steady_kernel(page, lab, notebook)
    else:
        raise AssertionError(f"Run All started no cell:\n{lab.tail()}")
    deadline = time.monotonic() + timeout_s
    done = page.locator(".jp-OutputArea-output", has_text=done_text)
    while not done.count():
        # JupyterLab renders a cell's error as stderr text
        tracebacks = page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.error'], "
                                  ".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']",
                                  has_text="Traceback (most recent call last)")
        assert not tracebacks.count(), tracebacks.first.inner_text()[-3000:]
        if time.monotonic() > deadline:
            page.screenshot(path=str(ARTIFACTS / f"timeout-{notebook}.png"))
            raise AssertionError(f"no {done_text!r} after {timeout_s} s:\n{lab.tail()}")
        page.wait_for_timeout(500)
    # The views' comms open while the last cells run; let the kernel answer them before any click.
    wait_for_steady_kernel(page, lab, notebook)


def wait_for(predicate, timeout_s: float, what: str) -> None:
    """Poll until predicate() is true."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.25)


def wait_for_steady_kernel(page, lab: Lab, notebook: str, timeout_s: float = 90) -> None:
    """Wait until the notebook has one idle kernel that stays the same for 2 s (JupyterLab may swap the first)."""
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_s * 1000)
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while True:
        if dialog.count():  # accept the notebook's own kernel if JupyterLab asks
            dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        _, sessions = lab.api("api", "sessions")
        mine = [s for s in sessions if s["path"] == notebook and s.get("kernel")]
        now = (mine[0]["kernel"]["id"], mine[0]["kernel"]["execution_state"]) if len(mine) == 1 else None
        if now != last:
            last, since = now, time.monotonic()
        elif now and now[1] == "idle" and time.monotonic() - since > 2:
            return
        assert time.monotonic() < deadline, f"no steady kernel for {notebook}: {sessions}\n{lab.tail()}"
        page.wait_for_timeout(250)


def cell_output(page, code_snippet: str):
    """The output area of the code cell whose source contains `code_snippet`."""
    cell = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea", has_text=code_snippet))
    assert cell.count() == 1, f"{cell.count()} cells hold {code_snippet!r}"
    return cell.locator(".jp-OutputArea")


DEEP_TEXT = """(el) => { const out = []; const walk = (n) => { if (n.shadowRoot) walk(n.shadowRoot);
  for (const c of n.childNodes) {
    if (c.nodeType === 3) out.push(c.textContent);
    else if (c.nodeType === 1 && !['SCRIPT', 'STYLE'].includes(c.tagName)) walk(c); } };
  walk(el); return out.join(' ').replace(/\\s+/g, ' '); }"""


def deep_text(locator) -> str:
    """The text of an element including what Bokeh and Panel draw in shadow roots."""
    return locator.evaluate(DEEP_TEXT)


def wait_for_count(locator, n: int, timeout_s: float = 60) -> int:
    """Wait until the locator matches at least n elements; return the count."""
    deadline = time.monotonic() + timeout_s
    while (count := locator.count()) < n:
        assert time.monotonic() < deadline, f"{count} < {n} elements after {timeout_s} s"
        time.sleep(0.25)
    return count


def wait_for_change(read, before, timeout_s: float = 30):
    """Poll read() until it differs from `before`; return the new value."""
    deadline = time.monotonic() + timeout_s
    while (now := read()) == before:
        assert time.monotonic() < deadline, f"still {before!r} after {timeout_s} s"
        time.sleep(0.2)
    return now


def changed_fraction(png_a: bytes, png_b: bytes) -> float:
    """Fraction of pixels that differ between two screenshots of the same size."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png_a)).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(io.BytesIO(png_b)).convert("RGB"), dtype=np.int16)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((np.abs(a - b).sum(axis=2) > 24).mean())


def artifacts(name: str) -> Path:
    """A fresh folder for this test's screenshots."""
    folder = ARTIFACTS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def cancel_leftover_jobs(store: Path) -> None:
    """Cancel jobs a failed test left running."""
    if not store.exists():
        return
    import physviz.jobs

    for job in physviz.jobs.list(store=store):
        with contextlib.suppress(Exception):
            if job.status() not in ("completed", "failed", "cancelled"):
                job.cancel()


@dataclass
class LabFolder:
    """A temporary folder for one lab: `root` (the lab's root folder) and `store` (its job store)."""

    tmp: Path
    root: Path
    store: Path


@contextlib.contextmanager
def lab_folder(prefix: str) -> Iterator[LabFolder]:
    """A temporary lab folder; jobs left running in its store are cancelled when it goes."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "root").mkdir()
        folder = LabFolder(tmp, tmp / "root", tmp / "jobs.sqlite")
        try:
            yield folder
        finally:
            cancel_leftover_jobs(folder.store)


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code `cells` for the "Python (physviz)" kernel."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(src) for src in cells])
    nb.metadata["kernelspec"] = {"name": "physviz", "display_name": "Python (physviz)", "language": "python"}
    nbformat.write(nb, path)


# -- Bokeh documents in the page ------------------------------------------------------------------------
BOKEH_IMAGES = """() => {
  const out = [];
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  docs.forEach((doc, d) => {
    const models = Array.from(doc.all_models || []);
    const titleOf = new Map();
    for (const m of models) {
      if (!Array.isArray(m.renderers) || !(m.type === 'Figure' || m.type.endsWith('Plot'))) continue;
      const t = m.title;
      const text = t == null ? '' : (typeof t === 'string' ? t : (t.text || ''));
      for (const r of m.renderers) titleOf.set(r, text);
    }
    for (const m of models) {
      if (m.type !== 'GlyphRenderer' || !m.glyph || m.glyph.type !== 'Image') continue;
      const src = m.data_source;
      const col = src && src.get_column ? src.get_column('image') : null;
      const st = {doc: d, id: m.id, title: titleOf.get(m) || '', images: col ? col.length : 0, n: 0, finite: 0,
                  min: null, max: null, sum: 0, shape: null};
      const add = (v) => { st.n += 1; if (Number.isFinite(v)) { st.finite += 1; st.sum += v;
        st.min = st.min === null ? v : Math.min(st.min, v); st.max = st.max === null ? v : Math.max(st.max, v); } };
      const walk = (a) => { if (a == null) return;
        if (typeof a === 'number') { add(a); return; }
        if (ArrayBuffer.isView(a)) { for (let i = 0; i < a.length; i++) add(a[i]); return; }
        if (Array.isArray(a) || typeof a.length === 'number') for (let i = 0; i < a.length; i++) walk(a[i]); };
      if (col && col.length) { const img = col[col.length - 1]; st.shape = img && img.shape ? Array.from(img.shape) : null;
        for (let i = 0; i < col.length; i++) walk(col[i]); }
      out.push(st);
    }
  });
  return out;
}"""


def bokeh_images(page) -> list[dict]:
    """Every Image glyph in the page's Bokeh documents: its figure's title and its pixels' stats.

    Each entry: doc (index in window.Bokeh.documents), id, title, images (arrays in the source),
    n (pixels), finite (finite pixels), min, max, sum (of the finite pixels), shape.
    """
    return page.evaluate(BOKEH_IMAGES)


def image_problem(stat: dict) -> str:
    """Why an Image glyph's data shows nothing ('' when it shows a picture): empty, all NaN, or one flat value."""
    if not stat["images"] or not stat["n"]:
        return "no image data"
    if not stat["finite"]:
        return f"all {stat['n']} pixels NaN"
    if stat["max"] <= stat["min"]:
        return f"flat image (every finite pixel {stat['min']})"
    return ""


def image_stats(page, title_prefix: str) -> list[tuple]:
    """(n, finite, min, max, sum) of each Image glyph whose figure title starts with `title_prefix`."""
    return [(s["n"], s["finite"], s["min"], s["max"], s["sum"]) for s in bokeh_images(page)
            if s["title"].startswith(title_prefix)]


def clear_workspaces(lab: Lab) -> None:
    """Forget JupyterLab's saved workspaces so that the next page opens only the notebook asked for."""
    folder = Path(lab.env["JUPYTERLAB_WORKSPACES_DIR"])
    if folder.exists():
        for f in folder.iterdir():
            f.unlink()


def shutdown_sessions(lab: Lab, path: str) -> None:
    """Delete the Jupyter sessions of a notebook (their kernels stop)."""
    _, sessions = lab.api("api", "sessions")
    for s in sessions if isinstance(sessions, list) else []:
        if s["path"] == path:
            req = urllib.request.Request(f"{lab.url}api/sessions/{s['id']}?token={lab.token}", method="DELETE")
            with contextlib.suppress(urllib.error.URLError):
                urllib.request.urlopen(req, timeout=30).close()
