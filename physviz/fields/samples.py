"""Built-in sample data from exact solutions (no simulator needed): Taylor-Green vortices."""
from __future__ import annotations

from typing import Any

import numpy as np


def taylor_green(
    n: int = 64,
    steps: int = 20,
    dt: float = 0.1,
    nu: float = 0.01,
    k: int = 1,
    amplitude: float = 1.0,
    shift: tuple[float, float] = (0.0, 0.0),
    dtype: Any = np.float32,
) -> Any:
    """The 2D Taylor-Green vortex on [0, 2pi)^2, an exact decaying Navier-Stokes solution."""
    import xarray as xr

    if n < 4:
        raise ValueError(f"n={n} is too small; use at least 4 grid points per axis.")
    if nu < 0:
        raise ValueError(f"nu={nu} is negative; viscosity must be >= 0.")
    x = np.arange(n) * (2 * np.pi / n)
    t = np.arange(steps) * dt
    X, Y = np.meshgrid(x + shift[0], x + shift[1], indexing="ij")
    decay = amplitude * np.exp(-2 * nu * k * k * t)[:, None, None]
    u = decay * (np.sin(k * X) * np.cos(k * Y))[None]
    v = decay * (-np.cos(k * X) * np.sin(k * Y))[None]
    w = decay * (2 * k * np.sin(k * X) * np.sin(k * Y))[None]
    dims = ("time", "x", "y")
    return xr.Dataset(
        {
            "vorticity": (dims, w.astype(dtype)),
            "velocity_x": (dims, u.astype(dtype)),
            "velocity_y": (dims, v.astype(dtype)),
        },
        coords={"time": t, "x": x, "y": x},
        attrs={
            "dataset_name": "taylor_green",
            "boundary_conditions": {"x": "periodic", "y": "periodic"},
            "simulation_parameters": {"nu": float(nu), "k": int(k), "amplitude": float(amplitude)},
            "source": {"format": "physviz.samples", "path": ""},
        },
    )


def sample_dataset(trajectories: int = 4, n: int = 64, steps: int = 20, seed: int = 0) -> Any:
    """Several Taylor-Green trajectories (random wavenumber, amplitude and phase) along `trajectory`."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(trajectories):
        k = int(rng.integers(1, 4))
        parts.append(
            taylor_green(
                n=n, steps=steps, k=k, amplitude=float(rng.uniform(0.5, 1.5)), shift=tuple(rng.uniform(0, 2 * np.pi, 2))
            ).drop_attrs()
        )
    ds = xr.concat(parts, dim="trajectory")
    ds.attrs.update(
        dataset_name="taylor_green",
        boundary_conditions={"x": "periodic", "y": "periodic"},
        simulation_parameters={"nu": 0.01, "seed": int(seed)},
        source={"format": "physviz.samples", "path": ""},
    )
    return ds
