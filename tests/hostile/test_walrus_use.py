"""Using a Walrus model badly: each wrong input to a rollout or a fine-tune gets one clear error naming what is wrong."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import physviz
from physviz.errors import ParameterError, PhysvizError, SchemaError, UnknownFieldError
from physviz.model import AViT, ModelConfig, rollout
from physviz.model.walrus import Walrus, preset
from physviz.train.config import TrainConfig, TrainConfigError


def _walrus(**kw) -> Walrus:
    torch.manual_seed(0)
    return Walrus(preset("tiny", **{"tokens_2d": 8, "jitter": False, **kw})).eval()


def _ds(n: int = 16, frames: int = 6, fields=("density", "pressure"), bcs=None, dims=("x", "y")) -> xr.Dataset:
    rng = np.random.default_rng(0)
    shape = (frames,) + (n,) * len(dims)
    data = {f: (("time", *dims), rng.standard_normal(shape).astype(np.float32) + 2) for f in fields}
    coords = {"time": np.arange(frames, dtype=float), **{d: np.arange(n, dtype=float) for d in dims}}
    attrs = {"boundary_conditions": bcs or {d: "periodic" for d in dims}, "dataset_name": "toy"}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _finetune(model, ds, tmp_path, **kw):
    return physviz.finetune(model, ds, steps=1, progress=False, tokens=256, output_dir=str(tmp_path / "ft"), **kw)


# -- fields ------------------------------------------------------------------------------------------
def test_a_field_walrus_cannot_map_is_named_with_suggestions(tmp_path) -> None:
    ds = _ds(fields=("density", "presure"))
    with pytest.raises(UnknownFieldError, match="presure") as err:
        rollout(_walrus(), ds, steps=1)
    assert "fine-tune with the field appended" in str(err.value).lower()
    assert "field_map={'presure': 'pressure'}" in str(err.value)
    with pytest.raises(TrainConfigError, match=r"'presure' \(did you mean 'pressure'") as err:
        _finetune(_walrus(), ds, tmp_path, append_fields=False)
    assert "append_fields" in str(err.value)
    assert not (tmp_path / "ft" / "final.safetensors").exists()


def test_unknown_field_slot_ids_are_refused() -> None:
    model = _walrus()
    with pytest.raises(UnknownFieldError, match="slots 3..66"):
        model(torch.zeros(1, 3, 2, 16, 16), torch.tensor([1, 5]), [1, 1])
    with pytest.raises(ParameterError, match="repeat a field"):
        model(torch.zeros(1, 3, 2, 16, 16), torch.tensor([5, 5]), [1, 1])


# -- frames and grids --------------------------------------------------------------------------------
def test_one_context_frame_is_refused_before_any_work(tmp_path) -> None:
    ds = _ds()
    with pytest.raises(ParameterError, match="at least 2 context frames"):
        rollout(_walrus(), ds, steps=1, context=1, start=2)
    with pytest.raises(TrainConfigError, match=r"n_steps_input=1 .*at least 2 context frames"):
        _finetune(_walrus(), ds, tmp_path, n_steps_input=1)
    with pytest.raises(ParameterError, match="at least 2 context frames"):
        _walrus()(torch.zeros(1, 1, 2, 16, 16), torch.tensor([3, 4]), [1, 1])


def test_a_grid_below_one_token_is_refused(tmp_path) -> None:
    ds = _ds(n=3)
    with pytest.raises(ParameterError, match="below one 4-point patch"):
        rollout(_walrus(), ds, steps=1)
    with pytest.raises(TrainConfigError, match=r"data\[0\] \(toy\).*4"):
        _finetune(_walrus(), ds, tmp_path)


def test_data_of_dims_the_model_has_no_weights_for(tmp_path) -> None:
    three_only = _walrus(include_d=[3])
    with pytest.raises(ParameterError, match=r"no 2D weights \(include_d=\[3\]\)"):
        rollout(three_only, _ds(), steps=1)
    one_d = _ds(dims=("x",))
    with pytest.raises(SchemaError, match=r"spatial dims \['x'\]"):
        rollout(_walrus(), one_d, steps=1)
    with pytest.raises(SchemaError, match="2D or 3D"):
        _walrus()(torch.zeros(1, 3, 2, 16), torch.tensor([3, 4]), [1])


# -- boundary conditions -----------------------------------------------------------------------------
def test_unknown_boundary_conditions_in_attrs_are_named() -> None:
    ds = _ds(bcs={"x": "sponge", "y": "periodic"})
    with pytest.raises(SchemaError, match=r"attrs\['boundary_conditions'\]\['x'\].*'sponge'"):
        rollout(_walrus(), ds, steps=1)
    with pytest.raises(ParameterError, match="periodic on one side only"):
        _walrus()(torch.zeros(1, 3, 2, 16, 16), torch.tensor([3, 4]), {"x": ["periodic", "wall"], "y": "wall"})


# -- configs and files -------------------------------------------------------------------------------
def _cfg(tmp_path, model: dict) -> dict:
    data = tmp_path / "data.hdf5"
    return {"output_dir": str(tmp_path / "out"), "data": [{"path": str(data)}], "model": model}


def test_a_walrus_config_that_cannot_be_built_is_named(tmp_path) -> None:
    bad = _cfg(tmp_path, {"family": "walrus", "preset": "tiny", "overrides": {"hidden_dim": 66}})
    with pytest.raises(TrainConfigError, match="hidden_dim 66 is not a multiple of num_heads 4"):
        TrainConfig.from_yaml(bad).validate(check_data=False)
    bad["model"] = {"family": "walrus", "registry": "mpp"}
    with pytest.raises(TrainConfigError, match="model.registry='mpp'"):
        TrainConfig.from_yaml(bad).validate(check_data=False)
    bad["model"] = {"family": "gpt"}
    with pytest.raises(TrainConfigError, match="family"):
        TrainConfig.from_yaml(bad)


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path) -> None:
    text = tmp_path / "walrus.pt"
    text.write_text("not weights\n")
    bad = _cfg(tmp_path, {"family": "walrus", "init_from": str(text)})
    with pytest.raises(TrainConfigError, match=r"walrus.pt' is not a model checkpoint"):
        TrainConfig.from_yaml(bad).validate(check_data=False)
    bad["model"] = {"family": "walrus", "init_from": "bundled"}
    with pytest.raises(TrainConfigError, match="bundled AViT"):
        TrainConfig.from_yaml(bad).validate(check_data=False)


def test_every_frame_training_needs_a_causal_model(tmp_path) -> None:
    torch.manual_seed(0)
    avit = AViT(ModelConfig.preset("tiny"), registry="physviz")
    from physviz.train.loop import run

    ds = _ds()
    from physviz.train.sources import XarraySource

    src = XarraySource(ds, None, 2, name="toy")
    cfg = {"output_dir": str(tmp_path / "out"), "data": [{"path": "<xarray>", "name": "toy", "n_steps_input": 2}],
           "n_steps_input": 2, "steps": 1, "progress": False, "model": {"every_frame": True}, "valid_batches": 0}
    with pytest.raises(TrainConfigError, match="model.every_frame=true needs a model causal in time"):
        run(cfg, model=avit, sources=[src])
    with pytest.raises(PhysvizError, match="causal in time"):
        _walrus(causal_in_time=False)(torch.zeros(1, 3, 2, 16, 16), torch.tensor([3, 4]), [1, 1], every_frame=True)
