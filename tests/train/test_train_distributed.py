"""physviz.train under real torchrun (gloo, 2 processes): DDP and FSDP2 match one process; --max-restarts recovers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.paths import REPO
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
ENV.pop("PHYSVIZ_TEST_CRASH_AT_STEP", None)
STEPS = 6

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two datasets and a config with a global batch (so 1 and 2 processes see the same samples per step).

    AdamW's eps is 1e-6: the key-norm biases get a gradient that is zero up to rounding (softmax ignores
    a shift shared by all keys), and with eps 1e-8 Adam turns that rounding noise into lr-sized steps.
    """
    from physviz.fields.simulate.run import simulate

    root = tmp_path_factory.mktemp("dist")
    simulate("navier_stokes", 4, resolution=32, steps=12, seed=0, out=root / "ns", progress=False)
    simulate("fitzhugh_nagumo", 4, resolution=16, steps=12, seed=0, out=root / "fn", progress=False)
    cfg = {
        "output_dir": str(root / "unused"),
        "model": {"preset": "tiny", "overrides": {"embed_dim": 64, "num_heads": 2, "head_dim": 32, "processor_blocks": 2,
                                                  "pad_to_patch": True}},
        "data": [{"path": str(root / "ns"), "name": "ns"}, {"path": str(root / "fn"), "name": "fn", "weight": 2.0}],
        "steps": STEPS, "n_steps_input": 3,
        "batch": {"tokens": 384, "scope": "global", "accumulate": 2},
        "optimizer": {"lr": 2e-3, "warmup_steps": 2, "clip": 0.5, "eps": 1e-6},
        "checkpoint_every": 2, "log_every": 1, "valid_batches": 1, "progress": False, "seed": 3,
    }
    path = root / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    runs: dict[str, Path] = {}
    return {"root": root, "config": path, "runs": runs}


def _launch(setup: dict, name: str, nproc: int, parallel: str, extra_env: dict | None = None,
            torchrun_args: tuple[str, ...] = ()) -> Path:
    out = setup["root"] / name
    args = [str(setup["config"]), f"output_dir={out}", f"parallel={parallel}"]
    if nproc == 1:
        cmd = [sys.executable, "-m", "physviz.train", *args]
    else:
        cmd = [TORCHRUN, "--standalone", f"--nproc-per-node={nproc}", *torchrun_args, "-m", "physviz.train", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**ENV, **(extra_env or {})}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return out


def _curve(out: Path) -> dict[int, float]:
    """Training loss per step (the last line of a step wins, as after a resume)."""
    curve = {}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["kind"] == "train":
            curve[rec["step"]] = rec["loss"]
    return curve


def _params(out: Path) -> dict:
    import physviz

    return physviz.load_model(out / "final.safetensors").state_dict()


def _run(setup: dict, name: str, nproc: int, parallel: str) -> Path:
    if name not in setup["runs"]:
        setup["runs"][name] = _launch(setup, name, nproc, parallel)
    return setup["runs"][name]


@pytest.mark.parametrize("parallel", ["ddp", "fsdp2"])
def test_two_processes_match_one(setup: dict, parallel: str) -> None:
    single = _run(setup, "single", 1, "none")
    multi = _run(setup, parallel, 2, parallel)
    a, b = _params(single), _params(multi)
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5, worst
    ca, cb = _curve(single), _curve(multi)
    assert sorted(ca) == list(range(1, STEPS + 1))
    assert ca == pytest.approx(cb, rel=1e-5)
    lines = [json.loads(s) for s in (multi / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["kind"] == "done" and lines[-1]["step"] == STEPS
    assert {n for r in lines if r["kind"] == "train" for n in r["loss_per_dataset"]} == {"ns", "fn"}


def test_max_restarts_recovers_a_killed_worker(setup: dict) -> None:
    """Rank 1 is SIGKILLed after step 3; torchrun restarts both, they resume from step 2 and finish identically."""
    reference = _run(setup, "ddp", 2, "ddp")
    out = _launch(setup, "restarted", 2, "ddp", {"PHYSVIZ_TEST_CRASH_AT_STEP": "3", "PHYSVIZ_TEST_CRASH_RANK": "1"},
                  ("--max-restarts=1",))
    assert (out / ".test_crash_3").exists()  # the crash really happened
    steps = [json.loads(s)["step"] for s in (out / "metrics.jsonl").read_text().splitlines()
             if json.loads(s)["kind"] == "train"]
    assert steps == list(range(1, STEPS + 1))  # the steps after the checkpoint ran again; their old lines were dropped
    assert _curve(out) == pytest.approx(_curve(reference), rel=1e-6)
    a, b = _params(reference), _params(out)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def test_two_nodes_recover_when_one_node_fails(setup: dict) -> None:
    """Two torchrun agents ("nodes") with c10d rendezvous; node 1's worker dies, only it counts a restart."""
    import socket

    reference = _run(setup, "ddp", 2, "ddp")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = setup["root"] / "two_nodes"
    cmd = [TORCHRUN, "--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
           "--rdzv-id=physviz-test", "--max-restarts=1", "-m", "physviz.train", str(setup["config"]),
           f"output_dir={out}", "parallel=ddp"]
    env = {**ENV, "PHYSVIZ_TEST_CRASH_AT_STEP": "3", "PHYSVIZ_TEST_CRASH_RANK": "1"}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(log[-3000:] for log in logs)
    assert (out / ".test_crash_3").exists()
    assert _curve(out) == pytest.approx(_curve(reference), rel=1e-6)
