"""Zero-shot test data from a solver that is not part of physviz (FiPy, finite volumes): the card's zero-shot rows.

Writes Well HDF5 files (physviz.fields.to_well) to docs/model_card/zero_shot/ (or the folder given):

- ``heat_slow.hdf5``: 2D heat equation, temperature, periodic 64x64 box; a smooth random field
  relaxing by about 1% per saved frame (the slowly evolving case a user's own simulation often is).
- ``allen_cahn.hdf5``: 2D Allen-Cahn phase separation (dc/dt = eps^2 lap c + c - c^3), concentration,
  periodic 64x64 box; domains form from small noise and coarsen.

Neither equation is in the pretraining corpus. Needs the optional extra: pip install 'physviz[external]'
(FiPy). Deterministic for a given FiPy/NumPy: seeds 0..n-1 per system.

    python scripts/make_external_data.py [OUT_DIR] [--trajectories 4] [--frames 20]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr

N = 64  # cells per axis
LENGTH = 1.0  # box side


def _smooth_field(rng: np.random.Generator, kmax: int = 4) -> np.ndarray:
    """A random periodic field of the low wavenumbers |k| <= kmax, unit standard deviation."""
    k = np.fft.fftfreq(N, 1.0 / N)
    kx, ky = np.meshgrid(k, k, indexing="ij")
    mask = (np.hypot(kx, ky) <= kmax) & (np.hypot(kx, ky) > 0)
    spec = mask * (rng.normal(size=(N, N)) + 1j * rng.normal(size=(N, N)))
    f = np.fft.ifft2(spec).real
    return f / f.std()


def _run(equation: str, seed: int, frames: int) -> tuple[np.ndarray, float]:
    """One trajectory (frames, N, N) of `equation` and its time between saved frames."""
    import fipy

    mesh = fipy.PeriodicGrid2D(nx=N, ny=N, dx=LENGTH / N, dy=LENGTH / N)
    rng = np.random.default_rng(seed)
    if equation == "heat":
        # D k^2 dt_save = 0.01 at the field's dominant wavenumber |k| ~ 3 * 2 pi: about 1% decay per frame
        diffusivity = float(rng.uniform(0.8, 1.2)) * 1e-4
        dt_save = 0.01 / (diffusivity * (3 * 2 * np.pi) ** 2)
        var = fipy.CellVariable(mesh=mesh, hasOld=True, value=(300.0 + 10.0 * _smooth_field(rng)).T.ravel())
        eq = fipy.TransientTerm() == fipy.DiffusionTerm(coeff=diffusivity)
        substeps = 2
    elif equation == "allen_cahn":
        eps = float(rng.uniform(0.012, 0.016))
        dt_save = 0.4
        var = fipy.CellVariable(mesh=mesh, hasOld=True, value=(0.05 * rng.normal(size=(N, N))).T.ravel())
        eq = (fipy.TransientTerm() == fipy.DiffusionTerm(coeff=eps**2) + var - fipy.ImplicitSourceTerm(coeff=var**2))
        substeps = 8
    else:
        raise ValueError(equation)
    out = [np.asarray(var.value).reshape(N, N).T.copy()]
    for _ in range(frames - 1):
        for _ in range(substeps):
            var.updateOld()
            eq.solve(var=var, dt=dt_save / substeps)
        out.append(np.asarray(var.value).reshape(N, N).T.copy())
    return np.stack(out).astype(np.float32), dt_save


def make(equation: str, field: str, trajectories: int, frames: int, warmup: int = 0) -> xr.Dataset:
    """A Dataset of `trajectories` runs (after `warmup` discarded frames) in physviz's layout."""
    runs, dts = zip(*(_run(equation, seed, frames + warmup) for seed in range(trajectories)))
    data = np.stack(runs)[:, warmup:]  # (trajectory, time, x, y)
    x = (np.arange(N) + 0.5) * LENGTH / N
    dt = float(np.mean(dts))
    return xr.Dataset(
        {field: (("trajectory", "time", "x", "y"), data)},
        coords={"time": np.arange(frames) * dt, "x": x, "y": x},
        attrs={"dataset_name": f"fipy_{equation}", "boundary_conditions": {"x": "periodic", "y": "periodic"},
               "simulation_parameters": {"solver": "FiPy (finite volumes, implicit)", "equation": equation,
                                         "cells": N, "dt_save": dt},
               "source": {"format": "fipy", "path": "", "system": equation}},
    )


def main() -> None:
    from physviz.fields import to_well

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path, default=Path(__file__).resolve().parents[1] / "docs/model_card/zero_shot")
    ap.add_argument("--trajectories", type=int, default=4)
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()
    sets = {"heat_slow": make("heat", "temperature", args.trajectories, args.frames),
            "allen_cahn": make("allen_cahn", "concentration", args.trajectories, args.frames, warmup=6)}
    for name, ds in sets.items():
        path = to_well(ds, args.out / f"{name}.hdf5", stats=False)
        v = ds[next(iter(ds.data_vars))].values
        change = np.sqrt((np.diff(v, axis=1) ** 2).mean(axis=(2, 3))) / v.std(axis=(2, 3))[:, 1:]
        print(f"{path}: {v.shape}, change per frame {change.mean():.4f} of the spatial std")


if __name__ == "__main__":
    main()
