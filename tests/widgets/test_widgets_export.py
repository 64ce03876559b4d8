"""Export: PNG of the current view, GIF and MP4 of a rollout comparison, offline HTML, and `physviz serve`;
each test opens what was written and checks its frames and content."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("panel")
pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from physviz.widgets import FieldExplorer, RolloutScrubber  # noqa: E402

from tests.paths import REPO
N_FRAMES = 6


@pytest.fixture(scope="module")
def uniform() -> tuple[xr.Dataset, xr.Dataset]:
    """Truth frames each of one value t (0..5): the color of frame t shows whether the limits stayed fixed."""
    n = 32
    values = np.arange(N_FRAMES, dtype=np.float32)[:, None, None] * np.ones((1, n, n), np.float32)
    x = np.arange(n) / n
    truth = xr.Dataset({"u": (("time", "x", "y"), values)}, coords={"time": np.arange(N_FRAMES) * 0.5, "x": x, "y": x})
    return truth, truth.copy(deep=True)


def _expected(value: float, lo: float, hi: float, cmap: str = "viridis") -> np.ndarray:
    import matplotlib

    return np.asarray(matplotlib.colormaps[cmap]((value - lo) / (hi - lo))[:3]) * 255


def _centre(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    l, t, r, b = box
    cx, cy = (l + r) // 2, (t + b) // 2
    return rgb[cy - 2:cy + 3, cx - 2:cx + 3].reshape(-1, 3).mean(axis=0)


def test_png_of_the_current_view(uniform, tmp_path):
    truth, pred = uniform
    sc = RolloutScrubber(truth, pred)
    sc.player._process_events({"value": 4})
    out = sc.save_png(tmp_path / "now.png")
    rgb = np.asarray(Image.open(out).convert("RGB"))
    from physviz.widgets.export import FrameRenderer

    boxes = FrameRenderer(sc._panels(sc._read_all(4)), "x").panel_boxes()
    lo, hi = sc.image["truth"].clim
    np.testing.assert_allclose(_centre(rgb, boxes[0]), _expected(4.0, lo, hi), atol=3)  # truth at frame 4
    np.testing.assert_allclose(_centre(rgb, boxes[1]), _expected(4.0, lo, hi), atol=3)  # prediction
    np.testing.assert_allclose(_centre(rgb, boxes[2]), _expected(0.0, -1, 1, "RdBu_r"), atol=3)  # zero error
    ex = FieldExplorer(truth)
    ex.player._process_events({"value": 2})
    rgb = np.asarray(Image.open(ex.save_png(tmp_path / "explore.png")).convert("RGB"))
    assert rgb.shape[0] > 100 and rgb.shape[1] > 100


def test_gif_has_every_frame_with_fixed_limits_and_labels(uniform, tmp_path):
    truth, pred = uniform
    sc = RolloutScrubber(truth, pred)
    out = sc.save_gif(tmp_path / "rollout.gif", fps=4)
    boxes = sc.last_renderer.panel_boxes()
    lo, hi = sc.image["truth"].clim
    with Image.open(out) as gif:
        assert gif.n_frames == N_FRAMES
        assert gif.info["duration"] == 250
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")).astype(float))
    for t, rgb in enumerate(frames):
        np.testing.assert_allclose(_centre(rgb, boxes[0]), _expected(float(t), lo, hi), atol=8)
        np.testing.assert_allclose(_centre(rgb, boxes[1]), _expected(float(t), lo, hi), atol=8)
    top = boxes[0][1]
    labels = [f[: max(top - 20, 5)] for f in frames]  # the strip above the panels holds the frame label
    assert all(np.abs(labels[i] - labels[i + 1]).max() > 0 for i in range(N_FRAMES - 1))


def test_mp4_has_every_frame(uniform, tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    truth, pred = uniform
    sc = RolloutScrubber(truth, pred)
    out = sc.save_mp4(tmp_path / "rollout.mp4", fps=5)
    boxes = sc.last_renderer.panel_boxes()
    lo, hi = sc.image["truth"].clim
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = reader.__next__()
    w, h = meta["size"]
    assert w % 16 == 0 and h % 16 == 0 and meta["fps"] == pytest.approx(5)
    frames = [np.frombuffer(b, np.uint8).reshape(h, w, 3).astype(float) for b in reader]
    assert len(frames) == N_FRAMES
    for t, rgb in enumerate(frames):
        np.testing.assert_allclose(_centre(rgb, boxes[0]), _expected(float(t), lo, hi), atol=14)


def test_animation_of_bad_requests_is_a_clear_error(uniform, tmp_path):
    from physviz.errors import OptionError

    truth, pred = uniform
    sc = RolloutScrubber(truth, pred)
    with pytest.raises(OptionError, match=r"\.gif or \.mp4"):
        sc.save_animation(tmp_path / "rollout.avi")
    with pytest.raises(OptionError, match="png"):
        sc.save_png(tmp_path / "x.jpg")


def _offline(html: str) -> None:
    assert not re.findall(r"<script[^>]+src=[\"']https?://", html, re.I)
    assert not re.findall(r"<link[^>]+href=[\"']https?://", html, re.I)
    assert "Bokeh" in html and "<script" in html


def test_standalone_html_is_offline_and_holds_the_view(uniform, tmp_path):
    truth, pred = uniform
    sc = RolloutScrubber(truth, pred)
    sc.player._process_events({"value": 3})
    out = sc.save_html(tmp_path / "view.html")
    html = out.read_text()
    _offline(html)
    assert len(html) > 500_000  # bokeh.min.js and panel.min.js are inline
    assert "truth \\u00b7 u \\u00b7 t = 1.5" in html or "truth · u · t = 1.5" in html


def test_embedded_html_plays_offline(uniform, tmp_path):
    truth, pred = uniform
    sc = RolloutScrubber(truth.isel(time=slice(0, 4)), pred.isel(time=slice(0, 4)))
    html = sc.save_html(tmp_path / "embed.html", embed=True).read_text()
    _offline(html)
    for t in (0.0, 0.5, 1.0, 1.5):  # each player state's title is recorded in the file
        assert f"t = {t:.4g}" in html


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_physviz_serve_page_loads_its_scripts_from_itself(tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "physviz.cli.serve", "--port", str(port)], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        html = None
        deadline = time.time() + 90
        while time.time() < deadline and html is None:
            try:
                html = urllib.request.urlopen(url, timeout=10).read().decode()
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"physviz serve exited: {proc.stdout.read()}")
                time.sleep(0.5)
        assert html is not None, "physviz serve did not answer"
        _offline(html)
        scripts = re.findall(r"<script[^>]+src=\"([^\"]+)\"", html)
        bokeh = [s for s in scripts if "bokeh.min.js" in s]
        assert bokeh and any("panel.min.js" in s for s in scripts)
        js = urllib.request.urlopen(url + bokeh[0], timeout=10).read()
        assert len(js) > 100_000
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_embedded_html_plays_in_a_real_browser_without_network(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    from physviz.fields import sample_dataset

    ds = sample_dataset(trajectories=1, n=32, steps=8).isel(trajectory=0)
    pred = ds.isel(time=slice(2, None)) * 1.1
    sc = RolloutScrubber(ds, pred)
    path = sc.save_html(tmp_path / "embed.html", embed=True)
    titles_js = "() => Array.from(Bokeh.documents[0].all_models).filter(m => m.type == 'Title').map(m => m.text)"
    move_js = "(v) => { Array.from(Bokeh.documents[0].all_models).find(m => m.type.endsWith('Player')).value = v; }"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=30000)
            assert "truth · vorticity · t = 0.2" in page.evaluate(titles_js)
            page.evaluate(move_js, 4)  # the recorded state of frame 4 is applied without a kernel
            page.wait_for_timeout(300)
            assert "truth · vorticity · t = 0.6" in page.evaluate(titles_js)
        finally:
            browser.close()
    assert [u for u in requests if not u.startswith(("file:", "blob:", "data:"))] == []


def test_png_of_a_signed_field_uses_the_views_diverging_map_clipping_and_units(tmp_path):
    """A ramp from -1 to 1 with a small hot spot at 10: diverging, symmetric, the spot drawn in the over color."""
    n = 64
    ramp = np.linspace(-1, 1, n, dtype=np.float32)[:, None] * np.ones((1, n), np.float32)
    ramp[-2:, -2:] = 10.0  # 0.1 % of the pixels, beyond the robust limits
    x = np.arange(n) / n
    truth = xr.Dataset({"u": (("time", "x", "y"), np.stack([ramp, ramp]))}, coords={"time": [0.0, 1.0], "x": x, "y": x})
    truth["u"].attrs["units"] = "m/s"
    truth["x"].attrs["units"] = "m"
    sc = RolloutScrubber(truth, truth.copy(deep=True))
    from physviz.widgets.export import FrameRenderer
    from physviz.widgets.plots import OVER_COLOR

    panels = sc._panels(sc._read_all(0))
    assert panels[0].cmap == "RdBu_r" and panels[0].clim[0] == -panels[0].clim[1]
    assert panels[0].label == "u [m/s]" and panels[0].axes == ("x [m]", "y")
    assert panels[0].over == OVER_COLOR and panels[0].extend == "max"
    out = sc.save_png(tmp_path / "signed.png")
    rgb = np.asarray(Image.open(out).convert("RGB")).astype(float)
    renderer = FrameRenderer(panels, sc._label(0))  # as save_png draws it
    assert renderer.images[0].colorbar.extend == "max"
    assert renderer.images[0].colorbar.ax.get_ylabel() == "u [m/s]"
    l, t, r, b = renderer.panel_boxes()[0]
    lo, hi = panels[0].clim
    np.testing.assert_allclose(_centre(rgb, (l, t, r, b)), _expected(0.0, lo, hi, "RdBu_r"), atol=8)  # zero: white
    corner = rgb[t:(t + b) // 2, (l + r) // 2:r]  # the top right quarter holds the hot spot
    assert (np.abs(corner - [255, 0, 255]).max(axis=-1) < 10).sum() >= 9  # drawn in the over color
