"""Plots built once from HoloViews elements, then updated in place through their Bokeh data sources."""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from physviz.widgets.base import bokeh_renderer

FIELD_CMAP = "viridis"
ERROR_CMAP = "RdBu_r"  # diverging, white at zero
CURVE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _centres(lo: float, hi: float, n: int) -> np.ndarray:
    """n cell centres spanning [lo, hi]."""
    step = (hi - lo) / n
    return lo + step * (np.arange(n) + 0.5)


class ImagePanel:
    """One image with a colorbar, fixed color limits and hover; `update` swaps the pixels in place."""

    def __init__(
        self,
        image: np.ndarray,
        bounds: tuple[float, float, float, float],
        clim: tuple[float, float],
        title: str = "",
        labels: tuple[str, str] = ("x", "y"),
        value_label: str = "value",
        cmap: str = FIELD_CMAP,
        width: int = 320,
        share: "ImagePanel | None" = None,
    ) -> None:
        import holoviews as hv

        l, b, r, t = bounds
        ny, nx = image.shape
        element = hv.Image(
            (_centres(l, r, nx), _centres(b, t, ny), image), kdims=list(labels), vdims=[value_label],
        ).opts(
            backend="bokeh", cmap=cmap, clim=tuple(float(c) for c in clim), colorbar=True, tools=["hover"],
            title=title, frame_width=width, frame_height=self._height(bounds, width), toolbar="above",
            active_tools=["wheel_zoom"], default_tools=["pan", "wheel_zoom", "box_zoom", "reset", "save"],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN placeholder (frames still to come)
            self.plot = bokeh_renderer().get_plot(element)
        self.figure = self.plot.state
        self.source = self.plot.handles["source"]
        self.color_mapper = self.plot.handles["color_mapper"]
        self.figure.background_fill_color = None
        self.figure.border_fill_color = None
        self.figure.min_border_left = 50
        if share is not None:
            self.figure.x_range = share.figure.x_range
            self.figure.y_range = share.figure.y_range

    @staticmethod
    def _height(bounds: tuple[float, float, float, float], width: int) -> int:
        l, b, r, t = bounds
        aspect = (t - b) / (r - l) if r > l else 1.0
        return int(np.clip(width * aspect, 80, 3 * width))

    @property
    def clim(self) -> tuple[float, float]:
        """The color limits now in force."""
        return float(self.color_mapper.low), float(self.color_mapper.high)

    def set_clim(self, clim: tuple[float, float]) -> None:
        """Fix new color limits (a new field or trajectory)."""
        self.color_mapper.update(low=float(clim[0]), high=float(clim[1]))

    def update(self, image: np.ndarray) -> None:
        """Show a new frame of the same grid: only the pixel column of the data source changes."""
        self.source.data.update(image=[image])

    def reshape(self, image: np.ndarray, bounds: tuple[float, float, float, float], labels: tuple[str, str]) -> None:
        """Show a frame on another grid (a new slice axis): pixels, extent, ranges and axis labels."""
        l, b, r, t = bounds
        self.source.data = {**self.source.data, "image": [image], "x": [l], "y": [b], "dw": [r - l], "dh": [t - b]}
        self.figure.x_range.update(start=l, end=r)
        self.figure.y_range.update(start=b, end=t)
        self.figure.xaxis.axis_label, self.figure.yaxis.axis_label = labels
        self.figure.frame_height = self._height(bounds, self.figure.frame_width or 320)

    def set_title(self, text: str) -> None:
        """The title over the image (field and time)."""
        self.figure.title.text = text


class CurvePanel:
    """Named curves on one figure, optional log axes, a vertical cursor and a reference line."""

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
            frame_width=width, frame_height=height, legend_position="top_right", toolbar="above",
            show_grid=True, tools=["hover"],
        )
        self.plot = bokeh_renderer().get_plot(overlay)
        self.figure = self.plot.state
        self.figure.background_fill_color = None
        self.figure.border_fill_color = None
        self.figure.legend.background_fill_alpha = 0.5
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
        """
        if name in self._placeholder:
            self.set(name, np.array([x]), np.array([y]))
            return
        xs = np.asarray(self.sources[name].data["x"], np.float64)
        if len(xs) and float(x) <= xs[-1]:
            keep = xs < float(x)
            ys = np.asarray(self.sources[name].data["y"], np.float64)[keep]
            self.set(name, np.append(xs[keep], float(x)), np.append(ys, float(y)))
            return
        self.sources[name].stream({"x": [float(x)], "y": [float(y)]})

    def move_cursor(self, x: float) -> None:
        """Put the vertical cursor at x."""
        if self.cursor is not None:
            self.cursor.location = float(x)

    def data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A curve's points as the browser has them."""
        d = self.sources[name].data
        return np.asarray(d["x"], np.float64), np.asarray(d["y"], np.float64)

