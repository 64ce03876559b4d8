"""field_dropout trains a generic slot that every field passes through in turn; a field the model never
trained is then read through it (rollouts warn, the zero-shot evaluation records it)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import physviz
from physviz.errors import ParameterError
from physviz.model import AViT
from physviz.model.registry import GENERIC, FieldRegistry, read_through_generic
from physviz.model.surgery import average_slot
from physviz.train import run
from physviz.train.config import TrainConfigError

SMALL = {"embed_dim": 64, "num_heads": 2, "head_dim": 32, "processor_blocks": 1, "delta_prediction": True,
         "refine_width": 4}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """A small model trained 12 steps on FitzHugh-Nagumo with field_dropout 0.5, and the data's slots."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fd")
    physviz.simulate("fitzhugh_nagumo", 3, resolution=32, steps=10, seed=0, out=root / "fn", progress=False)
    result = run({"output_dir": str(root / "run"), "model": {"preset": "tiny", "overrides": SMALL},
                  "data": [{"path": str(root / "fn")}], "steps": 12, "field_dropout": 0.5,
                  "optimizer": {"lr": 2e-3}, "progress": False, "seed": 3})
    slots = AViT("tiny", **SMALL).field_ids(["activator", "inhibitor"]).tolist()
    return result.final_checkpoint, slots


def test_the_generic_slot_is_added_recorded_and_trained(trained: tuple[Path, list[int]]) -> None:
    path, slots = trained
    model = physviz.load_model(path)
    assert GENERIC in model.registry
    g = int(model.field_ids([GENERIC])[0])
    assert g not in slots
    assert model.metadata["trained_fields"] == sorted(["activator", "inhibitor", GENERIC])
    assert GENERIC in model.metadata["added_fields"]
    # it started as the mean of the data's slots; the dropped micro-batches moved it away from that mean
    head = model.refine.w_out.detach()
    assert float(head[g].abs().sum()) > 0
    assert not torch.allclose(head[g], head[slots].mean(0))


def test_average_slot_starts_a_slot_as_the_mean_of_others() -> None:
    torch.manual_seed(0)
    m = AViT("tiny", **SMALL)
    with torch.no_grad():
        m.refine.w_out.normal_()
    average_slot(m, 20, [3, 5])
    for p, axis in [(m.space_bag.weight, 1), (m.debed.out_kernel, 1), (m.refine.w_in, 2), (m.refine.w_out, 0)]:
        torch.testing.assert_close(p.select(axis, 20), (p.select(axis, 3) + p.select(axis, 5)) / 2)
    with pytest.raises(ParameterError, match="average_slot"):
        average_slot(m, 99, [3])
    with pytest.raises(ParameterError, match="at least one source"):
        average_slot(m, 20, [])


def test_field_dropout_must_be_a_share() -> None:
    with pytest.raises(TrainConfigError, match="field_dropout"):
        run({"output_dir": "/tmp/never", "data": [{"path": "/nowhere"}], "field_dropout": 1.0})


def test_only_untrained_fields_of_a_model_with_a_generic_slot_go_through_it() -> None:
    reg = FieldRegistry.physviz()
    assert read_through_generic(reg, ["activator"], ["activator", "temperature"]) == []  # no generic slot
    reg.add(GENERIC)
    assert read_through_generic(reg, ["activator", GENERIC], ["activator", "temperature"]) == ["temperature"]
    assert read_through_generic(reg, None, ["activator", "temperature"]) == []  # no record of what it trained


def test_a_rollout_reads_an_untrained_field_through_the_generic_slot(trained: tuple[Path, list[int]]) -> None:
    model = physviz.load_model(trained[0])
    ds = physviz.simulate("fitzhugh_nagumo", 1, resolution=32, steps=6, seed=5, progress=False)
    ds = ds.rename({"inhibitor": "temperature"})  # a registry name this model never trained
    with pytest.warns(UserWarning, match=r"never trained \['temperature'\].*generic slot"):
        auto = physviz.rollout(model, ds, steps=2, context=4)
    explicit = physviz.rollout(model, ds, steps=2, context=4, field_map={"temperature": GENERIC})
    np.testing.assert_allclose(auto["temperature"].values, explicit["temperature"].values)
    own = physviz.rollout(model, ds.rename({"temperature": "inhibitor"}), steps=2, context=4)
    assert not np.allclose(auto["temperature"].values, own["inhibitor"].values)
    # a name no registry knows goes the same way, and the warning names the trained field it resembles
    with pytest.warns(UserWarning, match=r"'inhibitor_B' is probably 'inhibitor'"):
        physviz.rollout(model, ds.rename({"temperature": "inhibitor_B"}), steps=2, context=4)


def test_zero_shot_records_the_fields_read_through_the_generic_slot(trained: tuple[Path, list[int]],
                                                                   tmp_path: Path) -> None:
    from physviz.fields import to_well
    from physviz.recipes.zero_shot import evaluate_zero_shot, zero_shot_section

    model = physviz.load_model(trained[0])
    ds = physviz.simulate("fitzhugh_nagumo", 2, resolution=32, steps=8, seed=6, progress=False)
    to_well(ds.rename({"inhibitor": "temperature"}), tmp_path / "renamed.hdf5", stats=False)
    zero = evaluate_zero_shot(model, [tmp_path / "renamed.hdf5"], context=4, steps=2)
    assert zero["systems"]["renamed"]["generic_fields"] == ["temperature"]
    assert "never trained temperature: it read them through its generic slot" in zero_shot_section(zero)


def test_zero_shot_says_when_a_field_went_through_its_own_untrained_slot(tmp_path: Path) -> None:
    from physviz.fields import to_well
    from physviz.recipes.zero_shot import evaluate_zero_shot, zero_shot_section

    model = AViT("tiny", **SMALL).eval()  # no generic slot
    ds = physviz.simulate("fitzhugh_nagumo", 2, resolution=32, steps=8, seed=7, progress=False)
    to_well(ds, tmp_path / "fn.hdf5", stats=False)
    zero = evaluate_zero_shot(model, [tmp_path / "fn.hdf5"], context=4, steps=2, trained=["activator"])
    row = zero["systems"]["fn"]
    assert row["untrained_fields"] == ["inhibitor"] and row["generic_fields"] == []
    section = zero_shot_section(zero)
    assert "never trained inhibitor: it read them through their own slots" in section
    assert "generic slot" not in section


def test_a_fine_tune_starts_an_untrained_field_from_the_generic_slot(trained: tuple[Path, list[int]],
                                                                    tmp_path: Path) -> None:
    """Before it has moved, the fine-tuned model predicts the new field as the start model's zero-shot rollout does."""
    from physviz.fields import to_well

    start = physviz.load_model(trained[0])
    ds = physviz.simulate("fitzhugh_nagumo", 2, resolution=32, steps=8, seed=8, progress=False)
    ds = ds.rename({"inhibitor": "temperature"})
    to_well(ds, tmp_path / "data" / "renamed.hdf5")
    tuned = {}
    for flag in (True, False):
        result = run({"output_dir": str(tmp_path / f"ft_{flag}"), "model": {"init_from": str(trained[0])},
                      "data": [{"path": str(tmp_path / "data" / "renamed.hdf5")}], "steps": 1,
                      "finetune": {"untrained_from_generic": flag}, "optimizer": {"lr": 1e-12, "weight_decay": 0.0},
                      "progress": False, "seed": 0})
        tuned[flag] = physviz.load_model(result.final_checkpoint)
    assert tuned[True].metadata["started_from_generic"] == ["temperature"]
    assert "started_from_generic" not in tuned[False].metadata
    assert "temperature" in tuned[True].metadata["trained_fields"]
    g, t = int(start.field_ids([GENERIC])[0]), int(start.field_ids(["temperature"])[0])
    torch.testing.assert_close(tuned[True].refine.w_out[t], start.refine.w_out[g])
    torch.testing.assert_close(tuned[False].refine.w_out[t], start.refine.w_out[t])  # untrained: still zero
    with pytest.warns(UserWarning, match="generic slot"):
        zero_shot = physviz.rollout(start, ds.isel(trajectory=0), steps=2, context=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fine-tune trained it: read through its own slot, no warning
        first = physviz.rollout(tuned[True], ds.isel(trajectory=0), steps=2, context=4)
    np.testing.assert_allclose(first["temperature"].values, zero_shot["temperature"].values, rtol=0, atol=1e-5)
    unchanged = physviz.rollout(tuned[False], ds.isel(trajectory=0), steps=2, context=4)
    assert not np.allclose(unchanged["temperature"].values, zero_shot["temperature"].values, atol=1e-3)
    # physviz.finetune on a Dataset does the same
    api = physviz.finetune(physviz.load_model(trained[0]), ds, steps=1, lr=1e-12, weight_decay=0.0, progress=False)
    assert api.model.metadata["started_from_generic"] == ["temperature"]
    torch.testing.assert_close(api.model.refine.w_out[t], start.refine.w_out[g])


def test_a_fine_tune_of_a_checkpoint_without_a_record_keeps_its_fields_its_own(trained: tuple[Path, list[int]],
                                                                              tmp_path: Path) -> None:
    """A start without a trained_fields record (an older checkpoint) reads every field through its own slot; after a
    fine-tune with field_dropout on other fields, the fields it knew are still read so, not through the generic slot."""
    from physviz.fields import to_well

    start = physviz.load_model(trained[0])
    del start.metadata["trained_fields"]
    ds = physviz.simulate("fitzhugh_nagumo", 2, resolution=32, steps=8, seed=9, progress=False)
    to_well(ds.rename({"inhibitor": "temperature"}), tmp_path / "data" / "renamed.hdf5")
    result = run({"output_dir": str(tmp_path / "ft"), "data": [{"path": str(tmp_path / "data" / "renamed.hdf5")}],
                  "steps": 2, "field_dropout": 0.5, "progress": False, "seed": 0}, model=start)
    tuned = physviz.load_model(result.final_checkpoint)
    record = tuned.metadata["trained_fields"]
    assert {"activator", "inhibitor", "temperature", GENERIC} <= set(record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inhibitor: a field of the start model, read through its own slot
        physviz.rollout(tuned, ds.isel(trajectory=0), steps=1, context=4)
    # a fresh model (no metadata) starts with no trained fields: the record is this run's
    fresh = run({"output_dir": str(tmp_path / "fresh"), "model": {"preset": "tiny", "overrides": SMALL},
                 "data": [{"path": str(tmp_path / "data" / "renamed.hdf5")}], "steps": 1, "field_dropout": 0.5,
                 "progress": False, "seed": 0})
    assert physviz.load_model(fresh.final_checkpoint).metadata["trained_fields"] == sorted(
        ["activator", "temperature", GENERIC])
