"""RolloutRunner alone (no Panel): frames arrive in order, the Dataset it fills is physviz.rollout's output,
stop() ends the worker early, errors in the worker are reported, wait(timeout) returns while it runs."""
from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import numpy as np
import pytest
import xarray as xr

torch = pytest.importorskip("torch")

from physviz.errors import NonFiniteFieldError, ParameterError  # noqa: E402
from physviz.fields.simulate import simulate  # noqa: E402
from physviz.model import AViT, ModelConfig, rollout  # noqa: E402
from physviz.widgets.rollout_runner import RolloutRunner  # noqa: E402

FIELDS = ["density", "pressure"]


@pytest.fixture(scope="module")
def truth() -> Iterator[xr.Dataset]:
    before = torch.get_num_threads()  # restored: a later module comparing with a subprocess uses the default
    torch.set_num_threads(1)
    yield simulate("euler", 2, regime="low_mach", resolution=32, steps=12, seed=5, progress=False)
    torch.set_num_threads(before)


@pytest.fixture
def model() -> AViT:
    """A small randomly initialised model (its frames differ from step to step)."""
    torch.manual_seed(0)
    return AViT(ModelConfig.preset("tiny", delta_prediction=True), registry="physviz").eval()


class Gate:
    """A forward hook that holds the model's step `at` until released (or raises there)."""

    def __init__(self, model: AViT, at: int, fail: bool = False) -> None:
        self.at, self.fail, self.calls = at, fail, 0
        self.reached, self.release = threading.Event(), threading.Event()
        self.handle = model.register_forward_hook(self)

    def __call__(self, module, args, output):
        step, self.calls = self.calls, self.calls + 1
        if step == self.at:
            if self.fail:
                raise RuntimeError(f"the model broke at step {step}")
            self.reached.set()
            assert self.release.wait(30), "the test never released the gate"
        return output


@pytest.fixture
def gate_factory(model) -> Iterator:
    gates: list[Gate] = []

    def make(at: int, fail: bool = False) -> Gate:
        gates.append(Gate(model, at, fail))
        return gates[-1]

    yield make
    for g in gates:
        g.release.set()
        g.handle.remove()


def test_frames_arrive_in_order_and_are_final_when_counted(truth, model):
    runner = RolloutRunner(model, truth, steps=5, start=4, context=3, fields=FIELDS)
    assert runner.state().ready == 0 and not runner.running and not runner.finished
    assert np.isnan(runner.prediction.density.values).all()
    seen: list[tuple[int, bool, bool]] = []

    def on_frame(n: int) -> None:
        d = runner.prediction.density.values
        seen.append((n, bool(np.isfinite(d[:n]).all()), bool(np.isnan(d[n:]).all())))

    state = runner.run(on_frame=on_frame)
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5]
    assert all(done and waiting for _, done, waiting in seen)  # frames 0..n-1 written, the rest still NaN
    assert state.complete and state.ready == 5 and state.error is None and runner.finished and not runner.running
    np.testing.assert_array_equal(runner.truth.time.values, truth.time.values[4:9])
    assert runner.truth.sizes["time"] == runner.prediction.sizes["time"] == 5


def test_background_frames_arrive_in_order(truth, model):
    runner = RolloutRunner(model, truth, steps=6, start=3, context=3, fields=FIELDS)
    counts: list[int] = []
    runner.start(on_frame=counts.append)
    seen = [runner.wait_for(n, timeout=60).ready for n in range(1, 7)]
    assert runner.wait(60) and runner.state().complete
    assert counts == [1, 2, 3, 4, 5, 6]
    assert seen == sorted(seen) and seen[-1] == 6


@pytest.mark.parametrize("background", [False, True])
def test_the_filled_dataset_is_physviz_rollouts_output(truth, model, background):
    runner = RolloutRunner(model, truth, steps=5, start=5, context=4, fields=FIELDS, trajectory=1)
    if background:
        runner.start()
        assert runner.wait(120)
    else:
        runner.run()
    assert runner.state().complete
    expected = rollout(model, truth.isel(trajectory=1), 5, context=4, start=5, fields=FIELDS)
    xr.testing.assert_equal(runner.prediction, expected)  # values, dims and coords (attrs aside)
    for f in FIELDS:
        assert runner.prediction[f].dtype == expected[f].dtype
        np.testing.assert_array_equal(runner.prediction[f].values, expected[f].values)  # bit for bit


def test_defaults_follow_the_models_context_to_the_last_truth_frame(truth, model):
    runner = RolloutRunner(model, truth, fields=FIELDS)
    context = model.config.context_frames
    start = min(context, truth.sizes["time"] - 1)
    assert runner.plan.start == start and runner.steps == truth.sizes["time"] - start


def test_stop_ends_the_worker_early(truth, model, gate_factory):
    gate = gate_factory(at=2)
    runner = RolloutRunner(model, truth, steps=8, start=3, context=3, fields=FIELDS)
    runner.start()
    assert gate.reached.wait(60)  # the worker is computing step 2; frames 0 and 1 are ready
    assert runner.running and runner.ready == 2
    threading.Timer(0.2, gate.release.set).start()
    assert runner.stop(60)  # returns once the worker ended
    state = runner.state()
    assert state.finished and not state.running and state.error is None and not state.complete
    assert state.ready == 2  # the step being computed when stop() came is dropped
    assert np.isnan(runner.prediction.density.values[2:]).all()
    assert gate.calls == 3  # no step after it


def test_wait_with_a_timeout_returns_while_the_worker_runs(truth, model, gate_factory):
    gate = gate_factory(at=1)
    runner = RolloutRunner(model, truth, steps=3, start=3, context=3, fields=FIELDS)
    runner.start()
    assert gate.reached.wait(60)
    assert runner.wait(0.1) is False and runner.running
    assert runner.wait_for(3, timeout=0.1).ready == 1
    gate.release.set()
    assert runner.wait(60) is True and runner.state().complete


def test_an_error_in_the_model_is_reported(truth, model, gate_factory):
    gate_factory(at=2, fail=True)
    runner = RolloutRunner(model, truth, steps=5, start=3, context=3, fields=FIELDS)
    runner.start()
    assert runner.wait(60)
    state = runner.state()
    assert isinstance(state.error, RuntimeError) and "step 2" in str(state.error)
    assert state.finished and state.ready == 2 and not state.complete


def test_a_nan_in_the_context_is_reported(truth, model):
    bad = truth.copy(deep=True)
    bad["density"][dict(trajectory=0, time=2, x=3, y=4)] = np.nan
    runner = RolloutRunner(model, bad, steps=3, start=3, context=3, fields=FIELDS)
    state = runner.run()
    assert isinstance(state.error, NonFiniteFieldError) and "density" in str(state.error)
    assert state.finished and state.ready == 0 and runner.error is state.error


def test_bad_choices_are_raised_before_anything_runs(truth, model):
    with pytest.raises(ParameterError, match="context"):
        RolloutRunner(model, truth, steps=3, start=2, context=4, fields=FIELDS)
    with pytest.raises(ParameterError, match="no truth frame"):
        RolloutRunner(model, truth, steps=3, start=truth.sizes["time"], context=3, fields=FIELDS)
    runner = RolloutRunner(model, truth, steps=1, start=3, context=3, fields=FIELDS)
    runner.run()
    with pytest.raises(ParameterError, match="already run"):
        runner.start()


def test_the_runner_imports_no_panel_holoviews_or_bokeh():
    code = (
        "import sys, physviz.widgets.rollout_runner;"
        "print(','.join(m for m in ('panel', 'holoviews', 'bokeh', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
