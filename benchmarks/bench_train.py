"""Training: samples/s of 2 torchrun processes (DDP, FSDP2) against 1 process (scaling efficiency), and
window-loading throughput of physviz.train's lazy Well reader against the_well's WellDataset on the same files."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Result, Timing

ROOT = Path(__file__).resolve().parents[1]
RES, N_TRAJ, N_TIME, N_IN = 64, 8, 24, 4


def _dataset(folder: Path) -> Path:
    from physviz.fields.simulate.run import simulate

    out = folder / "ns"
    simulate("navier_stokes", N_TRAJ, resolution=RES, steps=N_TIME, seed=0, out=out, progress=False,
             splits=(1.0, 0.0, 0.0))
    return out


def _train(data: Path, out: Path, nproc: int, parallel: str, steps: int) -> list[float]:
    """samples/s of each logged step (after 3 warm-up steps) of a real run, one thread per process."""
    import yaml

    cfg = {
        "output_dir": str(out),
        "model": {"preset": "tiny"},
        "data": [{"path": str(data)}],
        "steps": steps, "n_steps_input": N_IN,
        "batch": {"tokens": 1024, "scope": "rank"},  # the same per-rank batch: ideal scaling is 2x samples/s
        "checkpoint_every": 0, "valid_batches": 0, "progress": False, "log_every": 1,
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if nproc == 1:
        cmd = [sys.executable, "-m", "physviz.train", str(path)]
    else:
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
        cmd = [torchrun, "--standalone", f"--nproc-per-node={nproc}", "-m", "physviz.train", str(path), f"parallel={parallel}"]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=1200)
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["samples_per_s"] for r in lines if r["kind"] == "train" and r["step"] > 3]


def _per_sample(sps: list[float]) -> Timing:
    """Seconds per sample from per-step samples/s."""
    return Timing(1 / statistics.median(sps), 1 / max(sps), 1 / min(sps), len(sps))


def _loading(data: Path, repeats: int) -> tuple[Timing, Timing]:
    """Seconds per window: ours (h5py hyperslab per window) and the_well's WellDataset.__getitem__."""
    import numpy as np
    from the_well.data import WellDataset

    from physviz.train.config import DatasetSpec
    from physviz.train.sources import build_sources

    ours, _ = build_sources(DatasetSpec(path=str(data)), "ns", N_IN, "data[0]", with_std=False)
    peer = WellDataset(path=str(data), well_split_name="train", n_steps_input=N_IN, n_steps_output=1,
                       use_normalization=False)
    assert len(peer) == len(ours)
    idx = np.random.default_rng(0).permutation(len(ours))[:200]
    x, y = ours.window(int(idx[0]))
    s = peer[int(idx[0])]
    np.testing.assert_array_equal(s["input_fields"].numpy().transpose(0, 3, 1, 2), x)  # the same windows

    def timed(fn) -> Timing:
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in idx:
                fn(int(i))
            samples.append((time.perf_counter() - t0) / len(idx))
        return Timing.of(samples)

    return timed(ours.window), timed(peer.__getitem__)


def run(quick: bool) -> list[Result]:
    """Scaling efficiency of 2 processes (DDP, FSDP2) and window loading, ours vs the_well."""
    steps = 15 if quick else 60
    out: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="physviz-bench-train-") as tmp:
        tmp_path = Path(tmp)
        data = _dataset(tmp_path)
        one = _train(data, tmp_path / "one", 1, "none", steps)
        for parallel in ("ddp", "fsdp2"):
            two = _train(data, tmp_path / parallel, 2, parallel, steps)
            eff = statistics.median(two) / statistics.median(one) / 2
            out.append(Result(
                "train", f"2 processes {parallel.upper()} vs 1, tiny, {N_IN}x{RES}^2x3 (s/sample)",
                _per_sample(two), _per_sample(one), "1 process", unit="s/sample",
                note=f"{statistics.median(two):.1f} vs {statistics.median(one):.1f} samples/s: scaling efficiency "
                f"{eff:.0%} (gloo, 1 thread per process, same per-rank batch)",
                extra={"samples_per_s_2": statistics.median(two), "samples_per_s_1": statistics.median(one),
                       "efficiency": eff},
            ))
        ours, peer = _loading(data, 3 if quick else 10)
        out.append(Result(
            "train", f"load one window ({N_IN}+1 frames, {RES}^2, 3 fields)", ours, peer, "the_well WellDataset",
            note=f"{1 / ours.median:.0f} vs {1 / peer.median:.0f} windows/s; same files, same values",
        ))
    return out


if __name__ == "__main__":
    for r in run("--quick" in sys.argv):
        print(f"{r.name}: ours {r.ours.median:.3g} {r.unit}, {r.peer_name} {r.peer.median if r.peer else float('nan'):.3g}, "
              f"ratio {r.ratio:.2f}; {r.note}")
