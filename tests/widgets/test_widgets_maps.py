"""Pictures that read at a glance, checked on the Bokeh models the views build: colormaps by the field's sign,
clipping shown on the colorbar, units and long names from the attrs, the time next to the player, masked
round-off shells in the spectra, legends outside the data, one k unit, panels that wrap to the notebook's width."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

pn = pytest.importorskip("panel")
pytest.importorskip("holoviews")

from physviz.analysis import power_spectrum  # noqa: E402
from physviz.widgets import FieldExplorer, RolloutScrubber, SpectrumComparer  # noqa: E402
from physviz.widgets import frames as fr  # noqa: E402
from physviz.widgets.plots import (NOTEBOOK_WIDTH, OVER_COLOR, PANEL_EXTRA, UNDER_COLOR, ImagePanel,  # noqa: E402
                                   palette)

RDBU_R = palette("RdBu_r")
VIRIDIS = palette("viridis")


def _flow(n: int = 64, steps: int = 6, seed: int = 0) -> xr.Dataset:
    """A band-limited swirl (|k| <= 6 on a 64 grid): vorticity and velocities of both signs, a positive density,
    units on every coordinate and on the vorticity; its spectrum is at round-off above k = 6."""
    rng = np.random.default_rng(seed)
    x = np.arange(n) * (2 * np.pi / n)
    kx = np.fft.fftfreq(n, 1 / n)[:, None]
    ky = np.fft.rfftfreq(n, 1 / n)[None, :]
    band = np.hypot(kx, ky) <= 6
    frames = []
    for t in range(steps):
        modes = (rng.normal(size=band.shape) + 1j * rng.normal(size=band.shape)) * band
        frames.append(np.fft.irfft2(modes, s=(n, n)) * n)
    w = np.stack(frames).astype(np.float32)
    ds = xr.Dataset(
        {"vorticity": (("time", "x", "y"), w), "velocity_x": (("time", "x", "y"), 0.3 * w),
         "density": (("time", "x", "y"), 2.0 + 0.1 * w)},
        coords={"time": np.arange(steps) * 0.25, "x": x, "y": x},
    )
    ds["vorticity"].attrs.update(units="1/s", long_name="relative vorticity")
    ds["time"].attrs["units"] = "s"
    ds["x"].attrs["units"] = "m"
    ds["y"].attrs["units"] = "m"
    return ds


@pytest.fixture(scope="module")
def flow() -> xr.Dataset:
    return _flow()


@pytest.fixture(scope="module")
def noisy(flow) -> xr.Dataset:
    """A prediction: the flow a little off, plus white noise at every wavenumber."""
    rng = np.random.default_rng(1)
    p = flow.copy(deep=True)
    for f in p.data_vars:
        p[f] = p[f] * 1.05 + (0.01 * rng.normal(size=p[f].shape)).astype(np.float32)
    return p


def _mapper(panel: ImagePanel):
    return panel.color_mapper


# -- color scales ----------------------------------------------------------------------------------------------
def test_signed_fields_get_a_diverging_map_with_limits_symmetric_about_zero(flow, noisy):
    sc = RolloutScrubber(flow, noisy, field="vorticity")
    assert sc.error == ""
    for k in ("truth", "prediction"):
        m = _mapper(sc.image[k])
        assert list(m.palette) == RDBU_R
        assert m.low == pytest.approx(-m.high) and m.high > 0
    sc.field._process_events({"value": "density"})  # positive everywhere: a perceptual map, limits from the data
    m = _mapper(sc.image["truth"])
    assert list(m.palette) == VIRIDIS and 1.0 < m.low < m.high
    sc.field._process_events({"value": "velocity_x"})
    assert list(_mapper(sc.image["truth"]).palette) == RDBU_R
    assert list(_mapper(sc.image["error"]).palette) == RDBU_R  # the error map stays diverging


def test_the_explorer_switches_the_colormap_with_the_field(flow):
    ex = FieldExplorer(flow, field="density")
    assert list(_mapper(ex.image).palette) == VIRIDIS and ex.image.cmap == "viridis"
    ex.field._process_events({"value": "vorticity"})
    m = _mapper(ex.image)
    assert list(m.palette) == RDBU_R and m.low == pytest.approx(-m.high) and ex.image.cmap == "RdBu_r"


def test_a_field_of_one_sign_with_a_small_dip_below_zero_stays_perceptual():
    values = np.linspace(-0.08, 1.0, 1000)
    assert not fr.color_scale(values, "density").signed
    assert fr.color_scale(values, "velocity_x").signed  # a velocity crossing zero is signed by name
    assert fr.color_scale(np.linspace(-1, 2, 1000)).signed  # both signs substantial


def test_clipping_shows_in_the_mapper_colors_and_as_caps_on_the_colorbar(flow, noisy):
    sc = RolloutScrubber(flow, noisy, field="vorticity")
    panel = sc.image["truth"]
    m = panel.color_mapper
    assert (m.low_color, m.high_color) == (UNDER_COLOR, OVER_COLOR)
    scale = fr.field_scale(flow.vorticity)
    assert scale.clipped_low and scale.clipped_high  # robust limits leave the extremes out
    bar = panel.colorbar.color_mapper
    assert bar is not m and bar.palette[0] == UNDER_COLOR and bar.palette[-1] == OVER_COLOR
    assert bar.low < m.low and bar.high > m.high
    ticks = panel.colorbar.ticker.ticks
    assert ticks and m.low <= min(ticks) and max(ticks) <= m.high  # the caps carry no ticks
    # limits over the full range clip nothing: no caps
    whole = fr.ColorScale(scale.data_min, scale.data_max, False, scale.data_min, scale.data_max, "w")
    panel.set_clim(whole)
    assert panel.clipped == (False, False)
    assert list(panel.colorbar.color_mapper.palette) == VIRIDIS


def test_units_and_long_names_label_colorbar_and_axes(flow, noisy):
    sc = RolloutScrubber(flow, noisy, field="vorticity")
    for k in ("truth", "prediction"):
        fig = sc.image[k].figure
        assert sc.image[k].colorbar.title == "relative vorticity [1/s]"
        assert (fig.xaxis[0].axis_label, fig.yaxis[0].axis_label) == ("x [m]", "y [m]")
    assert sc.curve.figure.xaxis[0].axis_label == "time [s]"
    sc.field._process_events({"value": "density"})  # no attrs: the name alone
    assert sc.image["truth"].colorbar.title == "density"
    ex = FieldExplorer(flow)
    assert ex.image.colorbar.title == "relative vorticity [1/s]"
    assert ex.image.figure.xaxis[0].axis_label == "x [m]"


def test_the_player_shows_the_time_value_with_units(flow, noisy):
    sc = RolloutScrubber(flow, noisy)
    assert sc.time_label.pane.object == "t = 0 s"
    sc.player._process_events({"value": 1})
    assert sc.time_label.pane.object == "t = 0.25 s"
    assert sc.time_label.pane in list(sc.body.select(pn.pane.HTML))
    ex = FieldExplorer(flow)
    ex.player._process_events({"value": 2})
    assert ex.time_label.pane.object == "t = 0.5 s"
    plain = flow.drop_vars("time")
    assert FieldExplorer(plain).time_label.pane.object == "step 0"


# -- spectra ---------------------------------------------------------------------------------------------------
def test_the_ratio_and_the_map_mask_shells_where_the_truth_is_at_round_off(flow, noisy):
    sp = SpectrumComparer(flow, noisy)
    assert sp.error == ""
    e_t = power_spectrum(flow.vorticity.isel(time=0)).values[1:]
    k, ratio = sp.ratio.data("ratio")
    cutoff = k[e_t < 1e-12 * e_t.max()]
    assert cutoff.size and cutoff.min() > 6  # the band ends at |k| = 6: the rest is round-off
    assert np.isnan(ratio[k >= cutoff.min()]).all()
    assert np.isfinite(ratio[k <= 6]).all() and np.nanmax(ratio) < 10
    emap = np.asarray(sp.map.source.data["image"][0])  # (k, time)
    assert np.isnan(emap[k >= cutoff.min()]).all() and np.isfinite(emap[k <= 6]).all()
    assert f"k ≥ {cutoff.min():.3g} rad/m masked" in sp.note.object and "round-off" in sp.note.object
    assert sp.map.color_mapper.nan_color != "white"


def test_spectrum_legends_sit_outside_the_data(flow, noisy):
    sp = SpectrumComparer(flow, noisy)
    from bokeh.models import Legend

    def legends(fig, side):
        return [r for r in getattr(fig, side) if isinstance(r, Legend) and r.items]

    assert legends(sp.curves.figure, "right") and not legends(sp.curves.figure, "center")
    assert legends(sp.binned.figure, "below") and not legends(sp.binned.figure, "center")
    assert not legends(sp.ratio.figure, "center") and not legends(sp.ratio.figure, "right")  # one curve: none


def test_one_k_unit_in_the_plots_and_the_table(flow, noisy):
    sp = SpectrumComparer(flow, noisy)
    labels = {sp.curves.figure.xaxis[0].axis_label, sp.ratio.figure.xaxis[0].axis_label,
              sp.map.figure.yaxis[0].axis_label}
    assert labels == {"k [rad/m]"}
    assert "k range (rad/m)" in sp.table.object
    dx = float(flow.x[1] - flow.x[0])
    from physviz.analysis.error_metrics import well_spectral_edges

    edges = np.asarray(well_spectral_edges((64, 64))) / dx  # The Well's rad/cell edges in rad/m
    assert f"| 1 | {edges[1]:.3g} - {edges[2]:.3g} |" in sp.table.object
    assert all(name.endswith("rad/m") for name in sp._bin_names)
    bare = flow.drop_vars(["x", "y"])
    assert SpectrumComparer(bare, noisy.drop_vars(["x", "y"])).curves.figure.xaxis[0].axis_label == "k [rad/cell]"
    plain = flow.assign_coords(x=flow.x.values, y=flow.y.values)  # coordinates without units
    assert SpectrumComparer(plain, noisy).curves.figure.xaxis[0].axis_label == "k [rad/unit]"


# -- width -----------------------------------------------------------------------------------------------------
def test_scrubber_panels_wrap_and_fit_a_notebook_by_default(flow, noisy):
    sc = RolloutScrubber(flow, noisy)
    row = [o for o in sc.body.objects if isinstance(o, pn.FlexBox)][0]
    assert row.flex_wrap == "wrap" and len(row.objects) == 3
    widths = [sc.image[k].figure.frame_width for k in ("truth", "prediction", "error")]
    assert sum(w + PANEL_EXTRA for w in widths) <= NOTEBOOK_WIDTH
    assert RolloutScrubber(flow, noisy, width=400).image["truth"].figure.frame_width == 400


def test_the_time_label_follows_a_player_whose_range_and_value_change_together(flow):
    from physviz.widgets.controls import TimeLabel, set_frames, time_player

    player = time_player(1)
    label = TimeLabel(player, lambda: fr.time_labels(flow))
    set_frames(player, 4, 3)  # one update of end and value, as frames arrive from a rollout
    assert label.text == label.pane.object == "t = 0.75 s"


def test_new_limits_update_the_colorbar_models_in_place(flow, noisy):
    """Limits change while frames stream in: the same mapper and ticker models change, none is replaced."""
    sc = RolloutScrubber(flow, noisy)
    panel = sc.image["error"]
    bar, ticker = panel.colorbar.color_mapper, panel.colorbar.ticker
    panel.set_clim((-2.0, 2.0))
    assert panel.colorbar.color_mapper is bar and panel.colorbar.ticker is ticker
    assert bar.low < -2.0 and bar.high > 2.0 and panel.clim == (-2.0, 2.0)
    assert ticker.ticks == [-2.0, -1.0, 0.0, 1.0, 2.0]


def test_the_log_ratio_maps_colorbar_caps_only_the_clipped_side(flow, noisy):
    sp = SpectrumComparer(flow, noisy)
    emap = np.asarray(sp.map.source.data["image"][0])
    lo, hi = sp.map.clim
    assert lo == -hi
    assert sp.map.clipped == (bool(np.nanmin(emap) < lo), bool(np.nanmax(emap) > hi))
    assert list(sp.map.color_mapper.palette) == RDBU_R


def test_appending_to_a_curve_sends_the_whole_curve_not_a_stream(monkeypatch):
    """A notebook echoes streamed points back to the kernel, which would append them twice: append never streams."""
    from physviz.widgets.base import ensure_panel
    from physviz.widgets.plots import CurvePanel

    ensure_panel()
    curve = CurvePanel(["VRMSE"], "time", "VRMSE")
    source = curve.sources["VRMSE"]
    monkeypatch.setattr(type(source), "stream", lambda *a, **k: pytest.fail("append streamed a point"))
    for t in range(4):
        curve.append("VRMSE", 0.25 * t, float(t))
    curve.append("VRMSE", 0.5, 9.0)  # a repeated step drops the points from there on
    x, y = curve.data("VRMSE")
    np.testing.assert_array_equal(x, [0.0, 0.25, 0.5])
    np.testing.assert_array_equal(y, [0.0, 1.0, 9.0])
