"""physviz.train checkpoints: a run SIGKILLed mid-way resumes to exactly the uninterrupted loss curve."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.paths import REPO
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
ENV.pop("PHYSVIZ_TEST_CRASH_AT_STEP", None)
STEPS = 30


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from physviz.fields.simulate.run import simulate

    root = tmp_path_factory.mktemp("resume")
    simulate("navier_stokes", 4, resolution=32, steps=12, seed=1, out=root / "ns", progress=False)
    cfg = {
        "output_dir": str(root / "unused"),
        "model": {"preset": "tiny", "overrides": {"jitter": True, "drop_path": 0.1}},  # random per step: RNG state matters
        "data": [{"path": str(root / "ns"), "name": "ns"}],
        "steps": STEPS, "n_steps_input": 3, "batch": {"tokens": 1024},
        "optimizer": {"lr": 1e-3, "warmup_steps": 3},
        "checkpoint_every": 4, "keep_checkpoints": 2, "log_every": 1, "valid_batches": 1, "progress": False,
    }
    path = root / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cmd(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "physviz.train", str(config), f"output_dir={out}", *extra]


def _lines(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(s) for s in text.splitlines()[: text.count("\n")]]  # complete lines only


def _curve(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in _lines(out) if r["kind"] == "train"}


def test_sigkill_then_resume_equals_uninterrupted(config: Path) -> None:
    root = config.parent
    ref = root / "reference"
    subprocess.run(_cmd(config, ref), env=ENV, check=True, capture_output=True, timeout=300)
    out = root / "killed"
    proc = subprocess.Popen(_cmd(config, out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        steps = [r["step"] for r in _lines(out) if r["kind"] == "train"]
        if steps and steps[-1] >= 10:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = max(_curve(out))
    assert 10 <= killed_at < STEPS
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir() if not p.name.startswith("."))
    assert checkpoints and len(checkpoints) <= 2  # keep_checkpoints
    done = subprocess.run(_cmd(config, out), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed at step" in done.stderr
    resumed_at = int(done.stderr.split("resumed at step ")[1].split()[0])
    assert resumed_at % 4 == 0 and 8 <= resumed_at <= killed_at
    a, b = _curve(ref), _curve(out)
    assert sorted(b) == list(range(1, STEPS + 1))
    assert b == a  # bit for bit: model, optimizer, scheduler, sampler and RNG all restored
    steps = [r["step"] for r in _lines(out) if r["kind"] == "train"]
    assert steps == list(range(1, STEPS + 1))  # the lines of steps after the checkpoint were dropped, then rewritten
    text = (out / "metrics.jsonl").read_text()
    assert [json.loads(s) for s in text.splitlines()][-1]["kind"] == "done"  # every line parses after the kill
    import physviz

    m1, m2 = physviz.load_model(ref / "final.safetensors"), physviz.load_model(out / "final.safetensors")
    assert m1.metadata["hash"] == m2.metadata["hash"]


def test_completed_run_resumes_to_done_and_never_starts_over(config: Path) -> None:
    root = config.parent
    out = root / "short"
    subprocess.run(_cmd(config, out, "steps=3", "checkpoint_every=0"), env=ENV, check=True, capture_output=True, timeout=300)
    first = _lines(out)
    again = subprocess.run(_cmd(config, out, "steps=3", "checkpoint_every=0"), env=ENV, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0 and "resumed at step 3" in again.stderr
    lines = _lines(out)
    assert first[-1]["kind"] == "done"  # the first run's "done" gives way to the second's
    assert lines[: len(first) - 1] == first[:-1] and [r["kind"] for r in lines[len(first) - 1:]] == ["valid", "done"]
    fresh = subprocess.run(_cmd(config, out, "steps=2", "resume=never"), env=ENV, capture_output=True, text=True,
                           timeout=300)
    assert fresh.returncode == 0 and "resumed" not in fresh.stderr
    assert [r["step"] for r in _lines(out) if r["kind"] == "train"] == [1, 2]
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_00000002.pt"]


def test_data_workers_give_the_same_run(config: Path) -> None:
    """Windows read by 2 DataLoader worker processes give the same losses as reading in the loop."""
    root = config.parent
    outs = []
    for workers in (0, 2):
        out = root / f"workers{workers}"
        subprocess.run(_cmd(config, out, "steps=4", f"num_workers={workers}", "model.overrides={}"), env=ENV, check=True,
                       capture_output=True, timeout=300)
        outs.append(_curve(out))
    assert outs[0] == outs[1] and len(outs[0]) == 4


def test_a_checkpoint_storing_run_time_knobs_in_its_model_config_still_resumes(config: Path) -> None:
    """Checkpoints store the model config; keys that are no longer model settings (run-time knobs) do not block resume."""
    import torch

    from physviz.train import checkpoints as ck

    out = config.parent / "knobs"
    subprocess.run(_cmd(config, out, "steps=4"), env=ENV, check=True, capture_output=True, timeout=300)
    state, path = ck.load_latest(out)
    assert state is not None and path is not None
    state["model_config"] = {**state["model_config"], "gradient_checkpointing": False, "ensemble": 1, "jitter_seed": None}
    torch.save(state, path)
    changed = {**state["model_config"], "embed_dim": 64}
    done = subprocess.run(_cmd(config, out, "steps=6"), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert max(_curve(out)) == 6
    # A stored setting that differs is still refused.
    state, path = ck.load_latest(out)
    torch.save({**state, "model_config": changed}, path)
    refused = subprocess.run(_cmd(config, out, "steps=8"), env=ENV, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "different model" in refused.stderr
