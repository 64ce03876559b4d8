"""Field files written by hand with h5py/xarray in the tests, independent of physviz's writer."""
from __future__ import annotations

import itertools
from pathlib import Path

import h5py
import numpy as np


def _flag(obj: h5py.HLObject, sample: bool, time: bool) -> None:
    obj.attrs["sample_varying"] = np.bool_(sample)
    obj.attrs["time_varying"] = np.bool_(time)


def write_well_3d(path: Path, n_traj: int = 2, nt: int = 5, shape: tuple[int, int, int] = (8, 6, 4), seed: int = 0) -> dict:
    """A 3D Well file with t0, t1 and t2 fields, a constant field, scalars and mixed BCs."""
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    data = {
        "density": rng.normal(size=(n_traj, nt, nx, ny, nz)).astype(np.float32),
        "velocity": rng.normal(size=(n_traj, nt, nx, ny, nz, 3)).astype(np.float32),
        "stress": rng.normal(size=(n_traj, nt, nx, ny, nz, 3, 3)).astype(np.float32),
        "obstacle": rng.normal(size=(nx, ny, nz)).astype(np.float32),  # neither sample- nor time-varying
        "forcing": rng.normal(size=(n_traj, nt)).astype(np.float32),  # time-varying scalar
        "x": np.linspace(0, 1, nx, dtype=np.float32),
        "y": np.linspace(0, 2, ny, dtype=np.float32),
        "z": np.linspace(0, 3, nz, dtype=np.float32),
        "time": np.arange(nt, dtype=np.float32) * 0.5,
    }
    with h5py.File(path, "w") as f:
        f.attrs["dataset_name"] = "handmade_3d"
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = 3
        f.attrs["n_trajectories"] = n_traj
        f.attrs["simulation_parameters"] = ["Re"]
        f.attrs["Re"] = 100.0
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y", "z"]
        for k in ("time", "x", "y", "z"):
            d = dims.create_dataset(k, data=data[k])
            _flag(d, False, k == "time")
        bcs = f.create_group("boundary_conditions")
        for name, axis, kind, ends in [("x_periodic", "x", "PERIODIC", (1, 1)), ("y_wall", "y", "WALL", (1, 0)), ("y_open", "y", "OPEN", (0, 1))]:
            g = bcs.create_group(name)
            g.attrs["bc_type"] = kind
            g.attrs["associated_dims"] = [axis]
            g.attrs["associated_fields"] = []
            _flag(g, False, False)
            n = {"x": nx, "y": ny}[axis]
            mask = np.zeros(n, bool)
            mask[0], mask[-1] = bool(ends[0]), bool(ends[1])
            g.create_dataset("mask", data=mask)
        sc = f.create_group("scalars")
        sc.attrs["field_names"] = ["Re", "forcing"]
        d = sc.create_dataset("Re", data=100.0)
        _flag(d, False, False)
        d = sc.create_dataset("forcing", data=data["forcing"])
        _flag(d, True, True)
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = ["density", "obstacle"]
        d = t0.create_dataset("density", data=data["density"])
        d.attrs["dim_varying"] = np.array([True] * 3)
        _flag(d, True, True)
        d = t0.create_dataset("obstacle", data=data["obstacle"])
        d.attrs["dim_varying"] = np.array([True] * 3)
        _flag(d, False, False)
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = ["velocity"]
        d = t1.create_dataset("velocity", data=data["velocity"])
        d.attrs["dim_varying"] = np.array([True] * 3)
        _flag(d, True, True)
        t2 = f.create_group("t2_fields")
        t2.attrs["field_names"] = ["stress"]
        d = t2.create_dataset("stress", data=data["stress"])
        d.attrs["dim_varying"] = np.array([True] * 3)
        d.attrs["symmetric"] = np.bool_(False)
        d.attrs["antisymmetric"] = np.bool_(False)
        _flag(d, True, True)
    return data


def tensor_channels(base: str, dims: str, order: int) -> list[tuple[str, tuple[int, ...]]]:
    """(channel name, component index) pairs in The Well's order."""
    return [(f"{base}_{''.join(dims[i] for i in idx)}", idx) for idx in itertools.product(range(len(dims)), repeat=order)]


def write_well_2d(path: Path, n_traj: int = 3, nt: int = 6, n: int = 16, seed: int = 0, name: str = "handmade_2d", big: int = 0) -> np.ndarray:
    """A plain 2D Well file with one scalar field `u` (optionally `big` extra time steps)."""
    rng = np.random.default_rng(seed)
    nt = nt + big
    u = rng.normal(size=(n_traj, nt, n, n)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.attrs.update(dataset_name=name, grid_type="cartesian", n_spatial_dims=2, n_trajectories=n_traj)
        f.attrs["simulation_parameters"] = []
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        for k, v in (("time", np.arange(nt, dtype=np.float32)), ("x", np.arange(n, dtype=np.float32)), ("y", np.arange(n, dtype=np.float32))):
            d = dims.create_dataset(k, data=v)
            _flag(d, False, k == "time")
        f.create_group("boundary_conditions")
        f.create_group("scalars").attrs["field_names"] = []
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = ["u"]
        d = t0.create_dataset("u", data=u)
        d.attrs["dim_varying"] = np.array([True, True])
        _flag(d, True, True)
        for g in ("t1_fields", "t2_fields"):
            f.create_group(g).attrs["field_names"] = []
    return u
