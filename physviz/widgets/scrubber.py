"""RolloutScrubber: truth, prediction and error of a rollout on one time player, with VRMSE over time.

Given a prediction, it compares the two datasets on their common time steps. Given a model
(`RolloutScrubber.from_model`), a `RolloutRunner` rolls it out in a worker thread into one preallocated
array per field (frames are never held twice), and a Panel periodic callback on the UI side shows frames
as they arrive: progress bar, player range, VRMSE curve, error color limits. The scrubber only draws.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import panel as pn
import xarray as xr

from physviz.analysis.error_metrics import vrmse_array
from physviz.errors import ParameterError, SchemaError
from physviz.widgets import frames as fr
from physviz.widgets.base import View
from physviz.widgets.controls import (SliceControls, TimeLabel, button, field_select, set_frames, time_player,
                                      trajectory_slider)
from physviz.widgets.plots import ERROR_CMAP, FIELD_CMAP, CurvePanel, ImagePanel, flow, frame_width
from physviz.widgets.rollout_runner import RolloutRunner

PANELS = ("truth", "prediction", "error")


class RolloutScrubber(View):
    """Truth, prediction and error panels on one player; same color limits for truth and prediction."""

    def __init__(
        self, truth: Any, prediction: Any = None, field: str | None = None, cmap: str = FIELD_CMAP,
        error_cmap: str = ERROR_CMAP, width: int | None = None, max_pixels: int = fr.MAX_PIXELS,
        trajectory: int | None = None, _model: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._cmap, self._error_cmap, self._max_pixels = cmap, error_cmap, max_pixels
        self._width = frame_width(len(PANELS)) if width is None else width  # three panels side by side fit a notebook
        self._listeners: list[Callable[[str, int], None]] = []
        self._clims: dict[str, tuple[float, float]] = {}
        self._elims: dict[tuple[str, int], float] = {}
        self._vrmse: dict[tuple[str, int], np.ndarray] = {}
        self._model = _model
        self._runner: RolloutRunner | None = None
        self._shown = 0
        self._callback: Any = None
        self.run_controls: pn.Column | None = None  # start, steps, run/stop, progress: needs a Python kernel
        self.body: pn.Column | None = None  # selectors, player, images, curve: what a saved HTML file shows
        self.image: dict[str, ImagePanel] = {}
        try:
            if _model is None:
                if prediction is None:
                    raise SchemaError("RolloutScrubber needs a prediction, or use RolloutScrubber.from_model(model, truth).")
                t, p, fields = fr.align_rollout(*self._one_trajectory(truth, prediction, trajectory))
                self._setup(t, p, fields, field, n_ready=t.sizes["time"])
            else:
                self._setup_model(truth, field)
        except Exception as exc:
            self._fail(exc)

    # -- construction -------------------------------------------------------------------------
    @staticmethod
    def _one_trajectory(truth: Any, prediction: Any, trajectory: int | None) -> tuple[Any, Any]:
        """A prediction of one trajectory faces one trajectory of the truth: `trajectory`, else the one its
        rollout recorded (attrs["rollout"]["trajectory"]), else the first."""
        truth, prediction = fr.as_dataset(truth, "truth"), fr.as_dataset(prediction, "prediction")
        if "trajectory" not in truth.dims or "trajectory" in prediction.dims:
            return truth, prediction
        if trajectory is None:
            trajectory = (prediction.attrs.get("rollout") or {}).get("trajectory", 0)
        n = truth.sizes["trajectory"]
        if not 0 <= int(trajectory) < n:
            raise ParameterError(f"trajectory={trajectory} is out of range: the truth has {n} trajectories (0..{n - 1}).")
        return truth.isel(trajectory=int(trajectory)), prediction

    @classmethod
    def from_model(
        cls, model: Any, truth: Any, steps: int | None = None, start: int | None = None, context: int | None = None,
        fields: Sequence[str] | None = None, trajectory: int = 0, run: bool = True, background: bool = True,
        field_map: Mapping[str, str] | None = None, **kw: Any,
    ) -> "RolloutScrubber":
        """A scrubber that rolls `model` out from `truth` (a progress bar, frames shown as they arrive).

        field_map ({dataset name: model name}) maps field names the model does not know onto its own.
        """
        view = cls(truth, None, _model={
            "model": model, "steps": steps, "start": start, "context": context, "fields": fields, "trajectory": trajectory,
            "field_map": field_map,
        }, **kw)
        if run and not view.error:
            view.run(background=background)
        return view

    def _setup_model(self, truth: Any, field: str | None) -> None:
        """Controls for the rollout (start frame, steps, run) around an empty prediction."""
        m = self._model
        assert m is not None
        truth = fr.as_dataset(truth, "truth")
        fr.check_fields(truth, "truth")
        runner = RolloutRunner(m["model"], truth, m["steps"], m["start"], m["context"], m["fields"], int(m["trajectory"]),
                               field_map=m["field_map"])
        self._runner = runner
        n_time = runner.source.sizes.get("time", 0)
        self.start_input = pn.widgets.IntInput(
            label="start frame", value=runner.plan.start, start=1, end=max(n_time - 1, 1), width=110,
        )
        self.steps_input = pn.widgets.IntInput(
            label="steps", value=runner.plan.steps, start=1, end=max(n_time - 1, 1), width=90,
        )
        self.run_button = button("Run rollout", "primary", width=120)
        self.stop_button = button("Stop", "warning", width=70, disabled=True)
        self.progress = pn.indicators.Progress(value=0, max=100, width=300, bar_color="info")
        self.status = pn.pane.Markdown("", margin=(0, 10))
        self.run_button.on_click(lambda e: self.run())
        self.stop_button.on_click(lambda e: self.stop())
        self._setup(runner.truth, runner.prediction, list(runner.plan.fields), field, n_ready=0)

    def _setup(self, truth: xr.Dataset, pred: xr.Dataset, fields: list[str], field: str | None, n_ready: int) -> None:
        self.truth, self.prediction, self.fields = truth, pred, fields
        self._ready = n_ready
        first = fr.pick_field(fields, field, "the rollout")
        self.spatial = fr.spatial_dims(truth)
        self.labels = fr.time_labels(truth)
        self.times = self._time_axis(truth)
        self.field = field_select(fields, first)
        n_traj = truth.sizes.get("trajectory", 1)
        self.trajectory = trajectory_slider(n_traj, "trajectory" in truth.dims)
        self.player = time_player(truth.sizes["time"])
        if n_ready < truth.sizes["time"]:
            set_frames(self.player, max(n_ready, 1), 0)
        self.slices = SliceControls(self.spatial, dict(truth.sizes))
        self.stats = pn.pane.Markdown("", margin=(0, 10))
        frames = self._read_all()
        self._factor = fr.block_factor(frames["truth"].shape, self._max_pixels)
        da = truth[first]
        b = fr.bounds(da, self.slices.current.axes, frames["truth"].shape, self._factor)
        clim = self._clim(first)
        lim = self._elim(first)
        labels = fr.axis_labels(truth, self.slices.current.axes)
        self.image["truth"] = ImagePanel(fr.to_image(frames["truth"], self._factor), b, clim, "truth", labels, first,
                                         self._cmap, self._width)
        self.image["prediction"] = ImagePanel(fr.to_image(frames["prediction"], self._factor), b, clim, "prediction", labels,
                                              first, self._cmap, self._width, share=self.image["truth"])
        self.image["error"] = ImagePanel(fr.to_image(frames["error"], self._factor), b, (-lim, lim), "error (prediction - truth)",
                                         labels, f"{first} error", self._error_cmap, self._width, share=self.image["truth"])
        self.curve = CurvePanel(["VRMSE"], fr.axis_labels(truth, ["time"])[0], "VRMSE", title="VRMSE over time",
                                width=380, height=200,
                                cursor=float(self.times[0]))
        self._update_curve()
        self._update_text(frames)
        self.player.param.watch(lambda e: self._show(), "value")
        self.trajectory.param.watch(lambda e: self._reset_view(), "value")
        self.field.param.watch(lambda e: self._reset_view(), "value")
        self.slices.axis.param.watch(self._on_axis, "value")
        self.slices.index.param.watch(lambda e: self._show(), "value")
        controls = [self.field, self.trajectory, *self.slices.widgets]
        if self._model is not None:
            self.run_controls = pn.Column(
                pn.Row(self.start_input, self.steps_input, self.run_button, self.stop_button),
                pn.Row(self.progress, self.status),
            )
        self.time_label = TimeLabel(self.player, lambda: self.labels)
        self.body = pn.Column(
            pn.Row(*controls), pn.Row(self.player, self.time_label.pane),
            flow(*(pn.pane.Bokeh(self.image[k].figure) for k in PANELS)),
            flow(pn.pane.Bokeh(self.curve.figure), self.stats),
        )
        parts = [self.alert, self.body] if self.run_controls is None else [self.alert, self.run_controls, self.body]
        self._layout = pn.Column(*parts, name="RolloutScrubber")

    @staticmethod
    def _time_axis(ds: xr.Dataset) -> np.ndarray:
        if "time" in ds.coords:
            return np.asarray(ds["time"].values, np.float64)
        return np.arange(ds.sizes["time"], dtype=np.float64)

    # -- data ---------------------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        """Frames that can be shown now (all of them, or those a running rollout has produced)."""
        return self._ready

    def _traj(self) -> int:
        return int(self.trajectory.value) if "trajectory" in self.truth.dims else 0

    def _read_all(self, t: int | None = None) -> dict[str, np.ndarray]:
        """Truth, prediction and error of the selected frame (full resolution, [horizontal, vertical])."""
        f, j, sl = self.field.value, self._traj(), self.slices.current
        t = int(self.player.value) if t is None else t
        truth = fr.read_frame(self.truth[f], t, j, sl)
        pred = fr.read_frame(self.prediction[f], t, j, sl)
        return {"truth": truth, "prediction": pred, "error": pred - truth}

    def _clim(self, f: str) -> tuple[float, float]:
        """Color limits shared by truth and prediction: robust limits of a sample of the truth's frames."""
        if f not in self._clims:
            self._clims[f] = fr.field_scale(self.truth[f])
        return self._clims[f]

    def _elim(self, f: str) -> float:
        """Half-width of the symmetric error range, from a sample of the frames available."""
        key = (f, self._traj())
        if key not in self._elims:
            n = max(self._ready, 0)
            if n == 0:
                self._elims[key] = max(abs(v) for v in self._clim(f)) * 0.1 or 1.0
            else:
                t = self.truth[f].isel(time=slice(0, n))
                p = self.prediction[f].isel(time=slice(0, n))
                if "trajectory" in t.dims:
                    t, p = t.isel(trajectory=key[1]), p.isel(trajectory=key[1])
                self._elims[key] = fr.symmetric_limit(fr.sample_values(p) - fr.sample_values(t))
        return self._elims[key]

    def vrmse(self, field: str | None = None, trajectory: int | None = None) -> np.ndarray:
        """VRMSE of each available frame (The Well's definition, over the whole spatial domain)."""
        f = field or self.field.value
        j = self._traj() if trajectory is None else trajectory
        key = (f, j)
        have = self._vrmse.get(key, np.array([]))
        if len(have) < self._ready:
            new = []
            for t in range(len(have), self._ready):
                tt = self._full(self.truth[f], t, j)
                pp = self._full(self.prediction[f], t, j)
                new.append(float(vrmse_array(pp, tt, pp.ndim)))
            have = np.concatenate([have, np.asarray(new)])
            self._vrmse[key] = have
        return have[: self._ready]

    @staticmethod
    def _full(da: xr.DataArray, t: int, j: int) -> np.ndarray:
        """One whole frame (all spatial dims) of a field."""
        index: dict[str, int] = {"time": t}
        if "trajectory" in da.dims:
            index["trajectory"] = j
        return np.asarray(da.isel(index).values)

    # -- updates --------------------------------------------------------------------------------
    def _show(self) -> None:
        """Swap the selected frame into the three image sources and move the cursor (no plot is rebuilt)."""
        try:
            if self._ready == 0:
                return
            frames = self._read_all()
            for k in PANELS:
                self.image[k].update(fr.to_image(frames[k], self._factor))
            self.curve.move_cursor(float(self.times[int(self.player.value)]))
            self._update_text(frames)
            if self.error and (self._runner is None or self._runner.error is None):
                self._clear_error()
            for listener in self._listeners:
                listener("time", int(self.player.value))
        except Exception as exc:
            self._fail(exc)

    def _update_text(self, frames: dict[str, np.ndarray]) -> None:
        t = int(self.player.value)
        label = self.labels[t] if t < len(self.labels) else ""
        sl = self.slices.current
        where = f" · {sl.axis} = {sl.index}" if sl.axis else ""
        self.image["truth"].set_title(f"truth · {self.field.value} · {label}{where}")
        self.image["prediction"].set_title(f"prediction · {label}")
        self.image["error"].set_title(f"error (prediction - truth) · {label}")
        if self._ready == 0:
            self.stats.object = "waiting for the first predicted frame ..."
            return
        v = self.vrmse()
        lines = [fr.frame_stats(frames[k]).markdown(k) for k in PANELS]
        lines.append(f"**VRMSE** {v[t]:.4g}" if t < len(v) else "")
        self.stats.object = "\n\n".join(lines)

    def _update_curve(self) -> None:
        v = self.vrmse()
        self.curve.set("VRMSE", self.times[: len(v)], v)

    def _reset_view(self) -> None:
        """A new field or trajectory: new fixed color limits, VRMSE curve and frames."""
        f = self.field.value
        self.image["truth"].set_clim(self._clim(f))
        self.image["prediction"].set_clim(self._clim(f))
        lim = self._elim(f)
        self.image["error"].set_clim((-lim, lim))
        self._update_curve()
        self._show()
        for listener in self._listeners:
            listener("reset", int(self.player.value))

    def _on_axis(self, event: Any) -> None:
        self.slices.on_axis(event.new)
        frames = self._read_all()
        self._factor = fr.block_factor(frames["truth"].shape, self._max_pixels)
        b = fr.bounds(self.truth[self.field.value], self.slices.current.axes, frames["truth"].shape, self._factor)
        for k in PANELS:
            self.image[k].reshape(fr.to_image(frames[k], self._factor), b, fr.axis_labels(self.truth, self.slices.current.axes))
        self._show()

    def on_change(self, callback: Callable[[str, int], None]) -> None:
        """Call `callback(kind, time_index)` on 'time' (player moved), 'reset' (field/trajectory) and 'arrived'."""
        self._listeners.append(callback)

    # -- the rollout, for a scrubber made from a model ---------------------------------------------
    def run(self, background: bool = True, period_ms: int = 200) -> None:
        """Roll the model out from the start frame for the chosen steps; frames appear as they arrive.

        In the background a worker thread computes the frames and a Panel periodic callback (every
        `period_ms`) draws those that arrived; otherwise each frame is drawn as soon as it is computed.
        """
        if self._model is None:
            raise ParameterError("this scrubber shows a given prediction; make one with RolloutScrubber.from_model to run.")
        if self._runner is None:
            return  # the view could not be built; its message says why
        self.stop()
        try:
            m = self._model
            runner = RolloutRunner(m["model"], self._runner.source, int(self.steps_input.value),
                                   int(self.start_input.value), m["context"], m["fields"], field_map=m["field_map"])
        except Exception as exc:
            self._fail(exc)
            return
        self._runner = runner
        self.truth, self.prediction = runner.truth, runner.prediction
        self.labels, self.times = fr.time_labels(runner.truth), self._time_axis(runner.truth)
        self._ready = self._shown = 0
        self._vrmse.clear()
        self._elims.clear()
        self._clear_error()
        self.progress.param.update(value=0, max=runner.steps, bar_color="info")
        self.status.object = f"rolling out {runner.steps} steps from frame {runner.plan.start} ..."
        set_frames(self.player, 1, 0)
        self._update_curve()
        for listener in self._listeners:
            listener("reset", 0)
        self.run_button.disabled, self.stop_button.disabled = True, False
        if background:
            runner.start()
            self._callback = pn.state.add_periodic_callback(self._poll, period=period_ms)
        else:
            runner.run(on_frame=lambda n: self._poll())
            self._poll()

    @property
    def runner(self) -> RolloutRunner | None:
        """The rollout this scrubber runs or ran (None for a scrubber of a given prediction)."""
        return self._runner

    @property
    def running(self) -> bool:
        """Whether a rollout worker is still producing frames."""
        return self._runner is not None and self._runner.running

    def wait(self, timeout: float | None = None) -> None:
        """Block until the rollout worker ends, then show what it produced."""
        if self._runner is not None:
            self._runner.wait(timeout)
        self._poll()

    def stop(self) -> None:
        """Stop a running rollout after its current step."""
        if self._runner is not None:
            self._runner.stop()
        self._stop_callback()
        if self._runner is not None and self._runner.state().started and self.image:
            self._poll()

    def _stop_callback(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def _poll(self) -> None:
        """UI side: show frames that arrived since the last call (progress, player, curve, error limits)."""
        if self._runner is None or not self.image:
            return
        state = self._runner.state()  # frames ready and whether the worker ended, read together
        n = state.ready
        follow = int(self.player.value) >= self._ready - 1
        if n > self._shown:
            old = self._ready
            self._ready = n
            f = self.field.value
            self._elims.pop((f, self._traj()), None)
            lim = max(self._elim(f), abs(self.image["error"].clim[1]) if old else 0.0)
            self._elims[(f, self._traj())] = lim
            self.image["error"].set_clim((-lim, lim))
            # The whole curve, never streamed points: a notebook page sends streamed points back to the kernel,
            # which appends them again, and a held set ahead of later streams repeats them in the page.
            self._update_curve()
            self._shown = n
            self.progress.value = n
            set_frames(self.player, n, n - 1 if follow else None)
            self._show()
            for listener in self._listeners:
                listener("arrived", n)
        if state.finished:
            self._stop_callback()
            self.run_button.disabled, self.stop_button.disabled = False, True
            if state.error is not None:
                self.progress.bar_color = "danger"
                self.status.object = f"rollout stopped at step {n}."
                self._fail(state.error)
            elif state.complete:
                self.progress.bar_color = "success"
                self.status.object = f"rollout done: {n} steps."
            else:
                self.status.object = f"rollout stopped after {n} of {state.steps} steps."

    # -- export ---------------------------------------------------------------------------------
    def _panels(self, frames: dict[str, np.ndarray]) -> list[Any]:
        f = self.field.value
        l, b, r, t = fr.bounds(self.truth[f], self.slices.current.axes, frames["truth"].shape, 1)
        ext = (l, r, b, t)
        return [
            self.image["truth"].export(f"truth · {f}", frames["truth"], ext),
            self.image["prediction"].export("prediction", frames["prediction"], ext),
            self.image["error"].export("error (prediction - truth)", frames["error"], ext),
        ]

    def _label(self, t: int) -> str:
        return f"{self.field.value} · {self.labels[t]} · frame {t + 1}/{self._ready}"

    def save_png(self, path: str | Path, dpi: int = 100) -> Path:
        """The current frame's truth, prediction and error as a PNG (same color limits as the view)."""
        from physviz.widgets.export import render_png

        t = int(self.player.value)
        return render_png(self._panels(self._read_all(t)), self._label(t), path, dpi=dpi)

    def save_animation(self, path: str | Path, fps: float = 5.0, dpi: int = 80, frames: Sequence[int] | None = None) -> Path:
        """The rollout comparison as a GIF or MP4 (by the file's suffix), fixed color limits, a label per frame."""
        from physviz.widgets.export import FrameRenderer, write_animation

        if self._ready == 0:
            raise SchemaError("the rollout is empty: there are no predicted frames to write.")
        order = list(range(self._ready)) if frames is None else [int(t) for t in frames]
        renderer = FrameRenderer(self._panels(self._read_all(order[0])), self._label(order[0]), dpi=dpi)
        self.last_renderer = renderer

        def each() -> Any:
            for t in order:
                fs = self._read_all(t)
                yield [fs[k] for k in PANELS], self._label(t)

        out, _ = write_animation(path, renderer, each(), fps=fps)
        renderer.close()
        return out

    def save_gif(self, path: str | Path, **kw: Any) -> Path:
        """The rollout comparison as an animated GIF."""
        return self.save_animation(path, **kw)

    def save_mp4(self, path: str | Path, **kw: Any) -> Path:
        """The rollout comparison as an H.264 MP4 (needs imageio-ffmpeg)."""
        return self.save_animation(path, **kw)

    def _html_object(self, embed: bool) -> Any:
        if self.run_controls is None or self.body is None:
            return self.__panel__()
        return self.body  # no run controls in a file without a kernel

    def spectrum(self, **kw: Any) -> Any:
        """A SpectrumComparer linked to this scrubber's player, field and trajectory."""
        from physviz.widgets.spectrum import SpectrumComparer

        return SpectrumComparer(scrubber=self, **kw)
