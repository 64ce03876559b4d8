"""Reading PDEBench's HDF5 layouts, written by the tests as PDEBench lays them out."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

import physviz
from physviz.errors import InconsistentShapeError, UnknownFieldError


def _seed_file(path, n_seeds=3, nt=5, n=16, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n_seeds, nt, n, n, channels)).astype(np.float32)
    with h5py.File(path, "w") as f:
        for s in range(n_seeds):
            g = f.create_group(f"{s:04d}")
            g.create_dataset("data", data=data[s])
            grid = g.create_group("grid")
            grid.create_dataset("x", data=np.linspace(-1, 1, n, dtype=np.float32))
            grid.create_dataset("y", data=np.linspace(-2, 2, n, dtype=np.float32))
            grid.create_dataset("t", data=np.linspace(0, 5, nt, dtype=np.float32))
    return data


def test_per_seed_diffusion_reaction(tmp_path):
    path = tmp_path / "2D_diff-react_NA_NA.h5"
    data = _seed_file(path, channels=2)
    ds = physviz.open_fields(path)
    assert set(ds.data_vars) == {"activator", "inhibitor"}
    assert ds.activator.dims == ("trajectory", "time", "x", "y")
    np.testing.assert_array_equal(ds.activator.values, data[..., 0])
    np.testing.assert_array_equal(ds.inhibitor.isel(trajectory=slice(1, 3), time=-1).values, data[1:3, -1, ..., 1])
    np.testing.assert_allclose(ds.y.values, np.linspace(-2, 2, 16))
    np.testing.assert_allclose(ds.time.values, np.linspace(0, 5, 5))
    assert list(ds.trajectory.values) == [0, 1, 2]
    assert ds.attrs["source"]["format"] == "pdebench:seed_groups"
    assert ds.attrs["boundary_conditions"] == {"x": "wall", "y": "wall"}


def test_per_seed_shallow_water_and_custom_names(tmp_path):
    path = tmp_path / "2D_rdb_NA_NA.h5"
    data = _seed_file(path, channels=1)
    ds = physviz.open_fields(path)
    assert list(ds.data_vars) == ["height"]
    np.testing.assert_array_equal(ds.height.values, data[..., 0])
    other = tmp_path / "mine.h5"
    _seed_file(other, channels=2)
    ds = physviz.open_fields(other, field_names=["a", "b"], boundary_conditions="periodic")
    assert list(ds.data_vars) == ["a", "b"]
    assert ds.attrs["boundary_conditions"] == {"x": "periodic", "y": "periodic"}
    with pytest.raises(UnknownFieldError, match="2 channel"):
        physviz.open_fields(other, field_names=["a"])


def test_per_seed_groups_with_mismatched_shapes(tmp_path):
    path = tmp_path / "bad_seeds.h5"
    _seed_file(path, channels=1)
    with h5py.File(path, "a") as f:
        del f["0001/data"]
        f["0001"].create_dataset("data", data=np.zeros((5, 8, 8, 1), np.float32))
    with pytest.raises(InconsistentShapeError, match="0001/data"):
        physviz.open_fields(path)


def test_flat_cfd_layout(tmp_path):
    rng = np.random.default_rng(1)
    n, nt, nx = 3, 4, 16
    arrays = {k: rng.normal(size=(n, nt, nx, nx)).astype(np.float32) for k in ("density", "pressure", "Vx", "Vy")}
    path = tmp_path / "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5"
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
        f.create_dataset("x-coordinate", data=np.linspace(0, 1, nx, dtype=np.float32))
        f.create_dataset("y-coordinate", data=np.linspace(0, 1, nx, dtype=np.float32))
        f.create_dataset("t-coordinate", data=np.arange(nt + 1, dtype=np.float32) * 0.05)  # one longer, as PDEBench writes it
        f.attrs["M"] = 0.1
        f.attrs["eta"] = 0.01
        f.attrs["zeta"] = 0.01
    ds = physviz.open_fields(path)
    assert set(ds.data_vars) == {"density", "pressure", "velocity_x", "velocity_y"}
    np.testing.assert_array_equal(ds.velocity_y.values, arrays["Vy"])
    np.testing.assert_array_equal(ds.pressure.isel(trajectory=2, time=1).values, arrays["pressure"][2, 1])
    assert ds.sizes["time"] == nt
    np.testing.assert_allclose(ds.time.values, np.arange(nt) * 0.05, rtol=1e-6)
    assert ds.attrs["simulation_parameters"] == pytest.approx({"M": 0.1, "eta": 0.01, "zeta": 0.01})
    assert ds.attrs["boundary_conditions"] == {"x": "periodic", "y": "periodic"}


def test_flat_cfd_inconsistent_shapes(tmp_path):
    path = tmp_path / "cfd.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("density", data=np.zeros((2, 3, 8, 8), np.float32))
        f.create_dataset("pressure", data=np.zeros((2, 3, 8, 4), np.float32))
        f.create_dataset("Vx", data=np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(InconsistentShapeError, match="pressure"):
        physviz.open_fields(path)


def test_scalar_tensor_layout_1d_and_darcy(tmp_path):
    rng = np.random.default_rng(2)
    u = rng.normal(size=(4, 6, 32)).astype(np.float32)
    path = tmp_path / "1D_Advection_Sols_beta0.1.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=u)
        f.create_dataset("x-coordinate", data=np.linspace(0, 1, 32, dtype=np.float32))
        f.create_dataset("t-coordinate", data=np.linspace(0, 2, 7, dtype=np.float32))
    ds = physviz.open_fields(path)
    assert ds.u.dims == ("trajectory", "time", "x")
    np.testing.assert_array_equal(ds.u.values, u)
    assert ds.attrs["boundary_conditions"] == {"x": "periodic"}

    sol = rng.normal(size=(3, 1, 16, 16)).astype(np.float32)
    nu = rng.uniform(size=(3, 16, 16)).astype(np.float32)
    darcy = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    with h5py.File(darcy, "w") as f:
        f.create_dataset("tensor", data=sol)
        f.create_dataset("nu", data=nu)
    ds = physviz.open_fields(darcy)
    assert ds.u.dims == ("trajectory", "time", "x", "y") and ds.sizes["time"] == 1
    assert ds.nu.dims == ("trajectory", "x", "y")
    np.testing.assert_array_equal(ds.nu.values, nu)


def test_flat_incompressible_ns_layout(tmp_path):
    rng = np.random.default_rng(3)
    vel = rng.normal(size=(2, 5, 16, 16, 2)).astype(np.float32)
    part = rng.uniform(size=(2, 5, 16, 16, 1)).astype(np.float32)
    force = rng.normal(size=(2, 16, 16, 2)).astype(np.float32)
    path = tmp_path / "ns_incom_inhom_2d_512-0.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("velocity", data=vel)
        f.create_dataset("particles", data=part)
        f.create_dataset("force", data=force)
        f.create_dataset("t", data=np.tile(np.linspace(0, 1, 5, dtype=np.float32), (2, 1)))
    ds = physviz.open_fields(path)
    np.testing.assert_array_equal(ds.velocity_x.values, vel[..., 0])
    np.testing.assert_array_equal(ds.velocity_y.values, vel[..., 1])
    np.testing.assert_array_equal(ds.particles.values, part[..., 0])
    assert ds.force_y.dims == ("trajectory", "x", "y")
    np.testing.assert_array_equal(ds.force_y.values, force[..., 1])


def test_flat_cfd_3d(tmp_path):
    rng = np.random.default_rng(4)
    shape = (2, 3, 8, 6, 4)
    arrays = {k: rng.normal(size=shape).astype(np.float32) for k in ("density", "pressure", "Vx", "Vy", "Vz")}
    path = tmp_path / "3D_CFD_Rand_M1.0_Eta1e-08_Zeta1e-08_periodic_Train.hdf5"
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
        for axis, n in zip("xyz", shape[2:]):
            f.create_dataset(f"{axis}-coordinate", data=np.linspace(0, 1, n, dtype=np.float32))
        f.create_dataset("t-coordinate", data=np.arange(4, dtype=np.float32))
    ds = physviz.open_fields(path)
    assert ds.velocity_z.dims == ("trajectory", "time", "x", "y", "z")
    np.testing.assert_array_equal(ds.velocity_z.values, arrays["Vz"])
    assert ds.attrs["boundary_conditions"] == {"x": "periodic", "y": "periodic", "z": "periodic"}
