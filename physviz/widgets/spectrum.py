"""SpectrumComparer: E(k) of truth and prediction at the scrubbed time, their ratio, a wavenumber-time error map
and The Well's binned spectral errors over time.

Per frame it takes one FFT of the truth and one of the prediction and bins them twice: on the isotropic shells
of `physviz.analysis.power_spectrum` (physical k) and on The Well's three log bins of
`physviz.analysis.binned_spectral_nmse` (FFT of the residual = difference of the two FFTs). The per-frame
numbers are kept (a few hundred floats a frame), never the frames.

Wavenumbers are in the unit of `physviz.analysis.power_spectrum` throughout (plots, bin names and table):
radians per unit of the grid's coordinates (per cell without coordinates). Where the truth's spectrum is at
round-off (a shell below ROUNDOFF times the frame's peak, e.g. above a dealiasing cutoff) the ratio of the
two spectra means nothing: those shells are masked (NaN) in the ratio curve and the log-ratio map, and the
view says so.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import panel as pn
import xarray as xr

from physviz.analysis.error_metrics import EPS, well_spectral_edges
from physviz.analysis.fourier import Binning, binning
from physviz.analysis.inputs import spacing
from physviz.errors import SchemaError
from physviz.widgets import frames as fr
from physviz.widgets.base import View
from physviz.widgets.controls import field_select, time_player, trajectory_slider
from physviz.widgets.plots import ERROR_CMAP, CurvePanel, ImagePanel, flow

ROUNDOFF = 1e-12  # a truth shell below this fraction of the frame's peak E(k) is round-off: masked in ratios
MASK_COLOR = "#d9d9d9"  # masked shells and frames still to come in the log-ratio map


def roundoff_mask(e_truth: np.ndarray, rtol: float = ROUNDOFF) -> np.ndarray:
    """True for shells (last axis) where the truth's E(k) is below `rtol` times that frame's peak over k > 0 shells."""
    e = np.asarray(e_truth, np.float64)
    with np.errstate(invalid="ignore"):
        peak = np.nanmax(np.where(np.isfinite(e), e, -np.inf), axis=-1, keepdims=True)
        return np.isfinite(e) & (e < rtol * peak)


def k_unit(da: xr.DataArray, spatial: list[str]) -> str:
    """The unit of physical wavenumbers over `spatial`: rad per unit of the coordinates ('rad/m' from their `units`
    attr, 'rad/unit' without one), 'rad/cell' without coordinates."""
    if not all(d in da.coords for d in spatial):
        return "rad/cell"
    units = {str(da[d].attrs.get("units", "") or "").strip() for d in spatial}
    unit = units.pop() if len(units) == 1 else ""
    return f"rad/{unit}" if unit else "rad/unit"


def _bin(power: np.ndarray, b: Binning) -> np.ndarray:
    """Sum of a weighted rfftn power grid over each bin."""
    return np.bincount(b.index, weights=power.ravel(), minlength=b.n_bins + 1)[: b.n_bins]


class FrameSpectra:
    """Shell spectra of truth and prediction and The Well's binned spectral MSE/NMSE of one frame, from two FFTs."""

    def __init__(self, da: xr.DataArray, spatial: list[str]) -> None:
        shape = tuple(da.sizes[d] for d in spatial)
        self.spatial, self.shape = spatial, shape
        self.shells = binning(shape, tuple(n * spacing(da, d) for n, d in zip(shape, spatial)))
        self.well = binning(shape, tuple(float(n) for n in shape), well_spectral_edges(shape))
        self.total = float(np.prod(shape)) ** 2
        self.k = self.shells.centre
        self.unit = k_unit(da, spatial)
        steps = {round(spacing(da, d), 12) for d in spatial}
        # The Well's bins are defined in rad/cell; on a grid of one spacing dx they are k/dx in physical units.
        dx = steps.pop() if len(steps) == 1 else None
        if dx is None:
            self.unit_well = "rad/cell"
            self.well_edges = list(zip(self.well.lower, self.well.upper))
        else:
            self.unit_well = self.unit
            self.well_edges = [(lo / dx, hi / dx) for lo, hi in zip(self.well.lower, self.well.upper)]

    def __call__(self, truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(E_truth, E_pred) over shells, (binned spectral MSE, NMSE) over The Well's bins."""
        axes = tuple(range(truth.ndim))
        ft = np.fft.rfftn(truth.astype(np.float64, copy=False), axes=axes)
        fp = np.fft.rfftn(pred.astype(np.float64, copy=False), axes=axes)
        w = self.shells.weight
        pt = (ft.real**2 + ft.imag**2) * w
        pp = (fp.real**2 + fp.imag**2) * w
        fp -= ft
        pr = (fp.real**2 + fp.imag**2) * w
        e_t, e_p = _bin(pt, self.shells) / self.total, _bin(pp, self.shells) / self.total
        mse = _bin(pr, self.well) / self.total
        nmse = mse / (_bin(pt, self.well) / self.total + EPS)
        return e_t, e_p, mse, nmse


class SpectrumComparer(View):
    """Spectra of truth and prediction linked to a time player (its own, or a RolloutScrubber's)."""

    def __init__(
        self, truth: Any = None, prediction: Any = None, field: str | None = None, scrubber: Any = None,
        width: int = 380, height: int = 240,
    ) -> None:
        super().__init__()
        self._scrubber = scrubber
        self._width, self._height = width, height
        self._cache: dict[str, Any] = {}
        try:
            if scrubber is not None:
                if scrubber.error:
                    raise SchemaError(scrubber.error)
                self.player, self.field, self.trajectory = scrubber.player, scrubber.field, scrubber.trajectory
                self._build(controls=False)
                scrubber.on_change(self._on_scrubber)
            else:
                if prediction is None:
                    raise SchemaError("SpectrumComparer needs a truth and a prediction (or scrubber=...).")
                self._truth, self._pred, fields = fr.align_rollout(truth, prediction)
                first = fr.pick_field(fields, field, "the rollout")
                self.fields = fields
                self.field = field_select(fields, first)
                self.trajectory = trajectory_slider(self._truth.sizes.get("trajectory", 1), "trajectory" in self._truth.dims)
                self.player = time_player(self._truth.sizes["time"])
                self._build(controls=True)
                self.player.param.watch(lambda e: self._show(), "value")
                self.field.param.watch(lambda e: self._reset(), "value")
                self.trajectory.param.watch(lambda e: self._reset(), "value")
        except Exception as exc:
            self._fail(exc)

    # -- data -----------------------------------------------------------------------------------
    @property
    def truth(self) -> xr.Dataset:
        return self._scrubber.truth if self._scrubber is not None else self._truth

    @property
    def prediction(self) -> xr.Dataset:
        return self._scrubber.prediction if self._scrubber is not None else self._pred

    @property
    def n_frames(self) -> int:
        return self._scrubber.n_frames if self._scrubber is not None else self.truth.sizes["time"]

    def _traj(self) -> int:
        return int(self.trajectory.value) if "trajectory" in self.truth.dims else 0

    def _times(self) -> np.ndarray:
        ds = self.truth
        t = np.asarray(ds["time"].values, np.float64) if "time" in ds.coords else np.arange(ds.sizes["time"], dtype=np.float64)
        if len(t) > 2 and not np.allclose(np.diff(t), t[1] - t[0], rtol=1e-3):
            return np.arange(len(t), dtype=np.float64)  # the map needs a uniform axis
        return t

    def _time_label(self) -> str:
        """The time axis title (with the time coordinate's units), or 'frame' when the map uses frame numbers."""
        ds = self.truth
        t = np.asarray(ds["time"].values, np.float64) if "time" in ds.coords else np.arange(2.0)
        if len(t) > 2 and not np.allclose(np.diff(t), t[1] - t[0], rtol=1e-3):
            return "frame"
        return fr.axis_labels(ds, ["time"])[0] if "time" in ds.coords else "frame"

    def _frame(self, da: xr.DataArray, t: int) -> np.ndarray:
        index: dict[str, int] = {"time": t}
        if "trajectory" in da.dims:
            index["trajectory"] = self._traj()
        return np.asarray(da.isel(index).values)

    def _state(self) -> dict[str, Any]:
        """Per-frame spectra of the selected field and trajectory, filled for the frames available."""
        f = self.field.value
        key = (f, self._traj(), id(self.prediction), self.truth.sizes["time"])
        c = self._cache
        if c.get("key") != key:
            da = self.truth[f]
            spatial = fr.spatial_dims(da)
            calc = FrameSpectra(da, spatial)
            n, nk = self.truth.sizes["time"], len(calc.k)
            c.clear()
            c.update(key=key, calc=calc, done=0, e_t=np.full((n, nk), np.nan), e_p=np.full((n, nk), np.nan),
                     mse=np.full((n, 3), np.nan), nmse=np.full((n, 3), np.nan))
        ready = self.n_frames
        for t in range(c["done"], ready):
            e_t, e_p, mse, nmse = c["calc"](self._frame(self.truth[f], t), self._frame(self.prediction[f], t))
            c["e_t"][t], c["e_p"][t], c["mse"][t], c["nmse"][t] = e_t, e_p, mse, nmse
        c["done"] = max(c["done"], ready)
        return c

    def spectra(self, t: int | None = None) -> dict[str, np.ndarray]:
        """k (shell centres, k > 0), E_truth, E_prediction at frame t, their ratio (NaN where masked), the
        round-off mask, and the binned errors there."""
        c = self._state()
        t = int(self.player.value) if t is None else t
        sel = c["calc"].k > 0
        e_t, e_p = c["e_t"][t][sel], c["e_p"][t][sel]
        masked = roundoff_mask(e_t)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(~masked & (e_t > 0) & (e_p > 0), e_p / e_t, np.nan)
        return {"k": c["calc"].k[sel], "truth": e_t, "prediction": e_p, "ratio": ratio, "masked": masked,
                "binned_mse": c["mse"][t], "binned_nmse": c["nmse"][t]}

    def error_map(self) -> np.ndarray:
        """log10(E_prediction / E_truth) over (k > 0, time), NaN where a frame is not there yet or the truth is at round-off."""
        c = self._state()
        sel = c["calc"].k > 0
        e_t = c["e_t"][:, sel]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log10(c["e_p"][:, sel] / e_t)
        r[~np.isfinite(r) | roundoff_mask(e_t)] = np.nan
        return r.T

    def masked_from(self) -> float | None:
        """The lowest k > 0 masked at round-off in any frame available (None when nothing is masked)."""
        c = self._state()
        sel = c["calc"].k > 0
        n = c["done"]
        masked = roundoff_mask(c["e_t"][:n, sel]).any(axis=0) if n else np.zeros(int(sel.sum()), bool)
        return float(c["calc"].k[sel][masked][0]) if masked.any() else None

    # -- plots ----------------------------------------------------------------------------------
    def _build(self, controls: bool) -> None:
        c = self._state()
        k = c["calc"].k[c["calc"].k > 0]
        w, h = self._width, self._height
        self.k_label = f"k [{c['calc'].unit}]"
        self.curves = CurvePanel(["truth", "prediction"], self.k_label, "E(k)", "power spectrum", logx=True, logy=True,
                                 width=w, height=h, dashes=["solid", "dashed"], legend="right")
        self.ratio = CurvePanel(["ratio"], self.k_label, "E_pred / E_truth", "spectral ratio", logx=True, logy=True,
                                width=w, height=h, hline=1.0, colors=["#9467bd"], legend=None)
        times = self._times()
        dt = times[1] - times[0] if len(times) > 1 else 1.0
        dk = k[1] - k[0] if len(k) > 1 else 1.0
        emap = self._map_image()
        self._map_lim = self._limit(emap)
        self.map = ImagePanel(emap, (times[0] - dt / 2, k[0] - dk / 2, times[-1] + dt / 2, k[-1] + dk / 2),
                              self._map_scale(emap), "log10 E_pred/E_truth", (self._time_label(), self.k_label),
                              "log10 ratio", ERROR_CMAP, w)
        self.map.figure.frame_height = h
        self.map.color_mapper.nan_color = MASK_COLOR
        from bokeh.models import Span

        self.map_cursor = Span(location=float(times[0]), dimension="height", line_color="#888888", line_dash="dashed", line_width=2)
        self.map.figure.add_layout(self.map_cursor)
        names = [f"bin {i}: k in [{lo:.3g}, {hi:.3g}) {c['calc'].unit_well}" for i, (lo, hi) in enumerate(c["calc"].well_edges)]
        self._bin_names = names
        self.binned = CurvePanel(names, self._time_label(), "binned spectral NMSE", "The Well's binned spectral NMSE", logy=True,
                                 width=w, height=h, cursor=float(times[0]), colors=["#1f77b4", "#2ca02c", "#d62728"],
                                 legend="bottom")
        self.note = pn.pane.Markdown("", margin=(0, 10), styles={"color": "#555555"})
        self.table = pn.pane.Markdown("", margin=(0, 10))
        self._refresh_time_series()
        self._show()
        rows: list[Any] = [self.alert]
        if controls:
            rows += [pn.Row(self.field, self.trajectory), self.player]
        rows += [
            flow(pn.pane.Bokeh(self.curves.figure), pn.pane.Bokeh(self.ratio.figure),
                 pn.pane.Bokeh(self.map.figure), pn.pane.Bokeh(self.binned.figure)),
            self.note,
            self.table,
        ]
        self._layout = pn.Column(*rows, name="SpectrumComparer")

    def _map_scale(self, emap: np.ndarray) -> fr.ColorScale:
        """The map's color scale: symmetric limits, clipped where the map's values go beyond them."""
        lim = self._map_lim
        finite = emap[np.isfinite(emap)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-lim, lim)
        return fr.ColorScale(-lim, lim, True, lo, hi)

    @staticmethod
    def _limit(emap: np.ndarray) -> float:
        """Symmetric color range of the log ratio map, at most 3 decades (roundoff-level shells saturate)."""
        return min(fr.symmetric_limit(emap, 99.0), 3.0) if np.isfinite(emap).any() else 1.0

    def _map_image(self) -> np.ndarray:
        return np.ascontiguousarray(self.error_map(), dtype=np.float32)

    def _refresh_time_series(self) -> None:
        """The map and the binned-error curves over all frames available."""
        c = self._state()
        emap = self._map_image()
        self.map.update(emap)
        n = c["done"]
        times = self._times()
        for i, name in enumerate(self._bin_names):
            y = c["nmse"][:n, i].copy()
            y[~(y > 0)] = np.nan
            self.binned.set(name, times[:n], y)

    def _show(self) -> None:
        """Move to the player's frame: new E(k) curves, ratio, cursors, table (no plot is rebuilt)."""
        try:
            t = int(self.player.value)
            if t >= self.n_frames:
                return
            s = self.spectra(t)
            k = s["k"]
            e_t = np.where(s["truth"] > 0, s["truth"], np.nan)
            e_p = np.where(s["prediction"] > 0, s["prediction"], np.nan)
            self.curves.set("truth", k, e_t)
            self.curves.set("prediction", k, e_p)
            self.ratio.set("ratio", k, s["ratio"])
            x = float(self._times()[t])
            self.map_cursor.location = x
            self.binned.move_cursor(x)
            self._update_note()
            rows = [f"| Well bin | k range ({self._state()['calc'].unit_well}) | spectral MSE | spectral NMSE |",
                    "|---|---|---|---|"]
            for i, (lo, hi) in enumerate(self._state()["calc"].well_edges):
                rows.append(f"| {i} | {lo:.3g} - {hi:.3g} | {s['binned_mse'][i]:.4g} | {s['binned_nmse'][i]:.4g} |")
            self.table.object = "\n".join(rows)
        except Exception as exc:
            self._fail(exc)

    def _update_note(self) -> None:
        """Say which wavenumbers are masked in the ratio and the map, and why."""
        k = self.masked_from()
        self.note.object = "" if k is None else (
            f"k ≥ {k:.3g} {self._state()['calc'].unit} masked in the ratio and the map: the truth's E(k) there is "
            f"below {ROUNDOFF:.0e} × its peak (round-off)."
        )

    def _reset(self) -> None:
        """A new field, trajectory or rollout: recompute what is available and redraw the time series."""
        try:
            c = self._state()
            k = c["calc"].k[c["calc"].k > 0]
            times = self._times()
            emap = self._map_image()
            dt = times[1] - times[0] if len(times) > 1 else 1.0
            dk = k[1] - k[0] if len(k) > 1 else 1.0
            self.map.reshape(emap, (times[0] - dt / 2, k[0] - dk / 2, times[-1] + dt / 2, k[-1] + dk / 2),
                             (self._time_label(), self.k_label))
            self.map.figure.frame_height = self._height
            self._map_lim = self._limit(emap)
            self.map.set_clim(self._map_scale(emap))
            self._refresh_time_series()
            self._show()
        except Exception as exc:
            self._fail(exc)

    def _on_scrubber(self, kind: str, value: int) -> None:
        if kind == "time":
            self._show()
        elif kind == "reset":
            self._reset()
        elif kind == "arrived":
            self._refresh_time_series()
            emap = self.error_map()
            if np.isfinite(emap).any():
                self._map_lim = max(self._map_lim, self._limit(emap))
                self.map.set_clim(self._map_scale(emap))
            self._show()
