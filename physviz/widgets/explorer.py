"""FieldExplorer: trajectory, field and time of a dataset in one image with fixed, robust color limits."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import panel as pn

from physviz.widgets import frames as fr
from physviz.widgets.base import View
from physviz.widgets.controls import SliceControls, TimeLabel, field_select, time_player, trajectory_slider
from physviz.widgets.plots import FIELD_CMAP, ImagePanel


class FieldExplorer(View):
    """Choose trajectory, field and time (a player); 3D fields are sliced along a chosen axis."""

    def __init__(
        self, ds: Any, field: str | None = None, cmap: str = FIELD_CMAP, width: int = 420,
        max_pixels: int = fr.MAX_PIXELS, clim: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self._cmap, self._width, self._max_pixels, self._user_clim = cmap, width, max_pixels, clim
        self._clims: dict[str, tuple[float, float]] = {}
        try:
            self.ds = fr.as_dataset(ds, "the dataset")
            self.fields = fr.check_fields(self.ds, "the dataset")
            first = fr.pick_field(self.fields, field, "the dataset")
            self._build(first)
        except Exception as exc:  # shown in the view, not raised
            self._fail(exc)

    # -- construction -------------------------------------------------------------------------
    def _build(self, field: str) -> None:
        ds = self.ds
        self.spatial = fr.spatial_dims(ds)
        n_time = ds.sizes.get("time", 1)
        n_traj = ds.sizes.get("trajectory", 1)
        self.labels = fr.time_labels(ds)
        self.field = field_select(self.fields, field)
        self.trajectory = trajectory_slider(n_traj, "trajectory" in ds.dims)
        self.player = time_player(n_time)
        self.slices = SliceControls(self.spatial, dict(ds.sizes))
        self.axis, self.index = self.slices.axis, self.slices.index
        self.stats = pn.pane.Markdown("", margin=(0, 10))
        frame = self._read()
        self._factor = fr.block_factor(frame.shape, self._max_pixels)
        da = self.ds[field]
        self.image = ImagePanel(
            fr.to_image(frame, self._factor), fr.bounds(da, self._slice.axes, frame.shape, self._factor),
            self._clim(field), title=self._title(), labels=fr.axis_labels(ds, self._slice.axes), value_label=field,
            cmap=self._cmap,
            width=self._width,
        )
        self._update_stats(frame)
        self.player.param.watch(lambda e: self._show(), "value")
        self.trajectory.param.watch(lambda e: self._show(), "value")
        self.field.param.watch(self._on_field, "value")
        self.axis.param.watch(self._on_axis, "value")
        self.index.param.watch(lambda e: self._show(), "value")
        controls = pn.Row(self.field, self.trajectory, self.axis, self.index)
        self.time_label = TimeLabel(self.player, lambda: self.labels)
        self._layout = pn.Column(
            self.alert, controls, pn.Row(self.player, self.time_label.pane), pn.pane.Bokeh(self.image.figure), self.stats,
            name="FieldExplorer",
        )

    @property
    def _slice(self) -> fr.Slice:
        return self.slices.current

    def _clim(self, field: str) -> tuple[float, float]:
        """Robust color limits of a field over a sample of all its frames, computed once per field."""
        if self._user_clim is not None:
            return self._user_clim
        if field not in self._clims:
            self._clims[field] = fr.field_scale(self.ds[field])
        return self._clims[field]

    def _read(self) -> np.ndarray:
        da = self.ds[self.field.value]
        return fr.read_frame(da, int(self.player.value), int(self.trajectory.value), self._slice)

    def _title(self) -> str:
        t = int(self.player.value)
        when = f" · {self.labels[t]}" if "time" in self.ds[self.field.value].dims else " · constant in time"
        where = f" · {self._slice.axis} = {self._slice.index}" if self._slice.axis else ""
        return f"{self.field.value}{when}{where}"

    def _update_stats(self, frame: np.ndarray) -> None:
        self.last_stats = fr.frame_stats(frame)
        self.stats.object = self.last_stats.markdown(self.field.value)

    # -- updates --------------------------------------------------------------------------------
    def _show(self) -> None:
        """Read the selected frame and swap it into the image source (no plot is rebuilt)."""
        try:
            frame = self._read()
            self.image.update(fr.to_image(frame, self._factor))
            self.image.set_title(self._title())
            self._update_stats(frame)
            if self.error:
                self._clear_error()
        except Exception as exc:
            self._fail(exc)

    def _on_field(self, event: Any) -> None:
        self.image.set_clim(self._clim(event.new))
        self._show()

    def _on_axis(self, event: Any) -> None:
        self.slices.on_axis(event.new)
        frame = self._read()
        self._factor = fr.block_factor(frame.shape, self._max_pixels)
        da = self.ds[self.field.value]
        self.image.reshape(
            fr.to_image(frame, self._factor), fr.bounds(da, self._slice.axes, frame.shape, self._factor),
            fr.axis_labels(self.ds, self._slice.axes),
        )
        self._show()

    # -- export ---------------------------------------------------------------------------------
    def save_png(self, path: str | Path, dpi: int = 100) -> Path:
        """The current frame as a PNG (matplotlib, same color limits, colormap and title)."""
        from physviz.widgets.export import render_png

        frame = self._read()
        l, b, r, t = fr.bounds(self.ds[self.field.value], self._slice.axes, frame.shape, 1)
        return render_png([self.image.export(self.field.value, frame, (l, r, b, t))], self._title(), path, dpi=dpi)
