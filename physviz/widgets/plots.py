"""Plots built once from HoloViews elements, then updated in place through their Bokeh data sources."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import panel as pn

from physviz.widgets.base import bokeh_renderer
from physviz.widgets.frames import ColorScale

if TYPE_CHECKING:
    from physviz.widgets.export import Panel

AUTO_CMAP = "auto"  # chosen from the field's color scale: SIGNED_CMAP for a signed field, else PERCEPTUAL_CMAP
PERCEPTUAL_CMAP = "viridis"
SIGNED_CMAP = "RdBu_r"  # diverging, white at zero
FIELD_CMAP = AUTO_CMAP
ERROR_CMAP = "RdBu_r"
OVER_COLOR = "#ff00ff"  # values above the upper color limit (magenta, in no palette used here)
UNDER_COLOR = "#00ffff"  # values below the lower color limit (cyan)
CAP_FRACTION = 1 / 16  # length of each clipping cap on a colorbar, as a fraction of the palette's
CURVE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
FRAME_WIDTH = 300  # default frame width of an image panel, in pixels


def resolve_cmap(cmap: str, scale: ColorScale | tuple[float, float]) -> str:
    """The colormap a panel draws with: `cmap` itself, or for AUTO_CMAP the one that suits the scale."""
    if cmap != AUTO_CMAP:
        return cmap
    return SIGNED_CMAP if isinstance(scale, ColorScale) and scale.signed else PERCEPTUAL_CMAP


def palette(cmap: str, n: int = 256) -> list[str]:
    """n hex colors of a named colormap."""
    return list(_palette(cmap, n))


@lru_cache(maxsize=32)
def _palette(cmap: str, n: int) -> tuple[str, ...]:
    from holoviews.plotting.util import process_cmap

    return tuple(process_cmap(cmap, ncolors=n))


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) inside [lo, hi]."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return [float(lo)]
    raw = (hi - lo) / max(target, 1)
    mag = 10.0 ** np.floor(np.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * mag >= raw)
    first = np.ceil(lo / step - 1e-9) * step
    ticks = np.arange(first, hi + step * 1e-9, step)
    return [float(0.0 if abs(t) < step * 1e-9 else t) for t in ticks]


def flow(*objects: object, gap: str = "4px 8px") -> pn.FlexBox:
    """Panels side by side that wrap onto the next line when the notebook is narrower than they are."""
    return pn.FlexBox(*objects, flex_wrap="wrap", align_items="flex-start", gap=gap, sizing_mode="stretch_width")


NOTEBOOK_WIDTH = 1040  # output width of a JupyterLab notebook in a 1500 px window with the file browser open
PANEL_EXTRA = 150  # what an image panel needs beside its frame: y axis, colorbar with its ticks and title, gaps


def frame_width(panels: int, available: int = NOTEBOOK_WIDTH, extra: int = PANEL_EXTRA, least: int = 180,
                most: int = FRAME_WIDTH) -> int:
    """A frame width for `panels` images side by side within `available` pixels (wider layouts wrap, see `flow`)."""
    return int(np.clip(available // max(panels, 1) - extra, least, most))


def _centres(lo: float, hi: float, n: int) -> np.ndarray:
    """n cell centres spanning [lo, hi]."""
    step = (hi - lo) / n
    return lo + step * (np.arange(n) + 0.5)


class ImagePanel:
    """One image with a colorbar, fixed color limits and hover; `update` swaps the pixels in place.

    `clim` is a pair or a `frames.ColorScale`; with cmap=AUTO_CMAP a signed scale is drawn with a diverging
    colormap (limits symmetric about zero) and any other with a perceptual one. Values beyond the limits take
    OVER_COLOR / UNDER_COLOR, and the colorbar shows a cap of that color at each end where the data are clipped
    (both ends for limits given as a pair, whose data range is not known).
    """

    def __init__(
        self,
        image: np.ndarray,
        bounds: tuple[float, float, float, float],
        clim: tuple[float, float] | ColorScale,
        title: str = "",
        labels: Sequence[str] = ("x", "y"),
        value_label: str = "value",
        cmap: str = FIELD_CMAP,
        width: int = FRAME_WIDTH,
        share: "ImagePanel | None" = None,
    ) -> None:
        import holoviews as hv

        l, b, r, t = bounds
        ny, nx = image.shape
        self._cmap_option = cmap
        self.cmap = resolve_cmap(cmap, clim)
        element = hv.Image(
            (_centres(l, r, nx), _centres(b, t, ny), image), kdims=[str(v) for v in labels], vdims=[value_label],
        ).opts(
            backend="bokeh", cmap=self.cmap, clim=tuple(float(c) for c in clim), colorbar=True, tools=["hover"],
            title=title, frame_width=width, frame_height=self._height(bounds, width), toolbar="above",
            active_tools=["wheel_zoom"], default_tools=["pan", "wheel_zoom", "box_zoom", "reset", "save"],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN placeholder (frames still to come)
            self.plot = bokeh_renderer().get_plot(element)
        self.figure = self.plot.state
        self.source = self.plot.handles["source"]
        self.color_mapper = self.plot.handles["color_mapper"]
        self.colorbar = self.plot.handles["colorbar"]
        self.figure.background_fill_color = None
        self.figure.border_fill_color = None
        self.figure.min_border_left = 50
        if share is not None:
            self.figure.x_range = share.figure.x_range
            self.figure.y_range = share.figure.y_range
        self.set_clim(clim)

    @staticmethod
    def _height(bounds: tuple[float, float, float, float], width: int) -> int:
        l, b, r, t = bounds
        aspect = (t - b) / (r - l) if r > l else 1.0
        return int(np.clip(width * aspect, 80, 3 * width))

    @property
    def clim(self) -> tuple[float, float]:
        """The color limits now in force."""
        return float(self.color_mapper.low), float(self.color_mapper.high)

    @property
    def clipped(self) -> tuple[bool, bool]:
        """Whether the colorbar shows a clipping cap at its (low, high) end."""
        return self._clipped

    def set_clim(self, clim: tuple[float, float] | ColorScale) -> None:
        """Fix new color limits (a new field or trajectory); a ColorScale also sets colormap, clipping caps and label.

        The mappers and the colorbar's ticker are updated in place (no new model is sent while frames stream in).
        """
        from bokeh.models import FixedTicker, LinearColorMapper

        lo, hi = (float(c) for c in clim)
        if isinstance(clim, ColorScale):
            self.cmap = resolve_cmap(self._cmap_option, clim)
            low, high = clim.clipped_low, clim.clipped_high
            if clim.label:
                self.colorbar.title = clim.label
        else:
            low = high = True
        colors = palette(self.cmap, len(self.color_mapper.palette))
        if list(self.color_mapper.palette) != colors:
            self.color_mapper.palette = colors
        self.color_mapper.update(low=lo, high=hi, low_color=UNDER_COLOR, high_color=OVER_COLOR)
        self._clipped = (bool(low), bool(high))
        cap = max(1, round(len(colors) * CAP_FRACTION))
        step = (hi - lo) / len(colors)
        bar = [UNDER_COLOR] * cap * low + colors + [OVER_COLOR] * cap * high
        if not isinstance(self.colorbar.ticker, FixedTicker) or self.colorbar.color_mapper is self.color_mapper:
            self.colorbar.update(color_mapper=LinearColorMapper(palette=bar), ticker=FixedTicker())
        bar_mapper = self.colorbar.color_mapper
        if list(bar_mapper.palette) != bar:
            bar_mapper.palette = bar
        bar_mapper.update(low=lo - cap * step * low, high=hi + cap * step * high)
        self.colorbar.ticker.ticks = nice_ticks(lo, hi)

    def export(self, title: str, frame: np.ndarray, extent: tuple[float, float, float, float] | None = None) -> Panel:
        """This panel drawn for a file: its colormap, limits, clipping colors, colorbar and axis titles, on `frame`."""
        from physviz.widgets.export import Panel

        low, high = self._clipped
        axes = (str(self.figure.xaxis[0].axis_label), str(self.figure.yaxis[0].axis_label))
        return Panel(title, frame, self.clim, self.cmap, axes, extent, str(self.colorbar.title or ""),
                     UNDER_COLOR if low else None, OVER_COLOR if high else None)

    def set_label(self, label: str) -> None:
        """The colorbar's title (the field, its long name and units)."""
        self.colorbar.title = label

    def update(self, image: np.ndarray) -> None:
        """Show a new frame of the same grid: only the pixel column of the data source changes."""
        self.source.data.update(image=[image])

    def reshape(self, image: np.ndarray, bounds: tuple[float, float, float, float], labels: Sequence[str]) -> None:
        """Show a frame on another grid (a new slice axis): pixels, extent, ranges and axis labels."""
        l, b, r, t = bounds
        self.source.data = {**self.source.data, "image": [image], "x": [l], "y": [b], "dw": [r - l], "dh": [t - b]}
        self.figure.x_range.update(start=l, end=r)
        self.figure.y_range.update(start=b, end=t)
        self.figure.xaxis.axis_label, self.figure.yaxis.axis_label = (str(v) for v in labels)
        self.figure.frame_height = self._height(bounds, self.figure.frame_width or FRAME_WIDTH)

    def set_title(self, text: str) -> None:
        """The title over the image (field and time)."""
        self.figure.title.text = text


class CurvePanel:
    """Named curves on one figure, optional log axes, a vertical cursor and a reference line.

    `legend` is HoloViews' legend position: inside the frame ("top_right", ...), outside it ("right", "bottom"),
    or None for no legend.
    """

    def __init__(
        self,
        names: Sequence[str],
        xlabel: str,
        ylabel: str,
        title: str = "",
        logx: bool = False,
        logy: bool = False,
        width: int = 420,
        height: int = 260,
        cursor: float | None = None,
        hline: float | None = None,
        colors: Sequence[str] = CURVE_COLORS,
        dashes: Sequence[str] | None = None,
        legend: str | None = "top_right",
    ) -> None:
        import holoviews as hv
        from bokeh.models import DataRange1d, Span

        curves = []
        for i, name in enumerate(names):
            c = hv.Curve(([1.0, 10.0], [1.0, 10.0]), kdims=["x"], vdims=["y"], label=name).opts(
                backend="bokeh", color=colors[i % len(colors)], line_width=2,
                line_dash=(dashes[i] if dashes else "solid"),
            )
            curves.append(c)
        overlay = hv.Overlay(curves).opts(
            backend="bokeh", title=title, xlabel=xlabel, ylabel=ylabel, logx=logx, logy=logy,
            frame_width=width, frame_height=height, legend_position=legend or "top_right", show_legend=legend is not None,
            toolbar="above", show_grid=True, tools=["hover"],
        )
        self.plot = bokeh_renderer().get_plot(overlay)
        self.figure = self.plot.state
        self.figure.background_fill_color = None
        self.figure.border_fill_color = None
        outside = legend in ("right", "left", "top", "bottom")
        for item in self.figure.legend:
            item.background_fill_alpha = 0.0 if outside else 0.5
            if outside:
                item.border_line_alpha = 0.0
            if legend in ("top", "bottom"):
                item.update(orientation="vertical", margin=4, padding=2)
        # ranges follow the data as it changes (HoloViews fixes them from the first data)
        self.figure.x_range = DataRange1d(range_padding=0.02)
        self.figure.y_range = DataRange1d(range_padding=0.05)
        subplots = list(self.plot.subplots.values())
        self.sources = {name: sp.handles["source"] for name, sp in zip(names, subplots)}
        # curves still holding HoloViews' construction points (replaced, not extended, by the first data)
        self._placeholder = set(names)
        self.cursor = None
        if cursor is not None:
            self.cursor = Span(location=float(cursor), dimension="height", line_color="#888888", line_dash="dashed", line_width=2)
            self.figure.add_layout(self.cursor)
        if hline is not None:
            self.figure.add_layout(Span(location=float(hline), dimension="width", line_color="#888888", line_width=1))

    def set(self, name: str, x: np.ndarray, y: np.ndarray) -> None:
        """Replace one curve's points."""
        self._placeholder.discard(name)
        self.sources[name].data = {"x": np.asarray(x, np.float64), "y": np.asarray(y, np.float64)}

    def append(self, name: str, x: float, y: float) -> None:
        """Add one point to a curve (frames arriving from a rollout, metrics from a run).

        A point at or before the curve's last x (a resumed run repeats its steps from the
        checkpoint) first drops the points from that x on, so the line never doubles back.
        The whole curve is sent, never a streamed point: in a notebook the browser sends the changes it
        applied back to the kernel, and a streamed point sent back would be appended there a second time.
        """
        if name in self._placeholder:
            self.set(name, np.array([x]), np.array([y]))
            return
        xs, ys = self.data(name)
        if len(xs) and float(x) <= xs[-1]:
            keep = xs < float(x)
            xs, ys = xs[keep], ys[keep]
        self.set(name, np.append(xs, float(x)), np.append(ys, float(y)))

    def move_cursor(self, x: float) -> None:
        """Put the vertical cursor at x."""
        if self.cursor is not None:
            self.cursor.location = float(x)

    def data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A curve's points as the browser has them."""
        d = self.sources[name].data
        return np.asarray(d["x"], np.float64), np.asarray(d["y"], np.float64)

