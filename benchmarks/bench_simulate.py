"""Simulators: solver steps per second at 128^2 (32^3 in 3D), float32 against float64, and corpus time."""
from __future__ import annotations

import tempfile
import time

from benchmarks.common import Result, Timing, time_call

# (system, params) timed at the sizes, batch 4
CASES = (
    ("navier_stokes", {"regime": "decaying"}),
    ("navier_stokes", {"regime": "kolmogorov"}),
    ("shallow_water", {"regime": "dam_break"}),
    ("fitzhugh_nagumo", {}),
    ("gray_scott", {"regime": "spots"}),
    ("euler", {"regime": "low_mach"}),
    ("euler", {"regime": "high_mach"}),
    ("gray_scott_3d", {"regime": "spots"}),
)
BATCH = 4


def _step_timing(system: str, params: dict, dtype: str, repeats: int) -> Timing:
    """Median wall time of one solver step (stable-step computation included) on a batch of 4."""
    import torch

    from physviz.fields.simulate.run import _trajectory_generator, make_solver

    resolution = 32 if system.endswith("_3d") else 128
    solver = make_solver(system, resolution=resolution, dtype=dtype, device="cpu", **params)
    states, plist = [], []
    for i in range(BATCH):
        s, p = solver.initial_condition(_trajectory_generator(0, i))
        states.append(s)
        plist.append(p)
    state = torch.stack(states).to(solver.dtype)
    solver.begin_batch({k: torch.tensor([p[k] for p in plist], dtype=solver.dtype) for k in plist[0]})
    box = {"s": state}

    def one() -> None:
        box["s"] = solver.step(box["s"], solver.max_dt(box["s"]))

    return time_call(one, repeats, warmup=3)


def _corpus_estimate(quick: bool) -> Result:
    """Generate a scaled-down bundled corpus, extrapolate to the planned trajectory counts."""
    from physviz.recipes.corpus import BUNDLED_CORPUS, generate_corpus

    with tempfile.TemporaryDirectory() as tmp:
        entries = BUNDLED_CORPUS if not quick else tuple(e for e in BUNDLED_CORPUS[:3])
        t0 = time.perf_counter()
        seconds = generate_corpus(tmp, entries, scale=0.0, progress=False)  # 3 trajectories each
        measured = time.perf_counter() - t0
    planned = sum(seconds[e.name()] * e.trajectories / 3 for e in entries)
    n_traj = sum(e.trajectories for e in entries)
    return Result(
        "simulate", f"corpus: {len(entries)} datasets, 3 trajectories each (measured)", Timing.of([measured]), None, "-",
        note=f"extrapolated to the planned {n_traj} trajectories: {planned / 60:.1f} min",
        extra={"per_dataset_s": seconds, "planned_total_s": planned},
    )


def run(quick: bool) -> list[Result]:
    """Steps per second per system; the float64 run of the same solver is the peer."""
    results = []
    repeats = 5 if quick else 20
    cases = CASES if not quick else CASES[:1] + CASES[2:5] + CASES[5:6] + CASES[7:]
    for system, params in cases:
        f32 = _step_timing(system, params, "float32", repeats)
        f64 = _step_timing(system, params, "float64", repeats)
        size = "32^3" if system.endswith("_3d") else "128^2"
        label = f"{system}{' ' + params['regime'] if 'regime' in params else ''} step, {size}, batch {BATCH}"
        results.append(Result("simulate", label, f32, f64, "same solver, float64", note=f"{1 / f32.median:.1f} steps/s (float32)"))
    results.append(_corpus_estimate(quick))
    return results
