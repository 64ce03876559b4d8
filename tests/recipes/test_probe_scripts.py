"""The experiment log's probe scripts (scripts/perturbation_gain.py, rollout_probe.py, transfer_probe.py) at toy size."""
from __future__ import annotations

import json
import math
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

from physviz.recipes.recipe import Recipe
from tests.paths import REPO


def _script(name: str) -> dict[str, Any]:
    return runpy.run_path(str(REPO / "scripts" / name))


def _toy_recipes(monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    """Recipe.load returns the named recipe with `change` applied (the scripts load theirs by name)."""
    load = Recipe.load.__func__

    def toy(cls: type, name: str, *a: Any, **kw: Any) -> Recipe:
        recipe = load(cls, name, *a, **kw)
        change(recipe)
        return recipe

    monkeypatch.setattr(Recipe, "load", classmethod(toy))


def _tiny_train(recipe: Recipe) -> None:
    recipe.train = {**recipe.train, "batch": {"tokens": 256}, "log_every": 1, "checkpoint_every": 0,
                    "model": {"preset": "tiny", "overrides": {"context_frames": 4}}}


@pytest.mark.slow
def test_perturbation_gain_prints_a_finite_gain_per_dataset(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    mod = _script("perturbation_gain.py")
    monkeypatch.setattr(sys, "argv", ["perturbation_gain.py", "--eps", "1e-2", "1e-3"])
    mod["main"]()
    rows = [line.strip("|").split("|") for line in capsys.readouterr().out.splitlines()[2:]]
    names = [r[0].strip() for r in rows]
    assert names[:3] == ["navier_stokes", "gray_scott", "shallow_water"] and "zero_shot/heat_slow" in names
    gains = {r[0].strip(): [float(v) for v in r[1:]] for r in rows}
    assert all(len(g) == 2 and all(math.isfinite(v) and v >= 0 for v in g) for g in gains.values())
    # on its own corpus the bundled model is smooth: the gain does not depend on eps (history.md)
    for name in ("gray_scott", "shallow_water"):
        a, b = gains[name]
        assert 0 < a and 1 / 3 < b / a < 3, (name, a, b)


def test_perturbation_gain_is_output_change_per_input_change() -> None:
    """For a linear model (twice the last frame) the gain is the same at every eps, and equals what it should."""
    import numpy as np
    import torch
    import xarray as xr

    mod = _script("perturbation_gain.py")

    class Twice(torch.nn.Module):
        def field_ids(self, fields: list[str]) -> list[int]:
            return list(range(len(fields)))

        def boundary_input(self, bcs: Any, spatial: list[str]) -> list[int]:
            return [0] * len(spatial)

        def forward(self, x: torch.Tensor, ids: Any, bcs: Any) -> torch.Tensor:
            return 2 * x[:, -1]

    values = np.random.default_rng(0).normal(size=(5, 8, 8)).astype(np.float32)
    ds = xr.Dataset({"u": (("time", "x", "y"), values)})
    context = torch.from_numpy(values[:4])
    # the moved value changes the output by 2 * eps * (the input field's std), in units of the output's std
    expected = float(2 * context.std() / (2 * context[-1]).std())
    got = mod["gains"](Twice(), ds, [1e-2, 1e-4])
    assert got == pytest.approx([expected, expected], rel=1e-2)


@pytest.mark.slow
def test_rollout_probe_trains_and_evaluates_against_persistence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture) -> None:
    from physviz.recipes.corpus import make_corpus

    def change(recipe: Recipe) -> None:
        recipe.only, recipe.corpus_scale, recipe.eval_trajectories, recipe.eval_steps = ["fitzhugh_nagumo"], 0.01, 1, 15
        _tiny_train(recipe)

    _toy_recipes(monkeypatch, change)
    make_corpus(Recipe.load("bundled"), tmp_path, progress=False)
    mod = _script("rollout_probe.py")
    assert mod["main"]([str(tmp_path)]) == 2  # too few arguments: the usage, nothing run
    assert mod["main"]([str(tmp_path), "probe", "2", "2", "all", "1e-4"]) == 0
    assert (tmp_path / "rollout" / "probe" / "final.safetensors").exists()
    out = json.loads((tmp_path / "rollout" / "probe.json").read_text())
    assert (out["steps"], out["rollout_steps"], out["gradient"]) == (2, 2, "all")
    row = out["skill"]["fitzhugh_nagumo"]
    assert math.isfinite(row["model"]["one_step"]) and math.isfinite(row["model"]["rollout_10"])
    assert 0 < row["persistence"]["one_step"] < row["persistence"]["rollout_10"]
    assert capsys.readouterr().out.startswith("fitzhugh_nagumo")
    # "shipped" with 0 steps evaluates the bundled checkpoint: another model, the same persistence
    assert mod["main"]([str(tmp_path), "shipped", "0", "1"]) == 0
    shipped = json.loads((tmp_path / "rollout" / "shipped.json").read_text())["skill"]["fitzhugh_nagumo"]
    assert shipped["persistence"] == row["persistence"] and shipped["model"] != row["model"]
    assert not (tmp_path / "rollout" / "shipped").exists()


@pytest.mark.slow
def test_transfer_probe_runs_both_arms_and_appends_a_row_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    from physviz.recipes.transfer import _transfer_data

    def change(recipe: Recipe) -> None:
        _tiny_train(recipe)
        ex = recipe.transfer
        ex.tasks = {"near": {"system": "euler", "regime": "low_mach", "resolution": 16, "steps": 9}}
        ex.sizes, ex.test_trajectories, ex.finetune_steps = [1], 1, 2

    _toy_recipes(monkeypatch, change)
    _transfer_data(Recipe.load("bundled_transfer_fixed"), tmp_path, progress=False)
    mod = _script("transfer_probe.py")
    # the pretrained arm needs the transfer stage's pretraining: one clear line, nothing trained
    assert mod["main"]([str(tmp_path), "warm", "{}", "near:1"]) == 2
    assert "run the transfer stage's pretraining first" in capsys.readouterr().err
    assert not (tmp_path / "probe").exists()

    assert mod["main"]([str(tmp_path), "cold", "{scratch: true}", "near:1"]) == 0
    cold = tmp_path / "probe" / "cold" / "near_n1" / "final.safetensors"
    assert cold.exists()
    # a pretrained arm from another checkpoint, with a finetune setting and a transfer setting
    variant = f"{{init_from: {cold}, blocks_lr_scale: 2.0, transfer: {{finetune_lr: 1.0e-4}}}}"
    assert mod["main"]([str(tmp_path), "warm", variant, "near:1"]) == 0
    cfg = (tmp_path / "probe" / "warm" / "near_n1" / "config.yaml").read_text()
    assert str(cold) in cfg and "blocks_lr_scale: 2.0" in cfg and "lr: 0.0001" in cfg
    rows = [json.loads(line) for line in (tmp_path / "probe.jsonl").read_text().splitlines()]
    assert [r["probe"] for r in rows] == ["cold", "warm"]
    for r in rows:
        assert (r["task"], r["n"]) == ("near", 1) and math.isfinite(r["one_step"]) and math.isfinite(r["rollout_5"])
        assert set(r["per_field_one_step"]) >= {"density", "pressure"}
    assert rows[0]["one_step"] != rows[1]["one_step"]
