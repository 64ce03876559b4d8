"""The transfer experiment with early stopping: data with a validation split, the efficiency gain, the floor, the card."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from physviz.recipes.recipe import Recipe
from physviz.recipes.transfer import efficiency, trajectories_to_match, transfer_floor


def _row(p1: float, s1: float, p5: float, s5: float) -> dict:
    return {"pretrained": {"one_step": p1, "rollout_5": p5, "best_step": 100},
            "scratch": {"one_step": s1, "rollout_5": s5, "best_step": 300}}


RESULTS = {"near": {"1": _row(0.30, 0.50, 0.6, 0.9), "2": _row(0.25, 0.40, 0.5, 0.8), "4": _row(0.20, 0.30, 0.45, 0.6),
                    "8": _row(0.18, 0.20, 0.4, 0.45), "16": _row(0.15, 0.16, 0.38, 0.40)},
           "far": {"1": _row(0.5, 0.6, 0.9, 1.0), "2": _row(0.45, 0.58, 0.8, 0.95), "4": _row(0.44, 0.57, 0.8, 0.79),
                   "8": _row(0.43, 0.56, 0.7, 0.9), "16": _row(0.42, 0.55, 0.7, 0.85)}}


def test_trajectories_to_match_interpolates_in_log_n() -> None:
    # scratch 0.40 at 2 and 0.30 at 4: 0.35 is halfway in log n, sqrt(8)
    assert trajectories_to_match([1, 2, 4, 8], [0.5, 0.4, 0.3, 0.2], 0.35) == pytest.approx(math.sqrt(8))
    assert trajectories_to_match([1, 2, 4], [0.5, 0.4, 0.3], 0.4) == pytest.approx(2.0)
    assert trajectories_to_match([1, 2, 4], [0.1, 0.4, 0.3], 0.2) == 1.0  # already there at the smallest size
    assert trajectories_to_match([1, 2, 4], [0.5, 0.4, 0.3], 0.25) is None  # never: "more than 4"
    assert trajectories_to_match([4, 1, 2], [0.3, 0.5, 0.4], 0.35) == pytest.approx(math.sqrt(8))  # any order


def test_efficiency_and_floor_of_a_results_table() -> None:
    eff = efficiency(RESULTS, reference=2)
    near = eff["near"]["one_step"]  # pretrained 0.25 at 2; scratch 0.30 at 4, 0.20 at 8: halfway, sqrt(32)
    assert near["pretrained"] == 0.25 and near["scratch_trajectories"] == pytest.approx(math.sqrt(32))
    assert near["gain"] == pytest.approx(math.sqrt(32) / 2)
    assert eff["far"]["one_step"]["scratch_trajectories"] is None and eff["far"]["one_step"]["largest"] == 16
    assert not near["at_most"] and efficiency({"near": {**RESULTS["near"], "1": _row(0.3, 0.2, 0.6, 0.45)}}, 2)[
        "near"]["one_step"]["at_most"]  # scratch at 1 already below pretrained's 0.25 at 2: only a bound
    floor = transfer_floor(RESULTS, upto=8)
    assert floor["cells"] == 16 and not floor["held"]
    assert [(f["task"], f["trajectories"], f["metric"]) for f in floor["fails"]] == [("far", 4, "rollout_5")]
    assert transfer_floor({"near": RESULTS["near"]}, upto=8)["held"]
    # a leg that has not run every size of the floor yet does not hold it, and says which are missing
    partial = {"near": {n: r for n, r in RESULTS["near"].items() if n in ("1", "2")}}
    floor = transfer_floor(partial, upto=8, sizes=[1, 2, 4, 8, 16, 32])
    assert floor["missing"] == [4, 8] and not floor["held"] and not floor["fails"]
    assert transfer_floor(RESULTS | {"near": RESULTS["near"]}, 8, [1, 2, 4, 8, 16])["missing"] == []


def test_card_transfer_section_of_the_early_stopping_protocol(tmp_path: Path) -> None:
    from physviz.recipes.card import _transfer
    from physviz.recipes.figures import plot_transfer, plot_transfer_validation

    transfer = {"protocol": "early_stopping", "results": RESULTS, "pretrained_on": ["a"], "pretrain_steps": 3000,
                "excluded": ["euler"], "finetune_steps": 150, "finetune_lr": 1e-3, "finetune": {},
                "test_trajectories": 16, "valid_trajectories": 8, "valid_every": 50, "patience": 6, "min_delta": 0.0,
                "min_rel_delta": 0.01, "max_steps": 4000, "efficiency": efficiency(RESULTS, 2),
                "floor": transfer_floor(RESULTS, 8)}
    text = _transfer(transfer, "t.png", "cmd")
    assert "| near | 2 | 0.2500 | 0.4000 | 0.5000 | 0.8000 | 100 / 300 |" in text
    assert f"scratch matches it at {math.sqrt(32):.1f} trajectories (gain {math.sqrt(32) / 2:.1f}x)." in text
    assert ("far, one-step: pretrained at 2: 0.4500; scratch does not match it within the sizes measured (needs more "
            "than 16 trajectories).") in text
    # scratch already better at the smallest size than pretrained at 2: the number is only a bound
    beaten = {"near": {**RESULTS["near"], "1": _row(0.30, 0.20, 0.6, 0.45)}}
    text_beaten = _transfer({**transfer, "results": beaten, "efficiency": efficiency(beaten, 2),
                             "floor": transfer_floor(beaten, 8)}, None, "cmd")
    assert ("near, one-step: pretrained at 2: 0.2500; scratch matches it already at 1 trajectory, the smallest size "
            "measured (gain at most 0.5x).") in text_beaten
    assert "**does not hold** (pretrained better in 15 of 16 cells); fails at far 4 5-step (0.8000 vs scratch 0.7900)" in text
    assert "8 validation trajectories" in text and "![transfer](t.png)" in text and "$" not in text
    assert "has not improved by more than 1% for 6 validations" in text
    assert plot_transfer(transfer, tmp_path).stat().st_size > 1000
    assert "Measured so far" not in text and "transfer validation" not in text
    assert plot_transfer_validation(transfer, tmp_path) is None  # no run has a curve
    curves = {**transfer, "results": {"far": {n: {k: {**r[k], "valid_curve": [[50, 0.6], [100, 0.5], [150, 0.55]],
                                                       "best_step": 100} for k in r}
                                              for n, r in RESULTS["far"].items()}}}
    png = plot_transfer_validation(curves, tmp_path)
    assert png is not None and png.name == "transfer_validation.png" and png.stat().st_size > 1000
    assert "![transfer validation](v.png)" in _transfer(transfer, "t.png", "cmd", "v.png")

    leg = {**transfer, "results": {"near": {"1": RESULTS["near"]["1"], "2": RESULTS["near"]["2"]}},
           "sizes": [1, 2], "recipe_sizes": [1, 2, 4, 8, 16, 32]}
    leg["floor"] = transfer_floor(leg["results"], 8, leg["recipe_sizes"])
    leg["efficiency"] = efficiency(leg["results"], 2)
    text = _transfer(leg, None, "cmd")
    assert ("Measured so far at 1, 2 trajectories of the recipe's 1, 2, 4, 8, 16, 32 (sizes 4, 8, 16, 32 not run "
            "yet; `--transfer-sizes` runs a leg).") in text
    assert "**not measured yet (sizes 4, 8 not run)** (pretrained better in 4 of 4 cells)" in text and "$" not in text
    # a failing cell settles the floor before the other sizes have run
    leg["results"] = {"far": {"1": _row(0.49, 0.43, 0.92, 0.83)}, "near": {"1": RESULTS["near"]["1"]}}
    leg["floor"] = transfer_floor(leg["results"], 8, leg["recipe_sizes"])
    text = _transfer(leg, None, "cmd")
    assert ("**does not hold** (pretrained better in 2 of 4 cells); fails at far 1 one-step (0.4900 vs scratch 0.4300), far 1 5-step "
            "(0.9200 vs scratch 0.8300); sizes 2, 4, 8 not run yet") in text
    # one size left: said in the singular
    leg["results"] = {task: {n: RESULTS[task][n] for n in ("1", "2", "4")} for task in RESULTS}
    leg["floor"] = transfer_floor(leg["results"], 8, [1, 2, 4, 8])
    assert "fails at far 4 5-step (0.8000 vs scratch 0.7900); size 8 not run yet" in _transfer(leg, None, "cmd")
    # every size of the floor run, larger ones left: the floor is settled, the sentence says the rest lie above it
    leg["results"] = {task: {n: RESULTS[task][n] for n in ("1", "2", "4", "8")} for task in RESULTS}
    leg["sizes"] = [1, 2, 4, 8]
    leg["floor"] = transfer_floor(leg["results"], 8, leg["recipe_sizes"])
    text = _transfer(leg, None, "cmd")
    assert "(sizes 16, 32 not run yet, all above the floor's; `--transfer-sizes` runs a leg)" in text
    assert "**does not hold** (pretrained better in 15 of 16 cells); fails at far 4 5-step" in text
    assert "not run yet" not in text.split("- Floor:")[1]


def test_transfer_sizes_must_be_the_recipes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--transfer-sizes 3 fails at once, naming the recipe's sizes, before any stage spends its time."""
    from physviz.cli.main import main
    from physviz.recipes.recipe import RecipeError
    from physviz.recipes.transfer import check_sizes

    recipe = Recipe.load("bundled_transfer")
    assert check_sizes(recipe, [8, 1, 2, 4]) == [1, 2, 4, 8] and check_sizes(recipe, None) == [1, 2, 4, 8, 16, 32]
    with pytest.raises(RecipeError, match=r"sizes \[3\] are not among recipe 'bundled_transfer'.s sizes \[1, 2, 4, 8, 16, 32\]"):
        check_sizes(recipe, [1, 3])
    work = tmp_path / "w"
    args = ["pretrain", "--recipe", "bundled_transfer", "--workdir", str(work), "--stages", "corpus,transfer", "-q"]
    assert main([*args, "--transfer-sizes", "1,3"]) == 2 and not work.exists()  # the corpus stage never started
    assert main([*args, "--transfer-sizes", "1,two"]) == 2 and not work.exists()
    err = capsys.readouterr().err
    assert "not among recipe 'bundled_transfer'" in err and "not '1,two'" in err and "Traceback" not in err


def test_transfer_recipes_load_with_their_protocols() -> None:
    from physviz.recipes.transfer import transfer_config

    new, old = Recipe.load("bundled_transfer"), Recipe.load("bundled_transfer_fixed")
    assert new.transfer.protocol == "early_stopping" and new.transfer.sizes == [1, 2, 4, 8, 16, 32]
    assert old.transfer.protocol == "fixed_steps" and old.transfer.sizes == [25, 50, 100, 200]
    cfg = transfer_config(new, Path("/d"), "near_2", Path("/pre.safetensors"))
    assert cfg["early_stopping"] == {"patience": 6, "min_delta": 0.0, "min_rel_delta": 0.01} and cfg["steps"] == 4000
    assert cfg["data"][0]["valid_split"] == "valid" and cfg["valid_every"] == 50 and cfg["checkpoint_every"] == 50
    assert cfg["optimizer"]["schedule"] == "constant" and cfg["optimizer"]["lr"] == 1e-3
    assert new.train["field_dropout"] == 0.2 and "field_dropout" not in cfg  # pretraining only
    scratch = transfer_config(new, Path("/d"), "near_2", None)
    assert scratch["model"] == new.train["model"] and {k: v for k, v in scratch.items() if k not in ("model", "finetune")} \
        == {k: v for k, v in cfg.items() if k not in ("model", "finetune")}  # same settings, other start
    fixed = transfer_config(old, Path("/d"), "near_25", None)
    assert fixed["steps"] == 300 and fixed["valid_every"] == 0 and "early_stopping" not in fixed


def _train_here(cfg: dict, out: Path, overrides: tuple = (), threads: int | None = None, stop: object = None) -> Path:
    """run_train without the subprocess (the same physviz.train run, one torch import for the whole test)."""
    from physviz.train.loop import run

    final = out / "final.safetensors"
    if not final.exists():
        run({**cfg, "output_dir": str(out), "progress": False})
    return final


@pytest.mark.slow
def test_early_stopping_transfer_runs_end_to_end_at_toy_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretrain, then per size a pretrained and a scratch run with early stopping on validation trajectories of
    other seeds, evaluated on the test set; the results carry efficiency and floor."""
    from physviz.fields import open_fields
    from physviz.recipes.corpus import make_corpus
    from physviz.recipes.transfer import run_transfer

    import physviz.recipes.recipe as recipe_module

    monkeypatch.setattr(recipe_module, "run_train", _train_here)  # every run goes through run_train_pool

    recipe = Recipe.load("bundled_transfer")
    recipe.only, recipe.corpus_scale, recipe.eval_trajectories, recipe.eval_steps = ["fitzhugh_nagumo"], 0.01, 1, 6
    recipe.train = {**recipe.train, "steps": 2, "checkpoint_every": 0, "log_every": 1, "progress": False,
                    "batch": {"tokens": 256}, "model": {"preset": "tiny", "overrides": {"context_frames": 4}}}
    ex = recipe.transfer
    ex.tasks = {"near": {"system": "euler", "regime": "low_mach", "resolution": 16, "steps": 9}}
    ex.sizes, ex.test_trajectories, ex.valid_trajectories = [1, 2], 1, 1
    ex.max_steps, ex.valid_every, ex.valid_batches, ex.patience, ex.reference_size = 6, 2, 1, 1, 1
    ex.finetune = {}
    make_corpus(recipe, tmp_path, progress=False)
    out = run_transfer(recipe, tmp_path, progress=False)
    assert out["protocol"] == "early_stopping" and set(out["results"]["near"]) == {"1", "2"}
    for row in out["results"]["near"].values():
        for kind in ("pretrained", "scratch"):
            r = row[kind]
            assert math.isfinite(r["one_step"]) and math.isfinite(r["rollout_5"])
            assert 2 <= r["steps"] <= 6 and r["best_step"] in range(2, r["steps"] + 1, 2)
            steps, errors = zip(*r["valid_curve"])  # the run's validations, the best one among them
            assert list(steps) == list(range(2, r["steps"] + 1, 2))
            assert errors[steps.index(r["best_step"])] == pytest.approx(r["valid_vrmse"])
    assert set(out["efficiency"]["near"]) == {"one_step", "rollout_5"} and out["floor"]["cells"] == 4
    valid = open_fields(tmp_path / "transfer" / "near" / "n2", split="valid")
    train = open_fields(tmp_path / "transfer" / "near" / "n2", split="train")
    assert valid.sizes["trajectory"] == 1 and train.sizes["trajectory"] == 2
    assert not (valid["density"].values[0] == train["density"].values[0]).all()  # other trajectories


def test_transfer_runs_put_the_small_sets_first() -> None:
    """Run in legs, the stage finishes the sizes of the floor (both tasks, both arms) before the large sets."""
    from physviz.recipes.transfer import transfer_runs

    recipe = Recipe.load("bundled_transfer")
    data = {task: {"train": {n: Path(f"/d/{task}/n{n}") for n in (32, 1, 8)}} for task in ("far", "near")}
    runs = transfer_runs(recipe, Path("/w"), data, Path("/pre.safetensors"))
    assert [(t, n, k) for t, n, k, _, _ in runs] == [
        (t, n, k) for n in (1, 8, 32) for t in ("far", "near") for k in ("pretrained", "scratch")]
    for task, n, kind, cfg, out in runs:
        assert out == Path("/w/transfer") / task / f"{kind}_n{n}" and cfg["data"][0]["name"] == f"{task}_{n}"
        assert (cfg["model"] == {"init_from": "/pre.safetensors"}) == (kind == "pretrained")


def _toy_runs(tmp_path: Path, n: int, steps: int = 2) -> list:
    """`n` toy physviz.train runs on one small compressible-flow dataset."""
    from physviz.fields import to_well
    from physviz.fields.simulate.run import simulate
    from physviz.recipes.recipe import PoolRun

    data = tmp_path / "data"
    to_well(simulate("euler", 2, seed=0, regime="low_mach", resolution=16, steps=9, progress=False),
            data / "data" / "train" / "e.hdf5")
    cfg = {"data": [{"path": str(data), "name": "e", "valid_split": None}], "steps": steps, "n_steps_input": 4,
           "checkpoint_every": 0, "valid_every": 0, "log_every": 1, "batch": {"tokens": 256},
           "model": {"preset": "tiny", "overrides": {"context_frames": 4}}}
    return [PoolRun(cfg, tmp_path / f"r{i}") for i in range(n)]


@pytest.mark.slow
def test_train_pool_trains_side_by_side_what_does_not_wait(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    """--transfer-workers 2: two physviz.train processes at once, each on its share of the CPU threads; a run that
    starts from another's weights waits for it, and the next free run trains meanwhile."""
    import os

    from physviz.recipes.recipe import run_train_pool

    runs = _toy_runs(tmp_path, 3, steps=10)
    runs[1].cfg = {**runs[1].cfg, "steps": 2, "model": {"init_from": str(tmp_path / "r0" / "final.safetensors")}}
    runs[1].after = 0
    finals = run_train_pool(runs, workers=2)
    assert finals == [r.out / "final.safetensors" for r in runs] and all(f.exists() for f in finals)

    def mtime(name: str) -> float:
        return (tmp_path / name).stat().st_mtime

    # r2 started beside r0 (its config was written before r0's weights); r1 only after r0's weights were there
    assert mtime("r2.yaml") < mtime("r0/final.safetensors") <= mtime("r1.yaml")
    threads = max(1, (os.cpu_count() or 1) // 2)  # each of the two workers' share of the cores
    banner = f"on cpu ({threads} CPU thread{'s' if threads > 1 else ''})"
    err = capfd.readouterr().err
    assert err.count(banner) == 3
    assert "physviz: training r2 (run 3 of 3)" in err and "physviz: r1 trained in " in err
    assert err.index("training r2") < err.index("r0 trained in") < err.index("training r1")
    assert err.rstrip().endswith("(3 of 3 runs done)")
    assert run_train_pool(runs, workers=2) == finals  # finished runs are skipped
    again = capfd.readouterr().err
    assert again.count("already trained") == 3 and "physviz: training" not in again


@pytest.mark.slow
def test_train_pool_starts_nothing_after_a_failed_run(tmp_path: Path) -> None:
    """A failed run stops the queue: the run beside it finishes, the next never starts, the failure is raised."""
    from physviz.errors import TrainingFailedError
    from physviz.recipes.recipe import PoolRun, RecipeError, run_train_pool

    runs = _toy_runs(tmp_path, 3, steps=20)
    runs[0].cfg = {**runs[0].cfg, "data": [{"path": str(tmp_path / "missing"), "name": "e", "valid_split": None}]}
    with pytest.raises(TrainingFailedError, match="r0.yaml"):
        run_train_pool(runs, workers=2)
    assert (tmp_path / "r1" / "final.safetensors").exists() and not (tmp_path / "r2.yaml").exists()
    with pytest.raises(RecipeError, match="at least 1"):
        run_train_pool(runs, workers=0)
    with pytest.raises(RecipeError, match="waits for run 1, which is not an earlier run"):
        run_train_pool([PoolRun({}, tmp_path / "a", after=1), PoolRun({}, tmp_path / "b")])


def _training_processes(text: str) -> list[int]:
    """PIDs of the live physviz.train processes whose command line contains `text`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = next(line for line in (proc / "status").read_text().splitlines() if line.startswith("State:"))
        except (OSError, ValueError, StopIteration):
            continue
        if "-m physviz.train " in cmdline and text in cmdline and " Z " not in state + " ":  # a zombie has ended
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_sigterm_to_a_background_pool_ends_its_training_processes(tmp_path: Path) -> None:
    """`kill PID` of a pool run in the background (e.g. `physviz pretrain ... &`) ends the physviz.train children
    too; before, they went on training with nobody waiting for them."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    runs = _toy_runs(tmp_path, 3, steps=100000)
    spec = json.dumps([[r.cfg, str(r.out)] for r in runs])
    script = ("import json, sys\nfrom pathlib import Path\nfrom physviz.recipes.recipe import PoolRun, run_train_pool\n"
              f"run_train_pool([PoolRun(c, Path(o)) for c, o in json.loads({spec!r})], workers=2)\n")
    pool = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / r / "metrics.jsonl").exists() for r in ("r0", "r1")):
            assert pool.poll() is None and time.monotonic() < deadline, pool.stderr.read() if pool.poll() else "slow"
            time.sleep(0.5)
        assert len(_training_processes(str(tmp_path / "r"))) == 2  # both workers' physviz.train processes
        pool.send_signal(signal.SIGTERM)
        err = pool.communicate(timeout=60)[1]  # the children share its stderr: this waits for them too
    finally:
        pool.kill()
        for pid in _training_processes(str(tmp_path / "r")):  # a failed test leaves nothing training
            os.kill(pid, signal.SIGKILL)
    assert pool.returncode != 0 and "KeyboardInterrupt: stopped by signal 15" in err
    deadline = time.monotonic() + 10
    while _training_processes(str(tmp_path / "r")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _training_processes(str(tmp_path / "r")) == []
    assert not (tmp_path / "r2.yaml").exists()  # nothing new started
