"""Rollouts, ensembles, boundary conditions, metrics and the scrubber with a Walrus model, as with the AViT."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import physviz
from physviz.errors import ParameterError
from physviz.fields.simulate import simulate
from physviz.model import AViT, ModelConfig, iter_rollout, rollout
from physviz.model.walrus import Walrus, preset

FIELDS = ["density", "pressure", "velocity_x", "velocity_y"]


@pytest.fixture(scope="module")
def truth():
    return simulate("euler", 2, regime="low_mach", resolution=32, steps=10, seed=5, progress=False)


@pytest.fixture(scope="module")
def model() -> Walrus:
    torch.manual_seed(0)
    return Walrus(preset("tiny", jitter=False, tokens_2d=8, context_frames=4)).eval()


def _window(ds, start: int, context: int) -> torch.Tensor:
    x = np.stack([ds[f].isel(time=slice(start - context, start)).values for f in FIELDS], axis=2)
    return torch.from_numpy(x.astype(np.float32))


def test_rollout_is_aligned_and_its_first_step_is_the_model(truth, model):
    pred = rollout(model, truth, steps=3, context=4, start=4, fields=FIELDS)
    assert dict(pred.sizes) == {"trajectory": 2, "time": 3, "x": 32, "y": 32}
    np.testing.assert_allclose(pred.time.values, truth.time.values[4:7])
    assert pred.attrs["model"] == "Walrus" and pred.attrs["rollout"]["context"] == 4
    with torch.inference_mode():
        y = model(_window(truth, 4, 4), model.field_ids(FIELDS), ["periodic", "periodic"]).numpy()
    for c, f in enumerate(FIELDS):
        np.testing.assert_allclose(pred[f].isel(time=0).values, y[:, c], rtol=1e-5, atol=1e-6)
    err = physviz.analysis.vrmse(pred, truth)
    assert err.sizes["time"] == 3 and np.isfinite(err.density.values).all()
    # iter_rollout yields the same frames one by one
    frames = list(iter_rollout(model, truth, 3, context=4, start=4, fields=FIELDS))
    np.testing.assert_allclose(np.concatenate([f.pressure.values for f in frames], axis=1), pred.pressure.values)


def test_boundary_conditions_come_from_the_dataset_attrs(truth, model):
    walled = truth.copy()
    walled.attrs = {**truth.attrs, "boundary_conditions": {"x": "open", "y": ["wall", "open"]}}
    got = rollout(model, walled, steps=1, context=3, start=5, fields=FIELDS)
    assert model.boundary_input({"x": "open", "y": ["wall", "open"]}, ["x", "y"]) == [[1, 1], [0, 1]]
    with torch.inference_mode():
        want = model(_window(truth, 5, 3), model.field_ids(FIELDS), {"x": "open", "y": ["wall", "open"]}).numpy()
        periodic = model(_window(truth, 5, 3), model.field_ids(FIELDS), [1, 1]).numpy()
    np.testing.assert_allclose(got.density.isel(time=0).values, want[:, 0], rtol=1e-5, atol=1e-6)
    assert np.abs(want - periodic).max() > 1e-4  # the conditions reach the model


def test_jittered_ensembles_are_seeded_means(truth, model):
    a = rollout(model, truth, steps=2, context=3, start=3, fields=FIELDS, ensemble=3, jitter_seed=7)
    b = rollout(model, truth, steps=2, context=3, start=3, fields=FIELDS, ensemble=3, jitter_seed=7)
    plain = rollout(model, truth, steps=2, context=3, start=3, fields=FIELDS)
    np.testing.assert_array_equal(a.density.values, b.density.values)
    assert np.abs(a.density.values - plain.density.values).max() > 1e-6  # jitter moved the patch grid
    ids = model.field_ids(FIELDS)
    with torch.inference_mode():
        members = [model.predict(_window(truth, 3, 3), ids, [1, 1], jitter_seed=7 + m) for m in range(3)]
    np.testing.assert_allclose(a.density.isel(time=0).values, torch.stack(members).mean(0)[:, 0].numpy(),
                               rtol=1e-4, atol=1e-5)
    assert a.attrs["rollout"]["ensemble"] == 3


def test_walrus_needs_two_context_frames(truth, model):
    with pytest.raises(ParameterError, match="at least 2 context frames"):
        rollout(model, truth, steps=1, context=1, start=3, fields=FIELDS)


def test_scrubber_from_a_walrus_model_in_the_kernel(truth, model):
    pytest.importorskip("panel")
    from physviz.widgets import RolloutScrubber

    sc = RolloutScrubber.from_model(model, truth, steps=3, start=4, context=4, fields=FIELDS, run=False)
    assert sc.error == ""
    sc.run(background=False)
    assert sc.error == "" and sc.n_frames == 3
    want = rollout(model, truth.isel(trajectory=0), steps=3, context=4, start=4, fields=FIELDS)
    np.testing.assert_allclose(sc.prediction.density.values, want.density.values, rtol=1e-5, atol=1e-6)
    assert np.isfinite(sc.vrmse()).all()
    spectrum = sc.spectrum()
    assert spectrum.error == ""


def test_the_family_interface_defaults_keep_the_avit_as_it_was():
    torch.manual_seed(0)
    avit = AViT(ModelConfig.preset("tiny"), registry="physviz")
    assert avit.min_context_frames == 1 and not avit.predicts_every_frame
    p = avit.patch_size
    assert avit.token_grid([4 * p, 4 * p + 1]) == (4, 5)
    assert avit.boundary_input({"x": "periodic", "y": "open"}, ["x", "y"]) == (1, 0)
    walrus = Walrus(preset("tiny", tokens_2d=8))
    assert walrus.min_context_frames == 2 and walrus.predicts_every_frame
    assert walrus.token_grid([32, 32]) == (8, 8)
