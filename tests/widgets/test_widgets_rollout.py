"""RolloutScrubber.from_model: the rollout runs (in a worker thread or in line), frames show as they arrive,
start frame and steps can be chosen, bad choices are messages in the view."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("panel")
torch = pytest.importorskip("torch")

from physviz.fields.simulate import simulate  # noqa: E402
from physviz.model import AViT, ModelConfig  # noqa: E402
from physviz.widgets import RolloutScrubber  # noqa: E402

FIELDS = ["density", "pressure"]


@pytest.fixture(scope="module")
def truth():
    before = torch.get_num_threads()  # restored: a later module comparing with a subprocess uses the default
    torch.set_num_threads(1)
    yield simulate("euler", 2, regime="low_mach", resolution=32, steps=12, seed=5, progress=False)
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def persistence() -> AViT:
    """A model that predicts a zero delta: every predicted frame is the last context frame."""
    torch.manual_seed(0)
    model = AViT(ModelConfig.preset("tiny", delta_prediction=True), registry="physviz").eval()
    with torch.no_grad():
        model.debed.out_kernel.zero_()
        model.debed.out_bias.zero_()
    return model


def test_frames_show_as_they_arrive(truth, persistence):
    sc = RolloutScrubber.from_model(persistence, truth, steps=5, start=4, context=3, fields=FIELDS, run=False)
    assert sc.error == "" and sc.n_frames == 0
    seen = []
    sc.on_change(lambda kind, n: seen.append((kind, n, sc.player.end, sc.progress.value)) if kind == "arrived" else None)
    sc.run(background=False)
    assert [s[1] for s in seen] == [1, 2, 3, 4, 5]
    assert [s[3] for s in seen] == [1, 2, 3, 4, 5]  # progress bar per frame
    assert [s[2] for s in seen][1:] == [1, 2, 3, 4]  # the player grows with the frames
    assert sc.n_frames == 5 and sc.player.value == 4  # it followed the newest frame
    assert "done" in sc.status.object and sc.progress.bar_color == "success"
    last = truth.density.isel(trajectory=0, time=3).values
    for t in range(5):
        np.testing.assert_allclose(sc.prediction.density.values[t], last, atol=1e-5)
    sc.player._process_events({"value": 2})
    np.testing.assert_allclose(np.asarray(sc.image["prediction"].source.data["image"][0]), last.T, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(sc.image["truth"].source.data["image"][0]), truth.density.isel(trajectory=0, time=6).values.T)
    x, v = sc.curve.data("VRMSE")
    np.testing.assert_allclose(x, truth.time.values[4:9])
    assert len(v) == 5 and v[0] < v[-1]


def test_background_rollout_with_chosen_start_and_steps(truth, persistence):
    sc = RolloutScrubber.from_model(persistence, truth, fields=FIELDS, context=2, trajectory=1, run=False)
    spectrum = sc.spectrum()
    sc.start_input.value, sc.steps_input.value = 6, 4
    sc.run(background=True, period_ms=50)
    sc.wait(120)
    assert not sc.running and sc.error == ""
    assert sc.n_frames == 4 and sc.truth.sizes["time"] == 4
    np.testing.assert_allclose(sc.truth.time.values, truth.time.values[6:10])
    np.testing.assert_allclose(sc.prediction.pressure.values[3], truth.pressure.isel(trajectory=1, time=5).values, atol=1e-5)
    assert spectrum.curves.data("truth")[1].size > 0  # the linked spectrum follows the new rollout
    assert np.isfinite(spectrum.error_map()).any()
    assert sc.run_button.disabled is False


def test_bad_start_is_a_message_in_the_view(truth, persistence):
    sc = RolloutScrubber.from_model(persistence, truth, fields=FIELDS, context=4, run=False)
    sc.start_input.value = 2  # fewer context frames than asked for
    sc.run(background=False)
    assert "context" in sc.error and sc.alert.visible
    bad = RolloutScrubber.from_model(persistence, truth, fields=["vorticity"], steps=2)
    assert "vorticity" in bad.error


def test_the_scrubber_draws_what_its_runner_wrote(truth, persistence):
    from physviz.widgets import RolloutRunner

    sc = RolloutScrubber.from_model(persistence, truth, steps=3, start=4, context=3, fields=FIELDS, background=True)
    sc.wait(120)
    runner = sc.runner
    assert isinstance(runner, RolloutRunner) and runner.state().complete and not sc.running
    assert sc.prediction is runner.prediction and sc.truth is runner.truth
    assert sc.n_frames == runner.ready == 3 and sc.player.end == 2
    assert RolloutScrubber(truth, truth).runner is None


def test_the_vrmse_curve_goes_whole_never_as_streamed_points(truth, persistence):
    """A notebook page sends streamed points back to the kernel, which appends them again; the scrubber replaces
    its small VRMSE curve instead, one point more per frame, whatever the polls see at once."""
    from bokeh.document import Document
    from bokeh.document.events import ColumnsStreamedEvent

    sc = RolloutScrubber.from_model(persistence, truth, steps=4, start=4, context=3, fields=FIELDS, run=False)
    doc = Document()
    doc.add_root(sc.curve.figure)
    events: list = []
    doc.on_change(events.append)
    lengths = []
    sc.on_change(lambda kind, n: lengths.append(len(sc.curve.data("VRMSE")[0])) if kind == "arrived" else None)
    sc.run(background=False)
    assert lengths == [1, 2, 3, 4]
    assert not [e for e in events if isinstance(e, ColumnsStreamedEvent)]
    x, _ = sc.curve.data("VRMSE")
    np.testing.assert_allclose(x, truth.time.values[4:8])
