"""Hostile arguments to `physviz.rollout` and `physviz rollout`: each is refused with one PhysvizError naming it."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from physviz.errors import OptionError, ParameterError, PhysvizError, SchemaError
from physviz.fields.simulate import simulate
from physviz.model import AViT, ModelConfig, iter_rollout, rollout

FIELDS = ["density", "pressure", "velocity_x", "velocity_y"]


@pytest.fixture(scope="module")
def truth():
    return simulate("euler", 1, regime="low_mach", resolution=32, steps=8, seed=5, progress=False)


@pytest.fixture(scope="module")
def model() -> AViT:
    torch.manual_seed(0)
    return AViT(ModelConfig.preset("tiny", embed_dim=64, num_heads=2, head_dim=32, processor_blocks=2),
                registry="physviz").eval()


def _with_bcs(truth, bcs):
    ds = truth.copy()
    ds.attrs = {**truth.attrs, "boundary_conditions": bcs}
    return ds


@pytest.mark.parametrize("steps", ["3", 2.5, True, None, np.float64(3)])
def test_steps_must_be_an_int(model, truth, steps) -> None:
    with pytest.raises(ParameterError, match=r"steps.*int"):
        rollout(model, truth, steps, fields=FIELDS)


def test_numpy_integers_are_ints(model, truth) -> None:
    assert rollout(model, truth, np.int64(2), context=np.int32(2), fields=FIELDS).sizes["time"] == 2


@pytest.mark.parametrize("name,value", [("context", "2"), ("start", 2.0), ("ensemble", "2"), ("jitter_seed", 1.5)])
def test_other_integer_arguments_are_checked(model, truth, name, value) -> None:
    with pytest.raises(ParameterError, match=rf"{name}.*int"):
        rollout(model, truth, 2, fields=FIELDS, **{name: value})


@pytest.mark.parametrize("ensemble", [0, -1])
def test_ensemble_below_one_is_refused(model, truth, ensemble) -> None:
    with pytest.raises(ParameterError, match="ensemble"):
        rollout(model, truth, 2, fields=FIELDS, ensemble=ensemble)
    with pytest.raises(ParameterError, match="ensemble"):
        next(iter_rollout(model, truth, 2, fields=FIELDS, ensemble=ensemble))


@pytest.mark.parametrize("bcs", ["periodic", ["periodic", "periodic"], 3])
def test_boundary_conditions_not_a_mapping_are_refused(model, truth, bcs) -> None:
    with pytest.raises(SchemaError, match=r"boundary_conditions.*mapping"):
        rollout(model, _with_bcs(truth, bcs), 2, fields=FIELDS)


def test_boundary_conditions_as_a_json_string_are_read(model, truth) -> None:
    """NetCDF stores dict attrs as JSON text; that form is well defined and read."""
    bcs = dict(truth.attrs["boundary_conditions"])
    pred = rollout(model, _with_bcs(truth, json.dumps(bcs)), 2, fields=FIELDS)
    assert pred.attrs["rollout"]["bcs"] == [1, 1]


@pytest.mark.parametrize("bcs", [{"x": "sponge", "y": "periodic"}, {"x": ["periodic", "sponge"], "y": "wall"},
                                 {"x": 1, "y": "periodic"}])
def test_unknown_boundary_conditions_are_refused_naming_the_known_ones(model, truth, bcs) -> None:
    with pytest.raises(SchemaError) as info:
        rollout(model, _with_bcs(truth, bcs), 2, fields=FIELDS)
    msg = str(info.value)
    assert "'x'" in msg and "periodic" in msg and "wall" in msg and "open" in msg


def test_known_boundary_conditions_give_their_flags(model, truth) -> None:
    pred = rollout(model, _with_bcs(truth, {"x": "wall", "y": ["periodic", "periodic"]}), 1, fields=FIELDS)
    assert pred.attrs["rollout"]["bcs"] == [0, 1]


@pytest.mark.parametrize("ds", [np.zeros((4, 32, 32), np.float32), {"density": np.zeros((4, 32, 32))}, "truth.nc"])
def test_something_else_than_a_dataset_is_refused(model, ds) -> None:
    with pytest.raises(OptionError, match=r"xarray Dataset.*open_fields"):
        rollout(model, ds, 2)


def test_a_data_array_is_refused_with_how_to_make_a_dataset(model, truth) -> None:
    with pytest.raises(OptionError, match=r"to_dataset"):
        rollout(model, truth["density"], 2)


@pytest.mark.parametrize("device", ["tpu", "cuda:99", "", 3])
def test_unknown_devices_are_refused_listing_the_available_ones(model, truth, device) -> None:
    with pytest.raises(ParameterError) as info:
        rollout(model, truth, 2, fields=FIELDS, device=device)
    msg = str(info.value)
    assert "device" in msg and "'cpu'" in msg and "'auto'" in msg


def test_fields_must_be_a_list_of_names(model, truth) -> None:
    with pytest.raises(ParameterError, match=r"fields.*list"):
        rollout(model, truth, 2, fields="density")


def test_the_cli_names_a_bad_device_and_steps(model, truth, tmp_path, capsys) -> None:
    from physviz.cli.main import main
    from physviz.fields import to_well
    from physviz.model.checkpoint import save_model

    path = to_well(truth, tmp_path / "truth.hdf5", stats=False)
    weights = save_model(model, tmp_path / "m.safetensors")
    out = tmp_path / "pred.hdf5"
    assert main(["rollout", str(path), "-o", str(out), "--model", str(weights), "--device", "tpu", "-q"]) == 2
    err = capsys.readouterr().err
    assert "tpu" in err and "'cpu'" in err and not out.exists()
    assert main(["rollout", str(path), "-o", str(out), "--model", str(weights), "--steps", "0", "-q"]) == 2
    assert "steps" in capsys.readouterr().err and not out.exists()
    assert main(["rollout", str(path), "-o", str(out), "--model", str(weights), "--steps", "2", "-q"]) == 0
    assert out.exists()


def test_each_refusal_is_a_physviz_error(model, truth) -> None:
    for kwargs in ({"steps": "3"}, {"steps": 2, "device": "tpu"}, {"steps": 2, "ensemble": 0}):
        with pytest.raises(PhysvizError):
            rollout(model, truth, fields=FIELDS, **kwargs)
