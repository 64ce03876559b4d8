"""RolloutScrubber: truth, prediction and error of a rollout on one time player, with VRMSE over time.

Given a prediction, it compares the two datasets on their common time steps. Given a model
(`RolloutScrubber.from_model`), it runs the rollout in a worker thread with `iter_rollout`, writes each
frame into one preallocated array per field (frames are never held twice), and a periodic callback on the
UI side shows frames as they arrive: progress bar, player range, VRMSE curve, error color limits.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import panel as pn
import xarray as xr

from physviz.errors import ParameterError, SchemaError
from physviz.widgets import frames as fr
from physviz.widgets.base import View
from physviz.widgets.controls import SliceControls, button, field_select, set_frames, time_player, trajectory_slider
from physviz.widgets.plots import ERROR_CMAP, FIELD_CMAP, CurvePanel, ImagePanel

PANELS = ("truth", "prediction", "error")


class RolloutScrubber(View):
    """Truth, prediction and error panels on one player; same color limits for truth and prediction."""

    def __init__(
        self, truth: Any, prediction: Any = None, field: str | None = None, cmap: str = FIELD_CMAP,
        error_cmap: str = ERROR_CMAP, width: int = 300, max_pixels: int = fr.MAX_PIXELS,
        _model: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._cmap, self._error_cmap, self._width, self._max_pixels = cmap, error_cmap, width, max_pixels
        self._listeners: list[Callable[[str, int], None]] = []
        self._clims: dict[str, tuple[float, float]] = {}
        self._elims: dict[tuple[str, int], float] = {}
        self._vrmse: dict[tuple[str, int], np.ndarray] = {}
        self._model = _model
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._arrived = 0
        self._shown = 0
        self._worker_error: BaseException | None = None
        self._callback: Any = None
        self._working = False
        self.image: dict[str, ImagePanel] = {}
        try:
            if _model is None:
                if prediction is None:
                    raise SchemaError("RolloutScrubber needs a prediction, or use RolloutScrubber.from_model(model, truth).")
                t, p, fields = fr.align_rollout(truth, prediction)
                self._setup(t, p, fields, field, n_ready=t.sizes["time"])
            else:
                self._setup_model(truth, field)
        except Exception as exc:
            self._fail(exc)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_model(
        cls, model: Any, truth: Any, steps: int | None = None, start: int | None = None, context: int | None = None,
        fields: Sequence[str] | None = None, trajectory: int = 0, run: bool = True, background: bool = True, **kw: Any,
    ) -> "RolloutScrubber":
        """A scrubber that rolls `model` out from `truth` (a progress bar, frames shown as they arrive)."""
        view = cls(truth, None, _model={
            "model": model, "steps": steps, "start": start, "context": context, "fields": fields, "trajectory": trajectory,
        }, **kw)
        if run and not view.error:
            view.run(background=background)
        return view

    def _setup_model(self, truth: Any, field: str | None) -> None:
        """Controls for the rollout (start frame, steps, run) around an empty prediction."""
        from physviz.model.autoregressive import plan_rollout

        m = self._model
        assert m is not None
        truth = fr.as_dataset(truth, "truth")
        fr.check_fields(truth, "truth")
        if "trajectory" in truth.dims:
            truth = truth.isel(trajectory=int(m["trajectory"]))
        self._source = truth
        n_time = truth.sizes.get("time", 0)
        cfg = getattr(m["model"], "config", None)
        context = m["context"] or int(getattr(cfg, "context_frames", 16) or 16)
        start = m["start"] if m["start"] is not None else min(context, max(n_time - 1, 1))
        steps = m["steps"] if m["steps"] is not None else max(n_time - start, 1)
        self.start_input = pn.widgets.IntInput(label="start frame", value=int(start), start=1, end=max(n_time - 1, 1), width=110)
        self.steps_input = pn.widgets.IntInput(label="steps", value=int(steps), start=1, end=max(n_time - 1, 1), width=90)
        self.run_button = button("Run rollout", "primary", width=120)
        self.stop_button = button("Stop", "warning", width=70, disabled=True)
        self.progress = pn.indicators.Progress(value=0, max=100, width=300, bar_color="info")
        self.status = pn.pane.Markdown("", margin=(0, 10))
        self.run_button.on_click(lambda e: self.run())
        self.stop_button.on_click(lambda e: self.stop())
        plan = plan_rollout(m["model"], truth, int(steps), m["context"], int(start), m["fields"])
        t, p = self._allocate(plan)
        self._setup(t, p, list(plan.fields), field, n_ready=0)

    def _allocate(self, plan: Any) -> tuple[xr.Dataset, xr.Dataset]:
        """The truth frames a plan predicts, and a prediction Dataset over one preallocated array per field."""
        truth = self._source
        n_time = truth.sizes["time"]
        steps = min(plan.steps, n_time - plan.start)
        if steps < 1:
            raise ParameterError(
                f"start={plan.start} leaves no truth frame to compare with (the truth has {n_time} time steps)."
            )
        t = truth[plan.fields].isel(time=slice(plan.start, plan.start + steps))
        spatial = fr.spatial_dims(truth)
        shape = (steps, *(truth.sizes[d] for d in spatial))
        coords = {d: truth[d] for d in spatial if d in truth.coords}
        if "time" in t.coords:
            coords["time"] = t["time"]
        self._buffers = {f: np.full(shape, np.nan, np.float32) for f in plan.fields}
        p = xr.Dataset({f: (("time", *spatial), a) for f, a in self._buffers.items()}, coords=coords)
        self._plan = plan
        self._steps = steps
        return t, p

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
        labels = self.slices.current.axes
        self.image["truth"] = ImagePanel(fr.to_image(frames["truth"], self._factor), b, clim, "truth", labels, first,
                                         self._cmap, self._width)
        self.image["prediction"] = ImagePanel(fr.to_image(frames["prediction"], self._factor), b, clim, "prediction", labels,
                                              first, self._cmap, self._width, share=self.image["truth"])
        self.image["error"] = ImagePanel(fr.to_image(frames["error"], self._factor), b, (-lim, lim), "error (prediction - truth)",
                                         labels, f"{first} error", self._error_cmap, self._width, share=self.image["truth"])
        self.curve = CurvePanel(["VRMSE"], "time", "VRMSE", title="VRMSE over time", width=380, height=200,
                                cursor=float(self.times[0]))
        self._update_curve()
        self._update_text(frames)
        self.player.param.watch(lambda e: self._show(), "value")
        self.trajectory.param.watch(lambda e: self._reset_view(), "value")
        self.field.param.watch(lambda e: self._reset_view(), "value")
        self.slices.axis.param.watch(self._on_axis, "value")
        self.slices.index.param.watch(lambda e: self._show(), "value")
        controls = [self.field, self.trajectory, *self.slices.widgets]
        rows: list[Any] = [self.alert]
        if self._model is not None:
            rows.append(pn.Row(self.start_input, self.steps_input, self.run_button, self.stop_button))
            rows.append(pn.Row(self.progress, self.status))
        rows += [
            pn.Row(*controls), self.player,
            pn.Row(*(pn.pane.Bokeh(self.image[k].figure) for k in PANELS)),
            pn.Row(pn.pane.Bokeh(self.curve.figure), self.stats),
        ]
        self._layout = pn.Column(*rows, name="RolloutScrubber")

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
            self._clims[f] = fr.robust_limits(fr.sample_values(self.truth[f]))
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
                new.append(fr.vrmse_frame(pp, tt))
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
            if self.error and self._worker_error is None:
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
            self.image[k].reshape(fr.to_image(frames[k], self._factor), b, self.slices.current.axes)
        self._show()

    def on_change(self, callback: Callable[[str, int], None]) -> None:
        """Call `callback(kind, time_index)` on 'time' (player moved), 'reset' (field/trajectory) and 'arrived'."""
        self._listeners.append(callback)

    # -- the rollout, for a scrubber made from a model ---------------------------------------------
    def run(self, background: bool = True, period_ms: int = 200) -> None:
        """Roll the model out from the start frame for the chosen steps; frames appear as they arrive."""
        if self._model is None:
            raise ParameterError("this scrubber shows a given prediction; make one with RolloutScrubber.from_model to run.")
        self.stop()
        try:
            from physviz.model.autoregressive import iter_rollout, plan_rollout

            m = self._model
            plan = plan_rollout(m["model"], self._source, int(self.steps_input.value), m["context"],
                                int(self.start_input.value), m["fields"])
            t, p = self._allocate(plan)
        except Exception as exc:
            self._fail(exc)
            return
        self.truth, self.prediction = t, p
        self.labels, self.times = fr.time_labels(t), self._time_axis(t)
        self._ready = self._arrived = self._shown = 0
        self._vrmse.clear()
        self._elims.clear()
        self._worker_error = None
        self._clear_error()
        self.progress.param.update(value=0, max=self._steps, bar_color="info")
        self.status.object = f"rolling out {self._steps} steps from frame {plan.start} ..."
        set_frames(self.player, 1, 0)
        self._update_curve()
        for listener in self._listeners:
            listener("reset", 0)
        self.run_button.disabled, self.stop_button.disabled = True, False
        self._stop.clear()
        self._working = True
        gen = iter_rollout(m["model"], self._source, self._steps, context=plan.context, start=plan.start, fields=plan.fields)
        if background:
            self._thread = threading.Thread(target=self._work, args=(gen,), name="physviz-rollout", daemon=True)
            self._thread.start()
            self._callback = pn.state.add_periodic_callback(self._poll, period=period_ms)
        else:
            self._work(gen, poll=True)
            self._poll()

    def _work(self, gen: Any, poll: bool = False) -> None:
        """Write each predicted frame into the preallocated arrays (the worker thread)."""
        try:
            for i, frame in enumerate(gen):
                if self._stop.is_set() or i >= self._steps:
                    break
                for f, buf in self._buffers.items():
                    da = frame[f]
                    if "trajectory" in da.dims:
                        da = da.isel(trajectory=0)
                    buf[i] = np.asarray(da.isel(time=0).values)
                self._arrived = i + 1
                if poll:
                    self._poll()
        except Exception as exc:  # shown in the view by _poll
            self._worker_error = exc
        finally:
            gen.close()
            self._working = False

    @property
    def running(self) -> bool:
        """Whether a rollout worker is still producing frames."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the rollout worker ends, then show what it produced."""
        if self._thread is not None:
            self._thread.join(timeout)
        self._poll()

    def stop(self) -> None:
        """Stop a running rollout after its current step."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()
        self._thread = None
        self._stop_callback()
        if self._model is not None and self.image:
            self._poll()

    def _stop_callback(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def _poll(self) -> None:
        """UI side: show frames that arrived since the last call (progress, player, curve, error limits)."""
        n = self._arrived
        follow = int(self.player.value) >= self._ready - 1
        if n > self._shown:
            old = self._ready
            self._ready = n
            f = self.field.value
            self._elims.pop((f, self._traj()), None)
            lim = max(self._elim(f), abs(self.image["error"].clim[1]) if old else 0.0)
            self._elims[(f, self._traj())] = lim
            self.image["error"].set_clim((-lim, lim))
            v = self.vrmse()
            for t in range(old, n):
                self.curve.append("VRMSE", float(self.times[t]), float(v[t]))
            if old == 0:
                self._update_curve()
            self._shown = n
            self.progress.value = n
            set_frames(self.player, n, n - 1 if follow else None)
            self._show()
            for listener in self._listeners:
                listener("arrived", n)
        if not self._working and self._model is not None:
            self._stop_callback()
            self.run_button.disabled, self.stop_button.disabled = False, True
            if self._worker_error is not None:
                self.progress.bar_color = "danger"
                self.status.object = f"rollout stopped at step {n}."
                self._fail(self._worker_error)
            elif n >= self._steps:
                self.progress.bar_color = "success"
                self.status.object = f"rollout done: {n} steps."
            else:
                self.status.object = f"rollout stopped after {n} of {self._steps} steps."

    # -- export ---------------------------------------------------------------------------------
    def _panels(self, frames: dict[str, np.ndarray]) -> list[Any]:
        from physviz.widgets.export import Panel

        f = self.field.value
        cl = self.image["truth"].clim
        el = self.image["error"].clim
        axes = self.slices.current.axes
        l, b, r, t = fr.bounds(self.truth[f], axes, frames["truth"].shape, 1)
        ext = (l, r, b, t)
        return [
            Panel(f"truth · {f}", frames["truth"], cl, self._cmap, axes, ext),
            Panel("prediction", frames["prediction"], cl, self._cmap, axes, ext),
            Panel("error (prediction - truth)", frames["error"], el, self._error_cmap, axes, ext),
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
        if self._model is None:
            return self._layout
        return pn.Column(*[o for o in self._layout.objects[3:]])  # no run controls in a file without a kernel

    def spectrum(self, **kw: Any) -> Any:
        """A SpectrumComparer linked to this scrubber's player, field and trajectory."""
        from physviz.widgets.spectrum import SpectrumComparer

        return SpectrumComparer(scrubber=self, **kw)
