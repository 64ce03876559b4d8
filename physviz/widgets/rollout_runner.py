"""RolloutRunner: a model's rollout from a truth Dataset, written frame by frame into one preallocated array per field.

It imports neither Panel nor HoloViews nor Bokeh: the worker thread over `physviz.model.autoregressive.iter_rollout`,
the prediction Dataset it fills, how many frames are ready, the error that ended it, stop and wait. A view learns
about new frames by polling `state()` (one consistent snapshot, safe from any thread), or, for a rollout run in
the caller's thread, through `on_frame`.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from physviz.errors import ParameterError
from physviz.widgets import frames as fr

OnFrame = Callable[[int], None]


@dataclass(frozen=True)
class RunnerState:
    """What a runner has done, read at one instant."""

    ready: int  # frames written into the prediction, in order from 0
    steps: int  # frames the rollout will write when it is not stopped
    started: bool
    finished: bool  # the worker ended: all frames written, stopped, or failed
    error: BaseException | None  # what ended the worker early, if anything

    @property
    def running(self) -> bool:
        """Started and not finished."""
        return self.started and not self.finished

    @property
    def complete(self) -> bool:
        """Finished with every frame written."""
        return self.finished and self.error is None and self.ready >= self.steps


class RolloutRunner:
    """One rollout of `model` from `truth`, run once (in a worker thread, or in the caller's thread).

    `truth` is a Dataset in the physviz schema (one trajectory is picked when it has a trajectory dim).
    By default the rollout starts after `context` frames (the model's context length) and runs to the
    truth's last frame. `self.truth` holds the truth frames it predicts and `self.prediction` the same
    frames as NaN until written; both keep their shape while the rollout runs.
    """

    def __init__(
        self, model: Any, truth: xr.Dataset | xr.DataArray, steps: int | None = None, start: int | None = None,
        context: int | None = None, fields: Sequence[str] | None = None, trajectory: int = 0,
        field_map: Mapping[str, str] | None = None,
    ) -> None:
        from physviz.model.autoregressive import plan_rollout

        source = fr.as_dataset(truth, "truth")
        if "trajectory" in source.dims:
            source = source.isel(trajectory=int(trajectory))
        n_time = source.sizes.get("time", 0)
        if start is None:
            default = context or int(model.context_frames)
            start = min(default, max(n_time - 1, 1))
        if steps is None:
            steps = max(n_time - start, 1)
        self.model, self.source, self.context = model, source, context
        self.field_map = dict(field_map) if field_map else None
        self.plan = plan_rollout(model, source, int(steps), context, int(start), fields, field_map=self.field_map)
        self.steps = min(self.plan.steps, n_time - self.plan.start)
        if self.steps < 1:
            raise ParameterError(
                f"start={self.plan.start} leaves no truth frame to compare with (the truth has {n_time} time steps)."
            )
        self.truth, self.prediction = self._allocate()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = 0
        self._started = self._finished = False
        self._error: BaseException | None = None

    def _allocate(self) -> tuple[xr.Dataset, xr.Dataset]:
        """The truth frames the plan predicts, and a prediction Dataset over one NaN array per field."""
        plan, source = self.plan, self.source
        truth = source[plan.fields].isel(time=slice(plan.start, plan.start + self.steps))
        spatial = fr.spatial_dims(source)
        shape = (self.steps, *(source.sizes[d] for d in spatial))
        coords = {d: source[d] for d in spatial if d in source.coords}
        if "time" in truth.coords:
            coords["time"] = truth["time"]
        self._buffers = {f: np.full(shape, np.nan, np.float32) for f in plan.fields}
        pred = xr.Dataset({f: (("time", *spatial), a) for f, a in self._buffers.items()}, coords=coords)
        return truth, pred

    # -- state ----------------------------------------------------------------------------------
    def state(self) -> RunnerState:
        """Frames ready, started, finished and error, all read at one instant."""
        with self._cond:
            return RunnerState(self._ready, self.steps, self._started, self._finished, self._error)

    @property
    def ready(self) -> int:
        """Frames written so far (frames 0 .. ready-1 of the prediction hold their final values)."""
        return self.state().ready

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the worker early (None while running, or after a clean end or a stop)."""
        return self.state().error

    @property
    def running(self) -> bool:
        """Whether the rollout has started and not yet ended."""
        return self.state().running

    @property
    def finished(self) -> bool:
        """Whether the rollout has ended (all frames written, stopped, or failed)."""
        return self.state().finished

    # -- running --------------------------------------------------------------------------------
    def _begin(self) -> Iterator[Any]:
        from physviz.model.autoregressive import iter_rollout

        with self._cond:
            if self._started:
                raise ParameterError("this rollout has already run; make a new RolloutRunner to run again.")
            self._started = True
        plan = self.plan
        return iter_rollout(self.model, self.source, self.steps, context=plan.context, start=plan.start, fields=plan.fields,
                            field_map=self.field_map)

    def start(self, on_frame: OnFrame | None = None) -> None:
        """Run the rollout in a daemon worker thread; `on_frame(n)`, if given, is called in that thread."""
        gen = self._begin()
        self._thread = threading.Thread(target=self._work, args=(gen, on_frame), name="physviz-rollout", daemon=True)
        self._thread.start()

    def run(self, on_frame: OnFrame | None = None) -> RunnerState:
        """Run the rollout in this thread, calling `on_frame(n)` after each frame; returns the final state.

        An error in the model is recorded in `error` (as for a worker thread), not raised.
        """
        self._work(self._begin(), on_frame)
        return self.state()

    def _work(self, gen: Iterator[Any], on_frame: OnFrame | None) -> None:
        """Write each predicted frame into the preallocated arrays, then count it as ready."""
        try:
            for i, frame in enumerate(gen):
                if self._stop.is_set() or i >= self.steps:
                    break
                for f, buf in self._buffers.items():
                    da = frame[f]
                    if "trajectory" in da.dims:
                        da = da.isel(trajectory=0)
                    buf[i] = np.asarray(da.isel(time=0).values)
                with self._cond:
                    self._ready = i + 1
                    self._cond.notify_all()
                if on_frame is not None:
                    on_frame(i + 1)
        except Exception as exc:  # reported through state(); the view shows it
            with self._cond:
                self._error = exc
        finally:
            close = getattr(gen, "close", None)
            if close is not None:
                close()
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def wait_for(self, n: int, timeout: float | None = None) -> RunnerState:
        """Block until at least n frames are ready or the rollout has ended (or timeout seconds passed)."""
        with self._cond:
            self._cond.wait_for(lambda: self._ready >= n or self._finished, timeout)
        return self.state()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker thread ends (or timeout seconds passed); True when it is no longer running."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the rollout after the step it is computing (that frame is dropped) and wait for the thread to end."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self.running
