"""Autoregressive rollouts in the physviz schema, aligned with the truth."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import physviz
from physviz.errors import NonFiniteFieldError, ParameterError, SchemaError, UnknownFieldError
from physviz.fields.simulate import simulate
from physviz.model import AViT, ModelConfig, iter_rollout, rollout


@pytest.fixture(scope="module")
def truth():
    return simulate("euler", 3, regime="low_mach", resolution=32, steps=12, seed=5, progress=False)


def _tiny(**kw) -> AViT:
    torch.manual_seed(0)
    return AViT(ModelConfig.preset("tiny", **kw), registry="physviz").eval()


def _persistence() -> AViT:
    model = _tiny(delta_prediction=True)
    with torch.no_grad():  # a zero field-specific head predicts a zero delta: the last frame
        model.debed.out_kernel.zero_()
        model.debed.out_bias.zero_()
    return model


def test_rollout_is_well_formed_and_aligned(truth):
    model = _tiny()
    fields = ["density", "pressure", "velocity_x", "velocity_y"]
    pred = rollout(model, truth, steps=6, context=4, start=4, fields=fields)
    assert set(pred.data_vars) == set(fields)
    assert dict(pred.sizes) == {"trajectory": 3, "time": 6, "x": 32, "y": 32}
    np.testing.assert_allclose(pred.time.values, truth.time.values[4:10])
    np.testing.assert_allclose(pred.x.values, truth.x.values)
    err = pred - truth  # aligns on time: only the predicted frames remain
    assert err.sizes["time"] == 6 and np.isfinite(err.density.values).all()
    assert pred.attrs["boundary_conditions"] == truth.attrs["boundary_conditions"]
    assert pred.attrs["rollout"]["context"] == 4 and pred.attrs["rollout"]["start"] == 4
    assert pred.attrs["model"]


def test_first_step_equals_the_model_on_the_context(truth):
    model = _tiny()
    fields = ["density", "pressure", "velocity_x", "velocity_y"]
    pred = rollout(model, truth, steps=1, context=4, start=6, fields=fields)
    x = np.stack([truth[f].isel(time=slice(2, 6)).values for f in fields], axis=2).astype(np.float32)
    with torch.inference_mode():
        y = model(torch.from_numpy(x), model.field_ids(fields), torch.tensor([1, 1])).numpy()
    for c, f in enumerate(fields):
        np.testing.assert_allclose(pred[f].isel(time=0).values, y[:, c], rtol=1e-5, atol=1e-6)


def test_persistence_model_repeats_the_last_frame_and_feeds_back(truth):
    pred = rollout(_persistence(), truth, steps=5, context=3, start=5, fields=["density", "pressure"])
    last = truth.density.isel(time=4).values
    for t in range(5):
        np.testing.assert_allclose(pred.density.isel(time=t).values, last, rtol=1e-5, atol=1e-6)


def test_batched_equals_one_trajectory_at_a_time(truth):
    model = _tiny()
    both = rollout(model, truth, steps=3, context=4, fields=["density", "pressure"])
    one = rollout(model, truth.isel(trajectory=[1]), steps=3, context=4, fields=["density", "pressure"])
    np.testing.assert_allclose(both.density.isel(trajectory=1).values, one.density.isel(trajectory=0).values, rtol=1e-4, atol=1e-5)


def test_generator_yields_frames_as_they_come(truth):
    model = _tiny()
    frames = list(iter_rollout(model, truth, steps=3, context=4, fields=["density"]))
    assert len(frames) == 3 and all(f.sizes["time"] == 1 for f in frames)
    full = rollout(model, truth, steps=3, context=4, fields=["density"])
    np.testing.assert_allclose(np.concatenate([f.density.values for f in frames], axis=1), full.density.values)


def test_long_rollout_of_a_128_field_past_the_end_of_the_truth():
    ds = simulate("navier_stokes", 1, regime="decaying", resolution=128, steps=5, seed=1, progress=False)
    pred = physviz.rollout(_tiny(), ds, steps=64, context=4, fields=["vorticity", "velocity_x", "velocity_y"])
    assert dict(pred.sizes) == {"trajectory": 1, "time": 64, "x": 128, "y": 128}
    dt = float(ds.time[1] - ds.time[0])
    np.testing.assert_allclose(np.diff(pred.time.values), dt, rtol=1e-9)
    assert pred.time.values[0] == pytest.approx(float(ds.time[4]))
    assert np.isfinite(pred.vorticity.values).all()


def test_bad_input(truth):
    model = _tiny()
    with pytest.raises(UnknownFieldError, match="temperature"):
        rollout(model, truth, steps=2, fields=["density", "temperature"])
    with pytest.raises(ParameterError, match="context"):
        rollout(model, truth, steps=2, context=5, start=3, fields=["density"])
    bad = truth.copy(deep=True)
    bad["density"][0, 1, 3, 3] = np.nan
    with pytest.raises(NonFiniteFieldError, match="density"):
        rollout(model, bad, steps=2, context=4, start=4, fields=["density"])
    small = simulate("euler", 1, regime="low_mach", resolution=16, steps=3, progress=False).isel(x=slice(0, 4), y=slice(0, 4))
    with pytest.raises(ParameterError, match="patch"):
        rollout(model, small, steps=1, context=2, fields=["density"])
    with pytest.raises(SchemaError, match="2D"):
        rollout(model, simulate("gray_scott_3d", 1, resolution=16, steps=3, progress=False), steps=1, context=2)
    unknown = truth.rename({"density": "mystery"})
    with pytest.raises(UnknownFieldError, match="mystery"):
        rollout(model, unknown, steps=1, context=2, fields=["mystery"])


def test_bf16_autocast_rollout_is_close_to_float32(truth):
    model = _tiny()
    fields = ["density", "pressure", "velocity_x", "velocity_y"]
    ref = rollout(model, truth, steps=2, context=4, fields=fields)
    low = rollout(model, truth, steps=2, context=4, fields=fields, autocast_bf16=True)
    assert low.density.dtype == np.float32 and np.isfinite(low.density.values).all()
    rel = float(np.linalg.norm(low.density.values - ref.density.values) / np.linalg.norm(ref.density.values))
    assert 0 < rel < 5e-2  # bf16 really ran (not bit-equal) and stays close
