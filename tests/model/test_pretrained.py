"""The bundled checkpoint: it ships inside the package, loads offline, and predicts better than persistence."""
from __future__ import annotations

import numpy as np
import pytest

import physviz
from physviz.errors import ParameterError
from physviz.model.checkpoint import read_model_info, tensor_hash
from physviz.model.registry import GENERIC
from physviz.recipes.evaluate import as_array, boundary_flags, evaluate, fields_of, model_predictor, persistence
from physviz.model.pretrained import pretrained_path


def test_bundled_checkpoint_ships_with_its_recipe_and_hash() -> None:
    path = pretrained_path()
    assert path.stat().st_size < 40e6
    info = read_model_info(path)
    meta = info["metadata"]
    assert meta["recipe"] == "bundled_gen2" and meta["recipe_train"]["model"]["init_from"] == "bundled:gen1"
    assert "gray_scott_3d_spots" in meta["corpus"] and "euler_high_mach" in meta["corpus"]
    assert GENERIC in meta["trained_fields"] and "temperature" not in meta["trained_fields"]
    model = physviz.load_pretrained()  # verifies the stored SHA-256 of the weights
    assert tensor_hash(model.state_dict()) == info["hash"] == model.metadata["hash"]
    assert model.config.n_spatial_dims == 3 and not model.training
    assert model.config.step_scale == "context" and model.config.refine_step
    # the first generation it continues ships too, and the second counts its steps and time
    gen1 = read_model_info(pretrained_path("gen1"))
    assert gen1["metadata"]["recipe"] == "bundled" and gen1["metadata"]["recipe_train"]["model"]["preset"] == "tiny"
    assert meta["continues"]["hash"] == gen1["hash"] and meta["steps"] > gen1["metadata"]["steps"] > 0
    assert physviz.load_pretrained("gen1").config.step_scale == "std"
    with pytest.raises(ParameterError, match="Unknown bundled model"):
        physviz.load_pretrained("no-such-model")


@pytest.mark.parametrize("system, params", [
    ("navier_stokes", {"regime": "kolmogorov", "viscosity": 5e-3}),
    ("shallow_water", {"regime": "dam_break"}),
])
def test_bundled_model_beats_persistence_on_new_trajectories(system: str, params: dict) -> None:
    ds = physviz.simulate(system, 2, resolution=64, steps=10, seed=424242, progress=False, **params)
    fields = fields_of(ds)
    data = as_array(ds, fields)
    model = physviz.load_pretrained()
    ours = evaluate(model_predictor(model, fields, boundary_flags(ds)), data, context=4, steps=5, fields=fields)
    base = evaluate(persistence, data, context=4, steps=5, fields=fields)
    assert ours.one_step < base.one_step, (ours.one_step, base.one_step)
    assert ours.mean_rollout(5) < base.mean_rollout(5)
    assert np.isfinite(ours.rollout).all()
