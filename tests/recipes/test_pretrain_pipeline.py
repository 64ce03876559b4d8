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

from physviz.errors import ParameterError
from physviz.model.evaluate import autoregress, evaluate, live_trajectories, persistence, vrmse


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
    from physviz.train.baselines import FNOConfig, train_fno

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

    from physviz.train.baselines import FNOBaseline, FNOConfig, train_fno

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
    from physviz.train.pretrain import Recipe, train_fno_baselines

    recipe = Recipe.load("bundled")
    recipe.only = ("fitzhugh_nagumo",)
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
    from physviz.train.pretrain import Recipe, corpus_entries

    bundled = Recipe.load("bundled")
    names = {e.name() for e in corpus_entries(bundled)}
    assert "gray_scott_3d_spots" in names and "euler_high_mach" in names  # every 2D system and the 3D one
    transfer = Recipe.load("bundled_transfer")
    assert not any(e.system == "euler" for e in corpus_entries(transfer))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrain: {}\nlearning_rate: 3\n")
    with pytest.raises(ParameterError, match="learning_rate"):
        Recipe.load(str(bad))
    with pytest.raises(ParameterError, match="Unknown recipe"):
        Recipe.load("no_such_recipe")


@pytest.mark.slow
def test_pipeline_makes_a_checkpoint_results_and_a_card(tmp_path: Path) -> None:
    from physviz.model import load_model
    from physviz.model.checkpoint import read_model_info
    from physviz.train.pretrain import Recipe, run_pipeline

    recipe = Recipe.load("bundled")
    recipe.only = ("navier_stokes_decaying", "fitzhugh_nagumo")
    recipe.corpus_scale = 0.01
    recipe.eval_trajectories, recipe.eval_steps, recipe.rollout_steps = 2, 16, (10,)
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
    finish = yaml.safe_load((work / "finish.yaml").read_text())
    assert finish["rollout"]["steps"] == 2 and finish["model"]["init_from"] == str(work / "train" / "final.safetensors")
    assert finish["batch"] == {"tokens": 512} and (work / "finish" / "final.safetensors").exists()
    assert info["metadata"]["recipe_finish"] == recipe.finish
    assert load_model(weights).config.n_spatial_dims == 3
    text = card.read_text()
    assert "| navier_stokes_decaying |" in text and "Floors" in text and "Transfer" in text
    assert "one-step: model | x4 jitter | persistence | FNO | 10-step" in text and "4-jitter ensemble:" in text
    for fig in ("docs/model_card/rollout_vrmse.png", "docs/model_card/spectra_10_steps.png"):
        assert (tmp_path / fig).stat().st_size > 1000
    assert json.loads((work / "results.json").read_text())["skill"]
    # the card's data is written beside its figures and is the data the card was written from
    shipped = json.loads((tmp_path / "docs/model_card/results.json").read_text())
    assert shipped["skill"] == results["skill"]
    assert f"{shipped['skill']['fitzhugh_nagumo']['model']['one_step']:.4f}" in text
    assert yaml.safe_load((work / "train.yaml").read_text())["steps"] == 6


def test_training_seconds_leave_out_the_pause_between_runs(tmp_path: Path) -> None:
    from physviz.train.pretrain import training_seconds

    lines = [{"kind": "train", "step": s, "time": 1000.0 + 10 * s} for s in range(5)]  # 40 s
    lines += [{"kind": "train", "step": s, "time": 90_000.0 + 10 * (s - 4)} for s in range(4, 8)]  # resumed: +30 s
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    assert training_seconds(tmp_path) == pytest.approx(70.0)


def test_bundle_stage_never_writes_into_the_package_by_default(tmp_path: Path) -> None:
    from physviz.model.pretrained import WEIGHTS
    from physviz.train.pretrain import Recipe, bundle_path

    target = bundle_path(Recipe.load("bundled"), tmp_path)
    assert target == tmp_path / "bundle" / "physviz-tiny.safetensors"
    assert WEIGHTS.resolve() not in target.resolve().parents


def test_card_keeps_fno_steps_and_transfer_probes_from_the_results(tmp_path: Path) -> None:
    """Without FNO files on disk the card takes their steps from results.json; recorded probes follow the transfer table."""
    from physviz.train.pretrain import _fno_steps_line, transfer_section

    assert _fno_steps_line(tmp_path, {}) == []
    line = _fno_steps_line(tmp_path, {"fno_steps": {"euler_riemann": 179, "fitzhugh_nagumo": 180}})
    assert line and "euler_riemann 179, fitzhugh_nagumo 180" in line[0]
    runs = {"euler_riemann": {"steps": 2500, "seconds": 1628.0, "batch": 16, "threads": 1}}
    assert "euler_riemann 2500 steps in 27.1 min (batch 16, 1 thread)" in _fno_steps_line(tmp_path, {"fno_runs": runs, "fno_steps": {"x": 1}})[0]
    row = {"pretrained": {"one_step": 0.2, "rollout_5": 0.4}, "scratch": {"one_step": 0.1, "rollout_5": 0.5}}
    text = "\n".join(transfer_section({"results": {"near": {"25": row}}, "note": "n", "probes": "| probe | 0.15 |"}, {}))
    assert "| near | 25 | 0.2000 | 0.1000 | 0.4000 | 0.5000 |" in text and text.index("| probe | 0.15 |") > text.index("5-step: **")
    assert "probe" not in "\n".join(transfer_section({"results": {"near": {"25": row}}}, {}))


def test_evaluation_keeps_earlier_fno_rows_and_the_card_marks_their_smaller_budget() -> None:
    """Systems without an FNO on disk keep an earlier FNO row; the card stars them and leaves them out of the floor."""
    from physviz.train.pretrain import _fno_budget_words, fno_budget_split, fno_floor_verdict, keep_earlier_fno

    def row(fno: float | None = None) -> dict:
        out = {"model": {"one_step": 0.1, "rollout_10": 0.5}, "persistence": {"one_step": 0.3, "rollout_10": 1.0}}
        return {**out, "fno": {"one_step": 0.2, "rollout_10": fno}} if fno is not None else out

    skill = {"a": row(0.6), "b": row(), "c": row()}  # a: FNO on disk; b: earlier FNO kept; c: never had one
    earlier = {"skill": {"b": row(0.4), "c": row()}, "fno_runs": {"b": {"steps": 9, "seconds": 30.0, "batch": 16}}}
    kept = keep_earlier_fno(skill, earlier)
    assert kept == {"b": {"steps": 9, "seconds": 30.0, "batch": 16, "earlier": True}}
    assert skill["b"]["fno"]["rollout_10"] == 0.4 and "fno" not in skill["c"] and skill["a"]["fno"]["rollout_10"] == 0.6
    results = {"skill": skill, "fno_runs": {"a": {"steps": 99, "seconds": 100.0, "batch": 16}, **kept}}
    share, full, short = fno_budget_split(results, model_seconds=300.0)
    assert (share, full, short) == (100.0, ["a"], ["b"])
    words = _fno_budget_words(results, 5.0, share, full, short)
    assert "1 systems have that FNO (a)" in words and "other 1 (b), marked *" in words and "0.5 min each" in words
    results["fno_runs"]["b"]["seconds"] = 100.0  # b rerun with its full share: one budget for all
    assert fno_budget_split(results, 300.0)[2] == []
    wins = {"a": True, "b": True, "c": True, "d": False, "e": True}
    assert fno_floor_verdict(wins, ["a", "b", "c"], ["d"]) == ("holds", ["a", "b", "c"], [])
    assert fno_floor_verdict(wins, ["a", "d"], ["b", "c"]) == ("not established", ["a"], ["b", "c"])
    assert fno_floor_verdict(wins, ["a", "d"], ["b"])[0] == "does not hold"  # 1 won + 1 open < 3


@pytest.mark.slow
def test_sigterm_to_a_background_fno_run_stops_its_workers_at_a_checkpoint(tmp_path: Path) -> None:
    """`kill PID` of `--fno-workers 2` run started in the background (SIGINT ignored, as a shell does) stops
    both workers at a step boundary: their checkpoints are saved and no worker is left running."""
    import subprocess
    import sys
    import time

    from physviz.train.pretrain import Recipe, make_corpus

    recipe = Recipe.load("bundled")
    recipe.only = ("fitzhugh_nagumo", "navier_stokes_decaying")
    recipe.corpus_scale, recipe.eval_trajectories, recipe.eval_steps = 0.01, 1, 6
    make_corpus(recipe, tmp_path, progress=False)
    script = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"  # what `cmd &` in a script does to the run
        "from pathlib import Path\n"
        "from physviz.train.pretrain import Recipe, train_fno_baselines\n"
        "r = Recipe.load('bundled'); r.only = ('fitzhugh_nagumo', 'navier_stokes_decaying')\n"
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
