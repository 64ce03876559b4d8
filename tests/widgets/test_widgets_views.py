"""The views driven as a browser would: widget events in, Bokeh data sources out (FieldExplorer, RolloutScrubber,
SpectrumComparer, the ds.physviz accessor, bad input shown in the view)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pn = pytest.importorskip("panel")
pytest.importorskip("holoviews")

import physviz.widgets  # noqa: E402,F401 - registers ds.physviz
from physviz.analysis import binned_spectral_mse, binned_spectral_nmse, power_spectrum, vrmse  # noqa: E402
from physviz.fields import sample_dataset  # noqa: E402
from physviz.widgets import FieldExplorer, RolloutScrubber, SpectrumComparer  # noqa: E402


@pytest.fixture(scope="module")
def truth() -> xr.Dataset:
    return sample_dataset(trajectories=2, n=48, steps=10, seed=1)


@pytest.fixture(scope="module")
def pred(truth) -> xr.Dataset:
    rng = np.random.default_rng(3)
    p = truth.isel(time=slice(3, None)).copy(deep=True)
    for f in p.data_vars:
        p[f] = p[f] * 1.05 + (0.02 * rng.normal(size=p[f].shape)).astype(np.float32)
    return p


def _image(panel) -> np.ndarray:
    return np.asarray(panel.source.data["image"][0])


def _render(view) -> None:
    """Build the Bokeh models as a page would (so the sources are in a document)."""
    from bokeh.document import Document

    view.layout.get_root(Document())


def _volume() -> xr.Dataset:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(3, 8, 10, 12)).astype(np.float32)
    return xr.Dataset(
        {"density": (("time", "x", "y", "z"), data)},
        coords={"time": [0.0, 0.5, 1.0], "x": np.arange(8) * 0.1, "y": np.arange(10) * 0.2, "z": np.arange(12) * 0.3},
    )


# -- FieldExplorer ------------------------------------------------------------------------------------------
def test_explorer_player_moves_the_image_to_the_right_frame_with_fixed_clim(truth):
    ex = FieldExplorer(truth)
    assert ex.error == ""
    _render(ex)
    clim = ex.image.clim
    assert clim[0] < clim[1]
    for t in (0, 4, 9, 2):
        ex.player._process_events({"value": t})
        expected = truth.vorticity.isel(trajectory=0, time=t).values.T
        np.testing.assert_array_equal(_image(ex.image), expected)
        assert ex.image.clim == clim  # fixed, not rescaled per frame
        assert f"t = {float(truth.time[t]):.4g}" in ex.image.figure.title.text
        assert f"max {expected.max():.4g}" in ex.stats.object
    ex.trajectory._process_events({"value": 1})
    np.testing.assert_array_equal(_image(ex.image), truth.vorticity.isel(trajectory=1, time=2).values.T)
    assert ex.image.clim == clim


def test_explorer_field_switch_sets_that_fields_robust_limits(truth):
    ex = FieldExplorer(truth)
    ex.field._process_events({"value": "velocity_x"})
    np.testing.assert_array_equal(_image(ex.image), truth.velocity_x.isel(trajectory=0, time=0).values.T)
    lo, hi = ex.image.clim
    values = truth.velocity_x.values
    assert values.min() <= lo < hi <= values.max()  # robust: inside the full range
    assert np.mean((values >= lo) & (values <= hi)) > 0.9
    ex.player._process_events({"value": 7})
    assert ex.image.clim == (lo, hi)


def test_explorer_has_hover_colorbar_and_play_controls(truth):
    from bokeh.models import ColorBar, HoverTool

    ex = FieldExplorer(truth)
    hover = [t for t in ex.image.figure.tools if isinstance(t, HoverTool)]
    assert hover and any("image" in str(tt) for tt in hover[0].tooltips)
    assert any(isinstance(r, ColorBar) for r in ex.image.figure.right + ex.image.figure.center + ex.image.figure.below)
    assert {"play", "pause", "next", "previous"} <= set(ex.player.visible_buttons)
    assert ex.player.end == truth.sizes["time"] - 1


def test_explorer_slices_3d_fields_along_the_chosen_axis():
    ds = _volume()
    ex = FieldExplorer(ds)
    assert ex.error == "" and ex.axis.visible
    _render(ex)
    # default: slice across z at its middle, image axes x (horizontal), y (vertical)
    np.testing.assert_array_equal(_image(ex.image), ds.density.isel(time=0, z=6).values.T)
    ex.index._process_events({"value": 3})
    np.testing.assert_array_equal(_image(ex.image), ds.density.isel(time=0, z=3).values.T)
    ex.axis._process_events({"active": 0})  # the browser sends the index of the button pressed
    ex.index._process_events({"value": 5})
    ex.player._process_events({"value": 2})
    img = _image(ex.image)
    np.testing.assert_array_equal(img, ds.density.isel(time=2, x=5).transpose("y", "z").values.T)
    assert img.shape == (12, 10)
    src = ex.image.source.data
    assert src["dw"][0] == pytest.approx(10 * 0.2) and src["dh"][0] == pytest.approx(12 * 0.3)
    assert ex.image.figure.xaxis[0].axis_label == "y" and ex.image.figure.yaxis[0].axis_label == "z"
    assert "x = 5" in ex.image.figure.title.text


def test_explorer_downsamples_large_frames_to_screen_size():
    n = 1024
    x = np.arange(n) / n
    u = np.random.default_rng(0).normal(size=(2, n, n)).astype(np.float32)
    ds = xr.Dataset({"u": (("time", "x", "y"), u)}, coords={"time": [0.0, 1.0], "x": x, "y": x})
    ex = FieldExplorer(ds)
    img = _image(ex.image)
    assert img.shape == (512, 512) and img.dtype == np.float32
    np.testing.assert_allclose(img, u[0].reshape(512, 2, 512, 2).mean(axis=(1, 3)).T, rtol=1e-5, atol=1e-6)
    assert ex.last_stats.max == pytest.approx(float(u[0].max()))  # statistics of the full-resolution frame
    src = ex.image.source.data
    assert src["dw"][0] == pytest.approx(1.0) and src["x"][0] == pytest.approx(-0.5 / n)


def test_dark_theme_gives_light_axis_text(truth):
    from bokeh.document import Document

    old = pn.config.theme
    try:
        pn.config.theme = "dark"
        ex = FieldExplorer(truth)
        ex.layout.get_root(Document())
        fig = ex.image.figure
        assert fig.background_fill_color is None  # transparent over the page
        color = fig.xaxis[0].major_label_text_color.lstrip("#")
        assert sum(int(color[i:i + 2], 16) for i in (0, 2, 4)) > 3 * 160
    finally:
        pn.config.theme = old


# -- RolloutScrubber ----------------------------------------------------------------------------------------
def test_scrubber_panels_follow_one_player_with_shared_fixed_limits(truth, pred):
    sc = RolloutScrubber(truth, pred)
    assert sc.error == ""
    _render(sc)
    assert sc.n_frames == 7 and sc.player.end == 6
    clim = sc.image["truth"].clim
    assert sc.image["prediction"].clim == clim
    elo, ehi = sc.image["error"].clim
    assert elo == -ehi and ehi > 0
    assert sc.image["prediction"].figure.x_range is sc.image["truth"].figure.x_range  # shared pan/zoom
    assert sc.image["error"].figure.y_range is sc.image["truth"].figure.y_range
    for t in (0, 5, 2):
        sc.player._process_events({"value": t})
        tt = truth.vorticity.isel(trajectory=0, time=t + 3).values
        pp = pred.vorticity.isel(trajectory=0, time=t).values
        np.testing.assert_array_equal(_image(sc.image["truth"]), tt.T)
        np.testing.assert_array_equal(_image(sc.image["prediction"]), pp.T)
        np.testing.assert_allclose(_image(sc.image["error"]), (pp - tt).T, rtol=1e-6, atol=1e-6)
        assert sc.image["truth"].clim == clim and sc.image["error"].clim == (elo, ehi)
        assert sc.curve.cursor.location == pytest.approx(float(pred.time[t]))


def test_scrubber_vrmse_curve_is_the_wells_vrmse(truth, pred):
    sc = RolloutScrubber(truth, pred)
    x, y = sc.curve.data("VRMSE")
    ref = vrmse(pred.vorticity.isel(trajectory=0), truth.vorticity.isel(trajectory=0))
    np.testing.assert_allclose(x, pred.time.values)
    np.testing.assert_allclose(y, ref.values, rtol=1e-5)
    sc.trajectory._process_events({"value": 1})
    sc.field._process_events({"value": "velocity_y"})
    ref = vrmse(pred.velocity_y.isel(trajectory=1), truth.velocity_y.isel(trajectory=1))
    np.testing.assert_allclose(sc.curve.data("VRMSE")[1], ref.values, rtol=1e-5)
    sc.player._process_events({"value": 4})
    np.testing.assert_array_equal(_image(sc.image["truth"]), truth.velocity_y.isel(trajectory=1, time=7).values.T)
    assert sc.image["truth"].clim == sc.image["prediction"].clim


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda t, p: p.isel(x=slice(0, 24)), "points along 'x'"),
        (lambda t, p: p.isel(time=slice(0, 0)), "empty"),
        (lambda t, p: p.rename(vorticity="w", velocity_x="u", velocity_y="v"), "none in common"),
        (lambda t, p: p.assign_coords(time=p.time + 100.0), "no step in common"),
        (lambda t, p: p.assign_coords(y=p.y + 1.0), "different 'y' coordinates"),
        (lambda t, p: "not a dataset", "must be an xarray Dataset"),
    ],
)
def test_bad_rollout_input_is_a_message_in_the_view(truth, pred, make, words):
    for cls in (RolloutScrubber, SpectrumComparer):
        view = cls(truth, make(truth, pred))
        assert words in view.error
        assert isinstance(view.layout, pn.pane.Alert) and view.layout.visible
        assert words in view.layout.object


def test_missing_field_is_a_message_in_the_view(truth, pred):
    for view in (FieldExplorer(truth, field="pressure"), RolloutScrubber(truth, pred, field="pressure")):
        assert "no field 'pressure'" in view.error and isinstance(view.layout, pn.pane.Alert)
    view = FieldExplorer(xr.Dataset({"a": ("time", np.arange(3.0))}))
    assert "spatial dims" in view.error


# -- SpectrumComparer ---------------------------------------------------------------------------------------
def _positive(e: np.ndarray) -> np.ndarray:
    return np.where(e > 0, e, np.nan)


def test_spectrum_curve_follows_the_player(truth, pred):
    sp = SpectrumComparer(truth, pred)
    assert sp.error == ""
    _render(sp)
    for t in (0, 3, 6):
        sp.player._process_events({"value": t})
        e_t = power_spectrum(truth.vorticity.isel(trajectory=0, time=t + 3)).values[1:]
        e_p = power_spectrum(pred.vorticity.isel(trajectory=0, time=t)).values[1:]
        k, y = sp.curves.data("truth")
        np.testing.assert_allclose(y, _positive(e_t), rtol=1e-6, atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(sp.curves.data("prediction")[1], _positive(e_p), rtol=1e-6, atol=1e-12, equal_nan=True)
        roundoff = e_t < 1e-12 * e_t.max()  # masked: the truth's shell is at round-off
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(roundoff, np.nan, _positive(e_p) / _positive(e_t))
        np.testing.assert_allclose(sp.ratio.data("ratio")[1], ratio, rtol=1e-5, equal_nan=True)
        assert sp.map_cursor.location == pytest.approx(float(pred.time[t]))
        assert sp.binned.cursor.location == pytest.approx(float(pred.time[t]))
    from bokeh.models import LogScale

    assert isinstance(sp.curves.figure.x_scale, LogScale) and isinstance(sp.curves.figure.y_scale, LogScale)


def test_spectrum_binned_errors_and_error_map_match_the_analysis_layer(truth, pred):
    sp = SpectrumComparer(truth, pred, field="velocity_x")
    p, t = pred.velocity_x.isel(trajectory=0), truth.velocity_x.isel(trajectory=0, time=slice(3, None))
    nmse = binned_spectral_nmse(p, t).values  # (time, 3)
    mse = binned_spectral_mse(p, t).values
    for i, name in enumerate(sp._bin_names):
        x, y = sp.binned.data(name)
        np.testing.assert_allclose(x, pred.time.values)
        np.testing.assert_allclose(y, np.where(nmse[:, i] > 0, nmse[:, i], np.nan), rtol=1e-6, equal_nan=True)
    sp.player._process_events({"value": 2})
    s = sp.spectra()
    np.testing.assert_allclose(s["binned_mse"], mse[2], rtol=1e-6)
    np.testing.assert_allclose(s["binned_nmse"], nmse[2], rtol=1e-6)
    assert f"{mse[2, 1]:.4g}" in sp.table.object
    emap = _image(sp.map)
    e_t = power_spectrum(t).values[:, 1:]
    e_p = power_spectrum(p).values[:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.log10(e_p / e_t)
    ref[~np.isfinite(ref) | (e_t < 1e-12 * e_t.max(axis=1, keepdims=True))] = np.nan  # round-off shells masked
    assert emap.shape == (e_t.shape[1], 7)
    np.testing.assert_allclose(emap, ref.T, rtol=1e-4, atol=1e-5, equal_nan=True)
    lo, hi = sp.map.clim
    assert lo == -hi


def test_spectrum_linked_to_the_scrubbers_player_and_field(truth, pred):
    sc = RolloutScrubber(truth, pred)
    sp = sc.spectrum()
    assert sp.player is sc.player and sp.error == ""
    sc.player._process_events({"value": 5})
    e_t = power_spectrum(truth.vorticity.isel(trajectory=0, time=8)).values[1:]
    np.testing.assert_allclose(sp.curves.data("truth")[1], _positive(e_t), rtol=1e-6, equal_nan=True)
    sc.field._process_events({"value": "velocity_y"})
    e_p = power_spectrum(pred.velocity_y.isel(trajectory=0, time=5)).values[1:]
    np.testing.assert_allclose(sp.curves.data("prediction")[1], _positive(e_p), rtol=1e-6, equal_nan=True)


def test_spectrum_of_3d_fields_is_isotropic_over_the_volume():
    ds = _volume()
    p = ds * 1.1
    sp = SpectrumComparer(ds, p)
    assert sp.error == ""
    sp.player._process_events({"value": 1})
    ref = power_spectrum(ds.density.isel(time=1)).values[1:]
    np.testing.assert_allclose(sp.curves.data("truth")[1], _positive(ref), rtol=1e-6, equal_nan=True)


# -- accessor and light import --------------------------------------------------------------------------------
def test_accessor_makes_the_views(truth, pred):
    assert isinstance(truth.physviz.explore(), FieldExplorer)
    assert isinstance(truth.vorticity.physviz.explore(), FieldExplorer)
    sc = pred.physviz.scrub(truth)
    assert isinstance(sc, RolloutScrubber) and sc.error == "" and sc.n_frames == 7
    sp = pred.physviz.spectrum(truth)
    assert isinstance(sp, SpectrumComparer) and sp.error == ""


def test_importing_widgets_stays_light():
    code = (
        "import sys, physviz, physviz.widgets, xarray as xr;"
        "assert hasattr(xr.Dataset, 'physviz');"
        "print(','.join(m for m in ('torch', 'panel', 'holoviews', 'bokeh', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_notebook_output_of_every_view_carries_the_comm_flush_script_once(truth, pred):
    from physviz.widgets.comm_flush import EXEC_MIME, FLUSH_JS, with_comm_flush

    for view in (FieldExplorer(truth), RolloutScrubber(truth, pred)):
        data, metadata = view._repr_mimebundle_()
        html = data["text/html"]
        assert html.count(FLUSH_JS) == 1 and html.endswith("</script>")
        assert metadata[EXEC_MIME]["id"] in html  # Panel's own output is still all there
    # Anything that is not Panel's notebook output passes through untouched.
    other = ({"text/plain": "x"}, {})
    assert with_comm_flush(other) is other and with_comm_flush("text") == "text"


def _between(text: str, start: str, end: str) -> str:
    i = text.index(start)
    return text[i:text.index(end, i)]


def test_the_panel_and_bokeh_internals_the_comm_flush_script_reads_are_still_there():
    """FLUSH_JS reads fields of Panel's browser-side CommManager and Bokeh's document list; no upper pin on
    Panel or Bokeh holds them still, so a release that renames or reworks them fails here."""
    import bokeh
    from panel.models.comm_manager import CommManager

    from physviz.widgets.comm_flush import CHECKED_ON, FLUSH_JS

    versions = f"panel {pn.__version__}, bokeh {bokeh.__version__}; comm_flush.py was checked on {CHECKED_ON}"
    assert CommManager.properties() >= {"timeout"} and CommManager().timeout == 5000, versions
    js = (Path(pn.__file__).parent / "dist" / "panel.js").read_text(encoding="utf-8")
    manager = _between(js, "class CommManager extends", "debounce: [Int, 50]")
    for pattern in (
        r"this\._event_buffer\s*=\s*\[\]",  # changes wait here ...
        r"this\._event_buffer\.push\(event\)",
        r"else if \(\(!this\._blocked \|\| \(Date\.now\(\) > this\._timeout\)\)\)",  # ... sent on a change after the timeout
        r"this\._blocked\s*=\s*true;\s*this\._timeout\s*=\s*Date\.now\(\)\s*\+\s*this\.timeout",
        r"\n\s*process_events\(\)\s*\{\s*if \(\(this\.document == null\) \|\| \(this\._client_comm == null\)\)",
        r"timeout:\s*\[Int,\s*5000\]",
    ):
        assert re.search(pattern, manager), f"Panel's CommManager no longer matches {pattern!r} ({versions})"
    minified = (Path(pn.__file__).parent / "dist" / "panel.min.js").read_text(encoding="utf-8")
    assert "this._event_buffer=[],this._blocked=!1" in minified and "Date.now()>this._timeout" in minified, versions
    bokeh_js = (Path(bokeh.__file__).parent / "server" / "static" / "js" / "bokeh.js").read_text(encoding="utf-8")
    assert "exports.documents = [];" in bokeh_js and "exports.documents.push(this);" in bokeh_js, versions
    assert re.search(r"\n\s*roots\(\) \{", bokeh_js), versions
    for name in ("_blocked", "_event_buffer", "_timeout", "process_events", "Bokeh.documents", "roots()"):
        assert name in FLUSH_JS


def test_the_private_panel_methods_offline_css_wraps_keep_their_signatures() -> None:
    # A fresh process: in this one physviz may already have wrapped the methods.
    code = ("import inspect, json, panel; from panel.reactive import Reactive; print(json.dumps({n: list(inspect."
            "signature(getattr(Reactive, n)).parameters) for n in ('_get_properties', '_update_model')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"_get_properties": ["self", "doc"],
                   "_update_model": ["self", "events", "msg", "root", "model", "doc", "comm"]}, (
        f"Panel changed the methods physviz/widgets/offline_css.py wraps: {got}")


class _OpenComm:
    """Stands for the ipykernel comm a page has opened (what JupyterComm.init makes)."""

    def send(self, *args, **kw) -> None:
        pass


def test_notebook_patches_wait_in_the_document_until_the_page_opens_the_comm_then_go_out_once_in_order(monkeypatch):
    """A view changed before its page opened the comm (Run All) sends nothing then, and one patch after: changes
    to models that left the document are dropped, and each data source's changes become its data in full."""
    import panel.io.notebook as nb
    from bokeh.document import Document
    from panel.io.model import add_to_doc
    from pyviz_comms import JupyterComm

    from physviz.widgets import comm_order
    from physviz.widgets.base import ensure_panel
    from physviz.widgets.plots import CurvePanel

    ensure_panel()
    sent: list = []
    monkeypatch.setattr(nb, "send", lambda comm, msg: sent.append(json.loads(msg.content_json)))
    doc, comm = Document(), JupyterComm()
    stage = pn.Column(pn.pane.Markdown("first"))
    add_to_doc(stage.get_root(doc, comm), doc, True)
    old = CurvePanel(["a"], "x", "y")
    stage[:] = [pn.pane.Bokeh(old.figure)]
    old.set("a", np.arange(3.0), np.arange(3.0))  # a model that leaves the document before the page opens
    new = CurvePanel(["a"], "x", "y")
    stage[:] = [pn.pane.Bokeh(new.figure)]
    new.set("a", np.array([1.0]), np.array([1.0]))
    new.append("a", 2.0, 2.0)
    new.append("a", 3.0, 3.0)
    new.set("a", np.array([1.0, 2.0]), np.array([1.0, 2.0]))  # held: combined with the first set, ahead of the streams
    new.append("a", 3.0, 3.0)
    stage.append(pn.pane.Markdown("last"))
    assert comm_order.waiting(doc) and sent == []
    for i in range(2 * comm_order.MAX_HELD):  # a page that never opens the comm: the held changes stay few
        new.figure.title.text = f"t{i}"
        new.set("a", np.arange(i + 2.0), np.arange(i + 2.0))
        stage[-1] = pn.pane.Markdown(f"last {i}")
    assert len(doc.callbacks._held_events) <= comm_order.MAX_HELD + 3 and sent == []
    new.set("a", np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    new.append("a", 3.0, 3.0)

    comm._comm = _OpenComm()
    comm_order.flush(comm)
    assert len(sent) == 1
    events = sent[0]["events"]
    source = new.sources["a"]
    data = [e for e in events if e.get("model", {}).get("id") == source.id]
    assert [e["kind"] for e in data] == ["ColumnDataChanged"]
    assert [e for e in events if e.get("model", {}).get("id") == old.sources["a"].id] == []
    assert not comm_order.waiting(doc)
    stage.append(pn.pane.Markdown("after"))  # an open comm: sent at once
    assert len(sent) == 2


def test_the_panel_and_pyviz_comms_internals_comm_order_uses_are_still_there() -> None:
    import inspect

    import panel.io.notebook as nb
    from bokeh.document import Document
    from panel.io.state import state
    from pyviz_comms import Comm, JupyterComm

    code = ("import inspect, json, panel.io.notebook as nb; print(json.dumps([list(inspect.signature(nb.diff).parameters),"
            " 'diff(doc, binary=binary)' in inspect.getsource(nb.push), 'not comm._comm' in inspect.getsource(nb.push)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [["doc", "binary", "events"], True, True]
    assert "self._comm = None" in inspect.getsource(Comm.__init__) and "self._comm = IPyComm(" in inspect.getsource(
        JupyterComm.init.__closure__[0].cell_contents if JupyterComm.init.__closure__ else JupyterComm.init)
    assert isinstance(state._views, dict) and hasattr(nb, "push") and hasattr(nb, "send")
    assert isinstance(Document().callbacks._held_events, list)


def test_panels_javascript_is_published_once_per_page_not_once_per_kernel(monkeypatch):
    """A page (a client session) that has not had Panel's JavaScript from this kernel gets pn.extension's outputs,
    guarded so a page that has Bokeh and Panel runs nothing twice; a comm message shows its page has them."""
    import IPython.display

    from physviz.widgets import page_js

    published: list = []
    monkeypatch.setattr(IPython.display, "publish_display_data", lambda data, *a, **kw: published.append(data))
    monkeypatch.setattr(page_js, "_LOADED", set())
    who = {"now": ("page-1", "execute_request")}
    monkeypatch.setattr(page_js, "client", lambda: who["now"])
    assert page_js.ensure_loaded() and len(published) == 3
    assert not page_js.ensure_loaded() and len(published) == 3  # the same page: nothing again
    who["now"] = ("page-2", "comm_msg")  # a click on page 2's Panel output: it has the JavaScript
    assert not page_js.ensure_loaded() and len(published) == 3
    who["now"] = ("page-3", "execute_request")
    assert page_js.ensure_loaded() and len(published) == 6
    css, load, comms = published[3:]
    assert "<style>" in css["text/html"]
    for data, guard in ((load, "b.Panel"), (comms, "window.PyViz.comm_manager")):
        js = data[page_js.LOAD_MIME]
        assert js == data[page_js.JS_MIME] and js.startswith("(function () { if (") and guard in js.split("(0, eval)")[0]
        assert "</script" not in js.lower()  # safe inside an HTML script element
    assert len(load[page_js.LOAD_MIME]) > 1_000_000  # BokehJS and Panel inline: no CDN


def test_the_outputs_pn_extension_publishes_are_still_css_autoload_and_comm_manager() -> None:
    code = ("import json, IPython.display as d; out = []; d.publish_display_data = lambda data, *a, **k: out.append(sorted(data));"
            "from panel.io.notebook import load_notebook; load_notebook(inline=True, reloading=False); print(json.dumps(out))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    load = "application/vnd.holoviews_load.v0+json"
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [
        ["text/html"], ["application/javascript", load], ["application/javascript", load]]


def test_scrubber_of_a_one_trajectory_prediction_faces_the_trajectory_it_names(truth, pred):
    one = pred.isel(trajectory=1)
    sc = RolloutScrubber(truth, one, trajectory=1)
    assert sc.error == "" and "trajectory" not in sc.truth.dims
    np.testing.assert_array_equal(sc.truth.vorticity.values, truth.vorticity.isel(trajectory=1, time=slice(3, None)).values)
    one.attrs["rollout"] = {"trajectory": 1}  # what physviz rollout records
    assert RolloutScrubber(truth, one).truth.vorticity.equals(sc.truth.vorticity)
    assert "out of range" in RolloutScrubber(truth, one, trajectory=5).error


def test_a_stylesheet_already_in_the_page_is_never_re_pointed_at_the_cdn_under_inline():
    """Panel re-points a document's shared, cached sheet at the CDN when it renders for a document without a
    dist_url (a dynamic tab of `physviz serve`): the page then asks cdn.holoviz.org. Under inline it stays, and
    a local-dist link becomes the same file inline."""
    import inspect

    import panel.reactive as reactive
    from bokeh.models import ImportedStyleSheet, InlineStyleSheet
    from panel.io.resources import CDN_DIST, LOCAL_DIST

    from physviz.widgets.base import ensure_panel
    from physviz.widgets.offline_css import _inline

    ensure_panel()
    sheet = ImportedStyleSheet(url=f"{LOCAL_DIST}css/loading.css?v={pn.__version__}")
    reactive.patch_stylesheet(sheet, CDN_DIST)
    assert sheet.url.startswith(LOCAL_DIST)
    inline = _inline(sheet, None)
    assert isinstance(inline, InlineStyleSheet) and ".pn-loading" in inline.css
    code = ("import inspect, json, panel.reactive as r; print(json.dumps(list(inspect.signature(r.patch_stylesheet)"
            ".parameters)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["stylesheet", "dist_url"], "Panel changed patch_stylesheet"
