"""Zero-shot evaluation on physics outside the corpus: the committed FiPy sets, the stage's numbers, the card section."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from physviz.errors import ParameterError
from physviz.recipes.evaluate import evaluate, load_eval, persistence
from physviz.recipes.zero_shot import change_per_frame, evaluate_zero_shot, zero_shot_files, zero_shot_section
from tests.paths import REPO

DATA = REPO / "docs" / "model_card" / "zero_shot"


def test_the_committed_sets_are_small_well_files_of_unseen_fields() -> None:
    files = zero_shot_files(["docs/model_card/zero_shot"])
    assert [f.name for f in files] == ["allen_cahn.hdf5", "heat_slow.hdf5"]
    assert sum(f.stat().st_size for f in files) < 5e6
    rates = {}
    for f in files:
        ds, fields, bcs, data = load_eval(f)
        assert data.shape[0] >= 4 and data.shape[1] >= 15 and bcs == [1, 1]
        assert ds.attrs["dataset_name"].startswith("fipy_") and "FiPy" in ds.attrs["simulation_parameters"]["solver"]
        rates[f.stem] = change_per_frame(data)
    assert 0.005 < rates["heat_slow"] < 0.02  # about 1% per frame: the slowly evolving one
    assert rates["allen_cahn"] > 5 * rates["heat_slow"]
    with pytest.raises(ParameterError, match="neither an HDF5 file nor a folder"):
        zero_shot_files(["no/such/place"])


def test_change_per_frame_is_the_relative_rms_step() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2, 1, 1, 16, 16))
    data = base * (1 + 0.01 * np.arange(6))[None, :, None, None, None]  # each frame 1% more of the same pattern
    assert change_per_frame(data) == pytest.approx(0.01, rel=0.05)


def test_zero_shot_stage_measures_model_and_persistence(tmp_path: Path) -> None:
    import torch

    from physviz.fields import open_fields, to_well
    from physviz.model.avit import AViT
    from physviz.model.config import ModelConfig
    from physviz.model.registry import FieldRegistry

    cut = to_well(open_fields(DATA / "heat_slow.hdf5").isel(trajectory=slice(0, 1), time=slice(0, 8)),
                  tmp_path / "heat.hdf5", stats=False)
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny")
    model = AViT(cfg, registry=FieldRegistry.physviz(n_slots=cfg.n_states))
    out = evaluate_zero_shot(model, [cut], context=4, steps=3)
    row = out["systems"]["heat"]
    _, fields, _, data = load_eval(cut)
    ref = evaluate(persistence, data, 4, 3, fields)
    assert row["persistence"]["one_step"] == pytest.approx(ref.one_step)
    assert row["persistence"]["rollout_3"] == pytest.approx(ref.mean_rollout(3))
    assert row["one_step_no_worse"] == (row["model"]["one_step"] <= ref.one_step) == out["floor_held"]
    text = zero_shot_section(out)
    assert "## Zero-shot on physics it never saw" in text and f"| heat (temperature) | {100 * row['change_per_frame']:.1f}% |" in text
    assert ("**holds**" in text) == out["floor_held"]
    ratio = row["model"]["one_step"] / row["persistence"]["one_step"]
    assert f"over persistence's: heat {ratio:.2f}." in text
    assert zero_shot_section(None) == ""  # a card without zero-shot results reads as before


def test_the_generating_script_reproduces_the_committed_data() -> None:
    if importlib.util.find_spec("fipy") is None:
        pytest.skip("FiPy is the optional extra physviz[external]")
    import runpy

    mod = runpy.run_path(str(REPO / "scripts" / "make_external_data.py"))
    ds = mod["make"]("heat", "temperature", 1, 3)
    stored = load_eval(DATA / "heat_slow.hdf5")[3]
    np.testing.assert_allclose(ds["temperature"].values[0], stored[0, :3, 0], rtol=1e-5)
