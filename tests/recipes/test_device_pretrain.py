"""scripts/device_pretrain.sh: the whole recipe in one script (GPU size), run here at toy size on the CPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from physviz.recipes.recipe import Recipe
from tests.paths import REPO

SCRIPT = REPO / "scripts" / "device_pretrain.sh"


def _env(**more: str) -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "2", **more}


def test_the_gpu_recipe_is_the_bundled_one_larger() -> None:
    from physviz.train.config import TrainConfig

    gpu, bundled, gen2 = Recipe.load("device_h100"), Recipe.load("bundled"), Recipe.load("bundled_gen2")
    assert gpu.corpus_scale > 1 and gpu.train["device"] == "cuda" and gpu.train["precision"] == "bf16"
    # the same architecture: the bundled one from scratch, with the options the candidate second generation adds
    assert gpu.train["model"]["overrides"] == {**bundled.train["model"]["overrides"], **gen2.train["model"]["overrides"]}
    assert gpu.train["model"]["preset"] == bundled.train["model"]["preset"]
    assert gpu.train["batch"]["tokens"] > bundled.train["batch"]["tokens"]
    TrainConfig.from_dict({**gpu.train, "output_dir": "/tmp/x", "data": [{"path": "/tmp"}]})  # a valid train config


def test_the_script_refuses_unknown_arguments_and_needs_out(tmp_path: Path) -> None:
    bad = subprocess.run(["bash", str(SCRIPT), "--fast"], env=_env(OUT=str(tmp_path)), capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown argument --fast" in bad.stderr
    env = _env()
    env.pop("OUT", None)
    no_out = subprocess.run(["bash", str(SCRIPT), "--toy"], env=env, capture_output=True, text=True)
    assert no_out.returncode != 0 and "set OUT" in no_out.stderr


@pytest.mark.slow
def test_toy_run_writes_weights_results_card_and_timings(tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    proc = subprocess.run(["bash", str(SCRIPT), "--toy"], env=_env(OUT=str(out), WORKDIR=str(work)),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    timings = json.loads((out / "timings.json").read_text())
    stages = ["corpus", "train", "fno", "bundle", "evaluate", "zero_shot", "card"]
    assert list(timings["stages"]) == stages and timings["total_seconds"] > 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["skill"]) == {"navier_stokes_decaying", "fitzhugh_nagumo"}
    assert all("fno" in row and "persistence" in row for row in results["skill"].values())
    assert set(results["zero_shot"]["systems"]) == {"heat_slow", "allen_cahn"}
    assert results["model"]["steps"] == 4
    weights = out / "physviz-toy_recipe.safetensors"
    assert weights.stat().st_size > 1e5 and not list(out.rglob("*.hdf5"))  # the corpus stays in WORKDIR
    card = (out / "MODEL_CARD.md").read_text()
    assert "## Zero-shot on physics it never saw" in card and "heat_slow (temperature)" in card
    assert "cuda False" in (out / "device.txt").read_text()
