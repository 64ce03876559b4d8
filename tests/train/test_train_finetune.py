"""Fine-tuning: new fields get embedding slots and their loss falls; freeze presets train different parameters;
MPP checkpoints fine-tune on one process; the result opens with physviz.load_model."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import physviz
from physviz.train import run
from physviz.train.config import TrainConfigError

from tests.paths import REPO
MPP_FIXTURE = REPO.parent / "shared" / "fixtures" / "mpp_small" / "state_dict.pt"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
SMALL = {"embed_dim": 64, "num_heads": 2, "head_dim": 32, "processor_blocks": 2}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model with MPP's 12-slot registry, pretrained briefly on incompressible Navier-Stokes velocities."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ft")
    physviz.simulate("navier_stokes", 4, resolution=32, steps=12, seed=0, out=root / "ns", progress=False)
    result = run({
        "output_dir": str(root / "pre"),
        "model": {"preset": "tiny", "registry": "mpp", "overrides": {**SMALL, "n_states": 12}},
        "data": [{"path": str(root / "ns"), "family": "incompNS", "fields": ["velocity_x", "velocity_y"]}],
        "steps": 10, "optimizer": {"lr": 2e-3}, "progress": False,
    })
    assert result.losses()[-1] < result.losses()[0]
    return result.final_checkpoint


@pytest.fixture(scope="module")
def new_physics() -> object:
    """FitzHugh-Nagumo fields under names no registry knows, plus a derived third field."""
    ds = physviz.simulate("fitzhugh_nagumo", 4, resolution=32, steps=16, seed=1, progress=False)
    ds = ds.rename({"activator": "salinity", "inhibitor": "turbidity"})
    ds["chlorophyll"] = ds.salinity ** 2
    return ds


def test_new_fields_are_appended_and_their_loss_falls(pretrained: Path, new_physics, tmp_path: Path) -> None:
    model = physviz.load_model(pretrained)
    assert model.config.n_states == 12 and len(model.registry) == 10
    assert not {"salinity", "turbidity", "chlorophyll"} & set(model.registry.names())
    result = physviz.finetune(model, new_physics, steps=30, lr=3e-3, n_steps_input=3, tokens=1024, progress=False,
                              output_dir=tmp_path / "ft", valid_ds=new_physics.isel(trajectory=[0]))
    # two free slots (10, 11) and one more: the embedding and decoder head widened by one
    assert model.config.n_states == 13 and result.model is model
    assert [model.registry.lookup(n) for n in ("salinity", "turbidity", "chlorophyll")] == [10, 11, 12]
    losses = result.losses()
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5]), losses
    assert result.metrics[-1]["kind"] == "done" and "vrmse" in result.metrics[-2]
    saved = physviz.load_model(tmp_path / "ft" / "final.safetensors")
    assert saved.config.n_states == 13 and saved.registry.to_dict() == model.registry.to_dict()
    assert saved.metadata["added_fields"] == ["chlorophyll", "salinity", "turbidity"]
    x = torch.from_numpy(np.stack([new_physics[c].values[0, :3] for c in ("salinity", "turbidity", "chlorophyll")], 1))
    ids = saved.field_ids(["salinity", "turbidity", "chlorophyll"])
    with torch.no_grad():
        np.testing.assert_allclose(saved(x[None], ids, [0, 0]).numpy(), model.eval()(x[None], ids, [0, 0]).numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_finetune_stops_early_and_returns_the_best_validation_weights(pretrained: Path, new_physics,
                                                                      tmp_path: Path) -> None:
    from physviz.train.metrics import read_metrics

    ds = new_physics.drop_vars("chlorophyll")
    model = physviz.load_model(pretrained)
    result = physviz.finetune(model, ds.isel(trajectory=[0, 1, 2]), ds.isel(trajectory=[3]), steps=40, lr=3e-3,
                              n_steps_input=3, tokens=1024, valid_every=2, progress=False, output_dir=tmp_path / "es",
                              early_stopping={"patience": 2, "min_rel_delta": 0.99})
    done = [r for r in read_metrics(tmp_path / "es" / "metrics.jsonl") if r["kind"] == "done"][-1]
    assert result.steps == 6 and done["best_step"] == 2 and done["stopped_early"] is True
    best = torch.load(tmp_path / "es" / "best.pt", weights_only=True)["model"]
    live = result.model.state_dict()
    assert all(torch.equal(v, live[k]) for k, v in best.items())  # the model in the notebook is step 2's
    with pytest.raises(TrainConfigError, match="early_stopping.patience=2 needs validations"):
        physviz.finetune(physviz.load_model(pretrained), ds, steps=4, progress=False,
                         early_stopping={"patience": 2})


def _changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_freeze_presets_train_different_parameter_sets(pretrained: Path, new_physics) -> None:
    ds = new_physics.drop_vars("chlorophyll")
    changed = {}
    for preset in ("none", "processor", "middle"):
        model = physviz.load_model(pretrained)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        physviz.finetune(model, ds, steps=2, lr=1e-3, freeze=preset, n_steps_input=2, tokens=512, progress=False,
                         weight_decay=0.0)
        changed[preset] = _changed(before, model.state_dict())
    blocks = {k for k in changed["none"] if k.startswith("blocks.")}
    assert blocks and changed["none"] - blocks
    assert not {k for k in changed["processor"] if k.startswith("blocks.")}
    assert {k.split(".")[0] for k in changed["processor"]} == {"space_bag", "embed", "debed"}
    assert {"space_bag.weight", "debed.out_kernel", "debed.out_bias"} <= changed["middle"]
    assert changed["middle"] <= {"space_bag.weight", "space_bag.bias", "debed.out_kernel", "debed.out_bias"}
    assert changed["middle"] < changed["processor"] < changed["none"]


def test_blocks_lr_scale_moves_the_processor_less(pretrained: Path, new_physics) -> None:
    ds = new_physics.drop_vars("chlorophyll")
    moved = {}
    for scale in (1.0, 0.1):
        model = physviz.load_model(pretrained)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        physviz.finetune(model, ds, steps=3, lr=1e-3, blocks_lr_scale=scale, n_steps_input=2, tokens=512,
                         progress=False, weight_decay=0.0, warmup_steps=0)
        after = model.state_dict()
        moved[scale] = {part: sum((after[k] - before[k]).abs().sum().item() for k in after if k.startswith(part))
                        for part in ("blocks.", "space_bag.", "debed.")}
    # Adam's steps are about lr each, so the blocks move about 10x less; the other parts as much as before
    assert moved[0.1]["blocks."] < 0.2 * moved[1.0]["blocks."]
    for part in ("space_bag.", "debed."):
        assert 0.5 * moved[1.0][part] < moved[0.1][part] < 2 * moved[1.0][part]


def test_bad_blocks_lr_scale_is_named(pretrained: Path, new_physics) -> None:
    from physviz.train.config import TrainConfigError

    with pytest.raises(TrainConfigError, match="blocks_lr_scale=0"):
        physviz.finetune(physviz.load_model(pretrained), new_physics, steps=1, blocks_lr_scale=0, progress=False)


@pytest.mark.skipif(not MPP_FIXTURE.is_file(), reason="the MPP fixture is not here")
def test_cli_finetunes_an_mpp_checkpoint_on_one_process(new_physics, tmp_path: Path) -> None:
    """The official MPP weights (which MPP's own code can only fine-tune under DDP) on one CPU process."""
    data = tmp_path / "fn"
    from physviz.fields.simulate.run import write_splits

    write_splits(new_physics.drop_vars("chlorophyll"), data)
    cfg = {
        "output_dir": str(tmp_path / "out"),
        "model": {"init_from": str(MPP_FIXTURE)},
        "data": [{"path": str(data), "name": "fn"}],
        "steps": 4, "n_steps_input": 2, "batch": {"tokens": 64},
        "finetune": {"freeze": "middle"}, "optimizer": {"lr": 1e-3}, "progress": False,
    }
    path = tmp_path / "ft.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "physviz.train", str(path)], capture_output=True, text=True, env=ENV,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "new fields ['salinity', 'turbidity']" in proc.stderr
    lines = [json.loads(s) for s in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["kind"] == "done"
    model = physviz.load_model(tmp_path / "out" / "final.safetensors")
    mpp = physviz.load_model(MPP_FIXTURE)
    assert model.config.embed_dim == 128 and model.config.n_states == 12 and model.registry.lookup("salinity") == 10
    moved = [k for k, v in mpp.state_dict().items() if not torch.equal(v, model.state_dict()[k])]
    assert set(moved) <= {"space_bag.weight", "space_bag.bias", "debed.out_kernel", "debed.out_bias"} and moved
    assert model.metadata["init_from"].endswith("state_dict.pt")


def test_unknown_field_without_append_is_a_config_error(pretrained: Path, new_physics, tmp_path: Path) -> None:
    from physviz.train.config import TrainConfigError

    model = physviz.load_model(pretrained)
    with pytest.raises(TrainConfigError, match="salinity.*finetune.append_fields"):
        physviz.finetune(model, new_physics, steps=1, append_fields=False, progress=False, output_dir=tmp_path / "x")
    assert not (tmp_path / "x" / "metrics.jsonl").exists()


def test_options_come_from_keywords_a_mapping_or_the_dataclass_and_unknown_ones_are_named() -> None:
    from physviz.train.api import FinetuneOptions
    from physviz.train.config import TrainConfigError

    opts = FinetuneOptions.from_dict({"steps": 50, "lr": 3e-4, "rollout": {"steps": 2}})
    cfg = opts.train_config("ds", 3, "out", validate=False)
    assert cfg.steps == 50 and cfg.optimizer.lr == 3e-4 and cfg.optimizer.warmup_steps == 5
    assert cfg.rollout.steps == 2 and cfg.valid_batches == 0 and cfg.resume == "never"
    assert cfg.data[0].n_steps_input == 3 and cfg.data[0].path == "<xarray>"
    cfg = opts.replace(warmup_steps=0, freeze="middle").train_config("ds", 3, "out", validate=True)
    assert cfg.optimizer.warmup_steps == 0 and cfg.finetune.freeze == "middle" and cfg.valid_batches == 4
    for config, overrides, words in ((None, {"stepz": 3}, "Unknown setting 'stepz' in the fine-tune options"),
                                     ({"reset_refiner": True}, {}, "Unknown setting 'reset_refiner'"),
                                     (opts, {"optimizer": {"lr": 1e-3}}, "Unknown setting 'optimizer'"),
                                     (None, {"lr": 0}, "lr=0.0 in the fine-tune options must be above 0"),
                                     (None, {"freeze": "all"}, "freeze='all'")):
        with pytest.raises(TrainConfigError) as info:
            physviz.finetune(None, None, config=config, **overrides)
        assert words in str(info.value) and "\n" not in str(info.value)


def test_the_options_table_lists_every_option_once_in_the_docstring_and_the_readme() -> None:
    import dataclasses
    import re

    from physviz.train.api import FinetuneOptions

    row = re.compile(r"^\s*\| ``(\w+)`` \|.*\|$", re.M)
    doc = [m.group(0).strip() for m in row.finditer(FinetuneOptions.__doc__ or "")]
    assert [row.match(r).group(1) for r in doc] == [f.name for f in dataclasses.fields(FinetuneOptions)]
    readme = [m.group(0).strip() for m in row.finditer((REPO / "README.md").read_text())]
    assert readme == doc
