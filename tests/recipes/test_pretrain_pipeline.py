"""The pretraining recipe end to end on a small corpus, and the skill evaluation it reports."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from physviz.analysis.error_metrics import vrmse_array as vrmse
from physviz.errors import ParameterError
from physviz.model.pretrained import pretrained_path
from physviz.recipes.evaluate import autoregress, evaluate, live_trajectories, persistence
from physviz.recipes.recipe import Recipe, RecipeError
from tests.paths import REPO


def test_vrmse_matches_the_analysis_layer() -> None:
    from physviz.analysis import vrmse as vrmse_xr

    rng = np.random.default_rng(0)
    pred, truth = rng.normal(size=(3, 2, 16, 16)), rng.normal(size=(3, 2, 16, 16))
    dims = ("trajectory", "field", "x", "y")
    ref = vrmse_xr(xr.DataArray(pred, dims=dims), xr.DataArray(truth, dims=dims)).values
    np.testing.assert_allclose(vrmse(pred, truth, 2), ref, rtol=1e-10)


def test_persistence_skill_is_the_error_of_the_last_frame() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(2, 8, 1, 8, 8)).astype(np.float32)
    skill = evaluate(persistence, data, context=3, steps=4)
    one = np.mean([vrmse(data[:, t - 1], data[:, t], 2).mean() for t in range(3, 8)])
    assert skill.one_step == pytest.approx(one, rel=1e-6)
    roll = np.mean([vrmse(data[:, 2], data[:, 3 + s], 2).mean() for s in range(4)])
    assert skill.mean_rollout(4) == pytest.approx(roll, rel=1e-6)
    assert np.isnan(skill.mean_rollout(10))
    # a predictor that feeds back: the rollout of "add one" is last + step
    out = autoregress(lambda x: x[:, -1] + 1, data[:, :3], 3)
    np.testing.assert_allclose(out[:, 2], data[:, 2] + 3, rtol=1e-6)


def test_uniform_trajectories_are_left_out() -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(size=(4, 6, 2, 8, 8)).astype(np.float32)
    data[1, 3:, 0] = 0.7  # field 0 dies out from frame 3: VRMSE would divide by 0 + 1e-7
    data[3, :, 1] = 0.0  # field 1 never varies
    data[2, :2, 1] = 0.0  # at rest in the context frames only: still measured
    assert live_trajectories(data, start=2).tolist() == [True, False, True, False]
    assert live_trajectories(data).tolist() == [True, False, False, False]
    dead = evaluate(lambda x: x[:, -1] + 0.01, data, context=2, steps=2)
    live = evaluate(lambda x: x[:, -1] + 0.01, data[live_trajectories(data, start=2)], context=2, steps=2)
    assert live.one_step < 2.0 and dead.one_step > 5 * live.one_step  # uniform frames swamp the mean


def test_fno_baseline_trains_and_predicts() -> None:
    pytest.importorskip("neuralop")
    from physviz.recipes.baselines import FNOConfig, train_fno

    rng = np.random.default_rng(2)
    data = rng.normal(size=(3, 10, 2, 16, 16)).astype(np.float32)
    model = train_fno(data, 3, seconds=60, config=FNOConfig(hidden_channels=8, modes_2d=4, max_steps=8, batch_size=4))
    assert model.steps == 8
    y = model(data[:2, :3])
    assert y.shape == (2, 2, 16, 16) and np.isfinite(y).all()


def test_fno_baseline_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fit killed mid-way resumes from its checkpoint to the same weights as one that never stopped."""
    pytest.importorskip("neuralop")
    import torch

    from physviz.recipes.baselines import FNOBaseline, FNOConfig, train_fno

    data = np.random.default_rng(3).normal(size=(4, 9, 2, 16, 16)).astype(np.float32)
    cfg = FNOConfig(hidden_channels=8, modes_2d=4, max_steps=8, points_per_batch=3 * 256, checkpoint_every=0.0)
    whole = train_fno(data, 3, seconds=1e7, config=cfg)  # a huge budget: the cosine lr stays put
    assert whole.batch_size((16, 16)) == 3 and whole.steps == 8

    ckpt = tmp_path / "fno.pt.partial"
    forward, calls = FNOBaseline._forward, []

    def interrupted(self: FNOBaseline, x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 3:  # a SIGTERM (what --fno-workers sends its workers) lets the step finish
            os.kill(os.getpid(), signal.SIGTERM)
        if len(calls) == 6:  # a KeyboardInterrupt raised mid-step (the resumed fit's third step) drops that step
            raise KeyboardInterrupt
        return forward(self, x)

    monkeypatch.setattr(FNOBaseline, "_forward", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_fno(data, 3, seconds=1e7, config=cfg, checkpoint=ckpt)
    assert len(torch.load(ckpt, weights_only=True)["losses"]) == 3
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handlers are put back
    with pytest.raises(KeyboardInterrupt):
        train_fno(data, 3, seconds=1e7, config=cfg, checkpoint=ckpt)
    assert ckpt.exists() and len(torch.load(ckpt, weights_only=True)["losses"]) == 5
    monkeypatch.setattr(FNOBaseline, "_forward", forward)
    with pytest.raises(ParameterError, match="fno.pt.partial.*budget"):
        train_fno(data, 3, seconds=60, config=cfg, checkpoint=ckpt)  # another budget: refused, file kept
    resumed = train_fno(data, 3, seconds=1e7, config=cfg, checkpoint=ckpt)
    assert resumed.steps == 8 and not ckpt.exists()
    for a, b in zip(whole.net.parameters(), resumed.net.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ParameterError, match="cannot be read"):
        train_fno(data, 3, seconds=1e7, config=cfg, checkpoint=ckpt)


def test_fno_workers_report_a_failed_baseline_by_name(tmp_path: Path) -> None:
    """A worker that fails (here: no corpus data) stops the stage with an error naming its system."""
    from physviz.recipes.baselines import train_fno_baselines

    recipe = Recipe.load("bundled")
    recipe.only = ["fitzhugh_nagumo"]
    with pytest.raises(ParameterError, match="FNO baseline of 'fitzhugh_nagumo' failed"):
        train_fno_baselines(recipe, tmp_path, 10.0, progress=False, workers=2)
    with pytest.raises(ParameterError, match="at least 1"):
        train_fno_baselines(recipe, tmp_path, 10.0, progress=False, workers=0)
    with pytest.raises(ParameterError, match=r"No dataset \['gray_scott_maze'\].*\['fitzhugh_nagumo'\]"):
        train_fno_baselines(recipe, tmp_path, 10.0, progress=False, systems=["gray_scott_maze"])
    # an empty choice trains nothing (nothing fails for want of data) and still names every dataset's file
    assert set(train_fno_baselines(recipe, tmp_path, 10.0, progress=False, workers=2, systems=[])) == {"fitzhugh_nagumo"}
    assert not (tmp_path / "fno").exists() or not list((tmp_path / "fno").iterdir())


def test_recipes_load_and_reject_unknown_keys(tmp_path: Path) -> None:
    from physviz.recipes.corpus import corpus_entries

    bundled = Recipe.load("bundled")
    names = {e.name() for e in corpus_entries(bundled)}
    assert "gray_scott_3d_spots" in names and "euler_high_mach" in names  # every 2D system and the 3D one
    assert bundled.rollout_steps == [10, 30] and bundled.eval_ensemble == 4 and bundled.finish["steps"] == 800
    assert bundled.transfer is None and "init_from" not in bundled.train["model"]
    # the candidate second generation continues the first (by a name that stays when a second ships)
    gen2 = Recipe.load("bundled_gen2")
    assert gen2.train["model"]["init_from"] == "bundled:gen1" and gen2.train["model"]["overrides"]["step_scale"] == "context"
    assert {e.name() for e in corpus_entries(gen2)} == names
    transfer = Recipe.load("bundled_transfer_fixed")
    assert not any(e.system == "euler" for e in corpus_entries(transfer))
    assert transfer.transfer is not None and transfer.transfer.finetune_steps == 300
    assert transfer.transfer.sizes == [25, 50, 100, 200] and transfer.transfer.finetune_lr == 5e-4
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrain: {}\nlearning_rate: 3\n")
    with pytest.raises(RecipeError, match="learning_rate"):
        Recipe.load(str(bad))
    bad.write_text("name: x\ntrain: {}\ncontext: 0\n")
    with pytest.raises(RecipeError, match="context=0.*at least 1"):
        Recipe.load(bad)
    bad.write_text("name: x\ntrain: {}\ntransfer: {tasks: {}, finetune_steps: many}\n")
    with pytest.raises(RecipeError, match="transfer.finetune_steps"):
        Recipe.load(bad)
    with pytest.raises(RecipeError, match="Unknown recipe.*bundled_transfer"):
        Recipe.load("no_such_recipe")


def _table(text: str, header: str) -> tuple[list[str], dict[str, list[str]]]:
    """The Markdown table of `text` whose header row starts with `header`: (headers, body rows by first cell)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip().strip("|").split("|")])
    return table[0], {row[0]: row for row in table[2:]}


def _section(text: str, title: str) -> str:
    """The text of the card's section `title` (to the next heading of the same or a higher level)."""
    level = next(line for line in text.splitlines() if line.lstrip("#").strip() == title and line.startswith("#"))
    hashes = level.split(" ")[0]
    rest = text.split(level + "\n", 1)[1]
    for line in rest.splitlines():
        if line.startswith("#") and len(line.split(" ")[0]) <= len(hashes):
            return rest.split(line, 1)[0]
    return rest


def _skill_cell(text: str, dataset: str, span: str, predictor_label: str) -> str:
    """The card's skill-table cell of `dataset` for a span ("one-step", "10-step", "30-step") and a predictor label."""
    headers, rows = _table(text, "dataset | one-step: model")
    spans = [h.split(": ")[0] if ": " in h else None for h in headers]
    col, current = None, None
    for k, h in enumerate(headers[1:], start=1):
        current = spans[k] or current
        label = h.split(": ")[-1]
        if current == span and label == predictor_label:
            col = k
    assert col is not None, (span, predictor_label, headers)
    return rows[dataset][col]


@pytest.mark.slow
def test_pipeline_makes_a_checkpoint_results_and_a_card(tmp_path: Path) -> None:
    from physviz.model import load_model
    from physviz.model.checkpoint import read_model_info
    from physviz.recipes.evaluate import floors
    from physviz.recipes.pipeline import run_pipeline

    recipe = Recipe.load("bundled")
    recipe.only = ["navier_stokes_decaying", "fitzhugh_nagumo"]
    recipe.corpus_scale = 0.01
    recipe.eval_trajectories, recipe.eval_steps, recipe.rollout_steps = 2, 16, [10]
    recipe.train = {**recipe.train, "steps": 6, "checkpoint_every": 3, "valid_every": 0, "log_every": 1,
                    "progress": False, "batch": {"tokens": 512}}
    recipe.finish = {"steps": 2, "rollout": {"steps": 2}, "optimizer": {"lr": 1e-4, "warmup_steps": 0}}
    work, weights, card = tmp_path / "work", tmp_path / "model.safetensors", tmp_path / "CARD.md"
    results = run_pipeline(recipe, work, ("corpus", "train", "fno", "bundle", "evaluate", "card"), card=card,
                           bundle_to=weights, fno_seconds=4, progress=False, fno_workers=2)
    assert set(results["skill"]) == {"navier_stokes_decaying", "fitzhugh_nagumo"}
    runs = results["fno_runs"]  # two workers at once, each with half the threads
    assert set(runs) == {"navier_stokes_decaying", "fitzhugh_nagumo"} and not list((work / "fno").glob("*.partial"))
    assert all(r["threads"] == max(1, (os.cpu_count() or 1) // 2) and r["batch"] >= 1 and r["steps"] >= 1 for r in runs.values())
    for row in results["skill"].values():
        assert {"model", "ensemble", "persistence", "fno"} <= set(row)  # the recipe asks for a jitter ensemble
        assert len(row["model"]["curve"]) == 10 and all(np.isfinite(row["model"]["curve"]))
        assert row["ensemble"]["one_step"] != row["model"]["one_step"]  # another predictor, not a copy
    info = read_model_info(weights)
    assert info["metadata"]["recipe"] == "bundled" and info["metadata"]["steps"] == 6 + 2  # training, then the finish leg
    assert "continues" not in info["metadata"]
    finish = yaml.safe_load((work / "finish.yaml").read_text())
    assert finish["rollout"]["steps"] == 2 and finish["model"]["init_from"] == str(work / "train" / "final.safetensors")
    assert finish["batch"] == {"tokens": 512} and (work / "finish" / "final.safetensors").exists()
    assert info["metadata"]["recipe_finish"] == recipe.finish
    assert load_model(weights).config.n_spatial_dims == 3
    model = results["model"]
    assert model["file"] == weights.name and model["hash"] == info["hash"] and model["steps"] == 8
    assert model["n_parameters"] == sum(p.numel() for p in load_model(weights).parameters())
    text = card.read_text()
    for fig in ("docs/model_card/rollout_vrmse.png", "docs/model_card/spectra_10_steps.png"):
        assert (tmp_path / fig).stat().st_size > 1000 and f"]({fig})" in text
    assert json.loads((work / "results.json").read_text())["skill"]
    # the card's data is written beside its figures and is the data the card was written from
    shipped = json.loads((tmp_path / "docs/model_card/results.json").read_text())
    assert shipped["skill"] == results["skill"] and shipped["recipe"]["eval_ensemble"] == 4
    # every predictor has its column, and each cell holds that predictor's number from results.json
    headers, rows = _table(text, "dataset | one-step: model")
    assert headers[:5] == ["dataset", "one-step: model", "x4 jitter", "persistence", "FNO"]
    assert set(rows) == {"navier_stokes_decaying", "fitzhugh_nagumo"}
    for name, row in shipped["skill"].items():
        for label, pred in (("model", "model"), ("x4 jitter", "ensemble"), ("persistence", "persistence"), ("FNO", "fno")):
            assert _skill_cell(text, name, "one-step", label) == f"{row[pred]['one_step']:.4f}"
            assert _skill_cell(text, name, "10-step", label) == f"{row[pred]['rollout_10']:.4f}"
            assert _skill_cell(text, name, "30-step", label) == "-"  # not measured: rollout_steps is [10]
    # the floors: one verdict list for the model and one for the ensemble, each as floors() computes it
    section = _section(text, "Floors")
    verdicts = [line.split("**")[1] for line in section.splitlines() if line.startswith("- ")]
    expected = []
    for pred in ("model", "ensemble"):
        f = floors(shipped["skill"], pred)
        expected += [f["all_half"], f["all_ten"], f["fno_wins"] >= 3]
    assert verdicts == ["holds" if ok else "does not hold" for ok in expected]
    assert "not measured yet" in _section(text, "Transfer to compressible flow").lower()
    assert yaml.safe_load((work / "train.yaml").read_text())["steps"] == 6
    # the card stage alone rewrites the same card from the stored results.json, without the checkpoint
    weights.unlink()
    card.unlink()
    run_pipeline(recipe, work, ("card",), card=card, bundle_to=weights, progress=False)
    assert card.read_text() == text
    assert "It continues" not in text and "carried" not in text
    # evaluated again without the FNO weights: the FNO rows of the same test sets stay, and the card says so
    fno_rows = {k: v["fno"] for k, v in shipped["skill"].items()}
    for f in (work / "fno").glob("*.pt"):
        f.unlink()
    run_pipeline(recipe, work, ("bundle", "evaluate", "card"), card=card, bundle_to=weights, progress=False)
    again = json.loads((work / "results.json").read_text())
    assert {k: v["fno"] for k, v in again["skill"].items()} == fno_rows
    assert all(v["fno_carried"] for v in again["skill"].values()) and again["fno_runs"] == runs
    assert "The FNO rows of 2 systems are carried from the earlier evaluation" in card.read_text()


def test_training_seconds_leave_out_the_pause_between_runs(tmp_path: Path) -> None:
    from physviz.recipes.pipeline import training_seconds

    lines = [{"kind": "train", "step": s, "time": 1000.0 + 10 * s} for s in range(5)]  # 40 s
    lines += [{"kind": "train", "step": s, "time": 90_000.0 + 10 * (s - 4)} for s in range(4, 8)]  # resumed: +30 s
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    assert training_seconds(tmp_path) == pytest.approx(70.0)


def test_bundle_stage_never_writes_into_the_package_by_default(tmp_path: Path) -> None:
    from physviz.model.pretrained import WEIGHTS
    from physviz.recipes.pipeline import bundle_path

    target = bundle_path(Recipe.load("bundled"), tmp_path)
    assert target == tmp_path / "bundle" / "physviz-tiny.safetensors"
    assert WEIGHTS.resolve() not in target.resolve().parents


def _results(skill: dict, **more: object) -> dict:
    """A results.json as the pipeline writes it, for a card rendered without a run."""
    model = {"file": "m.safetensors", "megabytes": 1.0, "hash": "ab" * 32, "steps": 100, "training_seconds": 600.0,
             "n_parameters": 1234, "config": {"n_states": 24, "patch_size": 8, "processor_blocks": 4, "embed_dim": 128,
                                              "num_heads": 4, "context_frames": 4, "refine_width": 0}}
    recipe = {"name": "r", "train": {"steps": 100}, "finish": {}, "context": 4, "eval_trajectories": 2, "eval_steps": 16,
              "eval_ensemble": 1, "rollout_steps": [10, 30]}
    spectra = {name: {} for name in skill}
    return {"recipe": recipe, "model": model, "corpus": [], "skill": skill, "spectra": spectra, **more}


def _row(model: tuple[float, float], fno: tuple[float, float] | None = None) -> dict:
    out = {"model": {"one_step": model[0], "rollout_10": model[1]}, "persistence": {"one_step": 0.3, "rollout_10": 1.0}}
    return {**out, "fno": {"one_step": fno[0], "rollout_10": fno[1]}} if fno else out


def test_card_shows_the_fno_runs_and_the_transfer_table_from_the_results() -> None:
    """The FNO line carries each baseline's recorded steps, minutes, batch and threads; the transfer table and
    its floors come from the transfer results."""
    from physviz.recipes.card import render_card

    figs = {"rollout": "r.png", "spectra": "s.png", "transfer": "t.png"}
    runs = {"euler_riemann": {"steps": 2500, "seconds": 1628.0, "batch": 16, "threads": 1},
            "fitzhugh_nagumo": {"steps": 180, "seconds": 90.0, "batch": 4, "threads": 2}}
    row = {"pretrained": {"one_step": 0.2, "rollout_5": 0.4}, "scratch": {"one_step": 0.1, "rollout_5": 0.5}}
    transfer = {"results": {"near": {"25": row, "50": row}}, "pretrained_on": ["a"], "pretrain_steps": 3000,
                "excluded": ["euler"], "finetune_steps": 300, "finetune_lr": 5e-4, "finetune": {}, "test_trajectories": 16}
    skill = {"euler_riemann": _row((0.06, 0.28), (0.008, 0.02)), "fitzhugh_nagumo": _row((0.017, 0.17), (0.007, 0.13))}
    text = render_card(_results(skill, fno_runs=runs, transfer=transfer), figs)
    fno_line = next(line for line in text.splitlines() if line.startswith("FNO training per system"))
    assert "euler_riemann 2500 steps in 27.1 min (batch 16, 1 thread)" in fno_line
    assert "fitzhugh_nagumo 180 steps in 1.5 min (batch 4, 2 threads)" in fno_line
    headers, rows = _table(text, "task")
    assert headers == ["task", "trajectories", "pretrained T+1", "scratch T+1", "pretrained 5-step", "scratch 5-step"]
    assert list(rows) == ["near"] and "| near | 25 | 0.2000 | 0.1000 | 0.4000 | 0.5000 |" in text
    section = _section(text, "Transfer to compressible flow")
    assert [line.split("**")[1] for line in section.splitlines() if line.startswith("- ")] == ["does not hold", "holds"]
    assert "(pretrained better in 0 of 2 cells)" in section and "(pretrained better in 2 of 2 cells)" in section and "![transfer](t.png)" in section
    assert "$" not in text  # every template field was filled


def test_card_floors_follow_the_skill_table() -> None:
    """Each floor's verdict and counts are those of `floors` on the skill table; no FNO, no FNO floor."""
    from physviz.recipes.card import render_card
    from physviz.recipes.evaluate import floors

    figs = {"rollout": "r.png", "spectra": "s.png"}
    skill = {"a": _row((0.1, 0.5), (0.2, 0.6)), "b": _row((0.2, 0.5), (0.05, 0.4)), "c": _row((0.1, 1.2), (0.2, 1.5)),
             "d": _row((0.1, 0.5), (0.3, 0.7))}
    f = floors(skill)
    assert f["one_step_half_of_persistence"] == {"a": True, "b": False, "c": True, "d": True}
    assert f["rollout10_beats_persistence"] == {"a": True, "b": True, "c": False, "d": True}
    assert f["beats_fno_rollout10"] == {"a": True, "b": False, "c": True, "d": True} and f["fno_wins"] == 3
    assert f["beats_fno_one_step"] == {"a": True, "b": False, "c": True, "d": True}
    section = _section(render_card(_results(skill), figs), "Floors")
    bullets = [line for line in section.splitlines() if line.startswith("- ")]
    assert [b.split("**")[1] for b in bullets] == ["does not hold", "does not hold", "holds"]
    assert "['b']" in bullets[0] and "['c']" in bullets[1] and "(3 of 4: ['a', 'c', 'd']; one-step: 3 of 4)" in bullets[2]
    assert "0.3-4.0x the FNO's over the 4 systems" in section
    no_fno = {k: {p: v for p, v in r.items() if p != "fno"} for k, r in skill.items()}
    section = _section(render_card(_results(no_fno), figs), "Floors")
    assert len([line for line in section.splitlines() if line.startswith("- ")]) == 2


def test_model_card_is_the_template_over_the_stored_results() -> None:
    """MODEL_CARD.md is exactly what the card stage writes from docs/model_card/results.json."""
    from physviz.recipes.card import render_card

    results = json.loads((REPO / "docs" / "model_card" / "results.json").read_text())
    figs = {k: f"docs/model_card/{name}" for k, name in (("rollout", "rollout_vrmse.png"),
                                                          ("spectra", "spectra_10_steps.png"), ("transfer", "transfer.png"),
                                                          ("transfer_validation", "transfer_validation.png"))}
    assert render_card(results, figs) == (REPO / "MODEL_CARD.md").read_text()
    # its numbers are the shipped model's
    from physviz.model.checkpoint import read_model_info
    from physviz.model.pretrained import pretrained_path

    info = read_model_info(pretrained_path())
    assert results["model"]["hash"] == info["hash"] and results["model"]["steps"] == info["metadata"]["steps"]
    assert set(results["fno_runs"]) == set(results["skill"])


def test_the_card_stage_rewrites_the_model_card_from_the_stored_results(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`physviz pretrain --recipe bundled --workdir docs/model_card --stages card` in a copy of the repo's card
    folder writes MODEL_CARD.md, its figures and results.json back unchanged."""
    import shutil

    from physviz.cli.main import main

    shutil.copytree(REPO / "docs" / "model_card", tmp_path / "docs" / "model_card")
    monkeypatch.chdir(tmp_path)
    assert main(["pretrain", "--recipe", "bundled", "--workdir", "docs/model_card", "--stages", "card", "-q"]) == 0
    assert (tmp_path / "MODEL_CARD.md").read_text() == (REPO / "MODEL_CARD.md").read_text()
    for name in ("results.json", "rollout_vrmse.png", "spectra_10_steps.png", "transfer.png"):
        assert (tmp_path / "docs" / "model_card" / name).stat().st_size > 1000
    stored = json.loads((REPO / "docs" / "model_card" / "results.json").read_text())
    assert json.loads((tmp_path / "docs" / "model_card" / "results.json").read_text()) == stored
    (tmp_path / "docs" / "model_card" / "results.json").write_text(json.dumps({"skill": stored["skill"]}))
    assert main(["pretrain", "--workdir", "docs/model_card", "--stages", "card"]) == 2  # no recipe or model facts


@pytest.mark.slow
def test_sigterm_to_a_background_fno_run_stops_its_workers_at_a_checkpoint(tmp_path: Path) -> None:
    """`kill PID` of `--fno-workers 2` run started in the background (SIGINT ignored, as a shell does) stops
    both workers at a step boundary: their checkpoints are saved and no worker is left running."""
    import subprocess
    import sys
    import time

    from physviz.recipes.corpus import make_corpus

    recipe = Recipe.load("bundled")
    recipe.only = ["fitzhugh_nagumo", "navier_stokes_decaying"]
    recipe.corpus_scale, recipe.eval_trajectories, recipe.eval_steps = 0.01, 1, 6
    make_corpus(recipe, tmp_path, progress=False)
    script = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"  # what `cmd &` in a script does to the run
        "from pathlib import Path\n"
        "from physviz.recipes.baselines import train_fno_baselines\n"
        "from physviz.recipes.recipe import Recipe\n"
        "r = Recipe.load('bundled'); r.only = ['fitzhugh_nagumo', 'navier_stokes_decaying']\n"
        "train_fno_baselines(r, Path(sys.argv[1]), 1e6, progress=True, workers=2)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stderr=subprocess.PIPE, text=True)
    seen, t0 = "", time.time()
    assert proc.stderr is not None
    while time.time() - t0 < 120:  # both workers past their first optimiser steps
        seen += proc.stderr.read(64)
        if "FNO fitzhugh_nagumo" in seen and "FNO navier_stokes_decaying" in seen and seen.count("step=2") >= 2:
            break
    else:
        proc.kill()
        pytest.fail(f"the workers did not start training: {seen[-500:]}")
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the FNO run did not stop within 60 s of SIGTERM")
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    partials = sorted(p.name for p in (tmp_path / "fno").glob("*.partial"))
    assert partials == ["fitzhugh_nagumo.pt.partial", "navier_stokes_decaying.pt.partial"]
    assert not list((tmp_path / "fno").glob("*.pt"))  # stopped, not finished


def test_fno_rows_are_carried_only_for_the_same_test_set() -> None:
    from physviz.recipes.evaluate import carry_fno

    def row(persist: float, fno: float | None = None, frames: int = 36) -> dict:
        r = {"fields": ["u"], "trajectories": 8, "frames": frames, "resolution": [64, 64],
             "persistence": {"one_step": persist, "rollout_10": 2 * persist}}
        if fno is not None:
            r["fno"] = {"one_step": fno, "rollout_10": 2 * fno}
        return r

    old = {"same": row(0.5, 0.1), "moved": row(0.5, 0.1), "longer": row(0.5, 0.1), "has_fno": row(0.5, 0.1)}
    new = {"same": row(0.50002), "moved": row(0.51), "longer": row(0.5, frames=40), "has_fno": row(0.5, 0.3),
           "new_set": row(0.5)}
    assert carry_fno(new, old) == ["same"]
    assert new["same"]["fno"] == old["same"]["fno"] and new["same"]["fno_carried"]
    assert "fno" not in new["moved"] and "fno" not in new["longer"] and "fno" not in new["new_set"]
    assert new["has_fno"]["fno"]["one_step"] == 0.3 and "fno_carried" not in new["has_fno"]


def test_a_recipe_that_continues_a_shipped_checkpoint_counts_its_training() -> None:
    from physviz.model.checkpoint import read_model_info
    from physviz.recipes.card import render_card
    from physviz.recipes.pipeline import continued_checkpoint

    assert continued_checkpoint(Recipe.load("bundled")) is None  # from random weights
    start = continued_checkpoint(Recipe.load("bundled_gen2"))
    gen1 = read_model_info(pretrained_path("gen1"))
    assert start == {"init_from": "bundled:gen1", "hash": gen1["hash"], "recipe": gen1["metadata"]["recipe"],
                     "steps": gen1["metadata"]["steps"], "training_seconds": gen1["metadata"]["training_seconds"]}
    results = json.loads((REPO / "docs" / "model_card" / "results.json").read_text())
    results["model"] = {**results["model"], "continues": start}
    text = render_card(results, {"rollout": "r.png", "spectra": "s.png"})
    minutes = round(start["training_seconds"] / 60)
    assert (f"It continues `bundled:gen1` (recipe `{start['recipe']}`, {start['steps']} steps in {minutes} min, "
            f"weights `{start['hash'][:16]}...`") in text
