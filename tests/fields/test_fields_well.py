"""Reading The Well's HDF5 layout: files written by hand and by The Well's own code."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import xarray as xr

import physviz
from physviz.errors import InconsistentShapeError
from tests.handmade import tensor_channels, write_well_2d, write_well_3d


def test_3d_file_with_vector_tensor_constant_and_scalar_fields(tmp_path):
    path = tmp_path / "three_d.hdf5"
    data = write_well_3d(path)
    ds = physviz.open_fields(path)
    assert dict(ds.sizes) == {"trajectory": 2, "time": 5, "x": 8, "y": 6, "z": 4}
    np.testing.assert_array_equal(ds.density.values, data["density"])
    assert ds.density.dims == ("trajectory", "time", "x", "y", "z")
    for name, idx in tensor_channels("velocity", "xyz", 1):
        np.testing.assert_array_equal(ds[name].values, data["velocity"][..., idx[0]])
    for name, idx in tensor_channels("stress", "xyz", 2):
        np.testing.assert_array_equal(ds[name].values, data["stress"][..., idx[0], idx[1]])
    assert len([v for v in ds.data_vars if v.startswith("stress_")]) == 9
    # neither sample- nor time-varying: no trajectory or time dim
    assert ds.obstacle.dims == ("x", "y", "z")
    np.testing.assert_array_equal(ds.obstacle.values, data["obstacle"])
    # time-varying, sample-varying scalar
    assert ds.forcing.dims == ("trajectory", "time")
    np.testing.assert_allclose(ds.forcing.values, data["forcing"])
    np.testing.assert_allclose(ds.z.values, data["z"])
    np.testing.assert_allclose(ds.time.values, data["time"])
    assert ds.attrs["simulation_parameters"] == {"Re": 100.0}
    assert ds.attrs["boundary_conditions"] == {"x": "periodic", "y": ["wall", "open"], "z": "open"}
    assert ds.attrs["dataset_name"] == "handmade_3d"
    assert ds.attrs["source"]["format"] == "the_well"


def test_file_written_by_the_wells_own_dummy_writer(tmp_path):
    from the_well.utils.dummy_data import write_dummy_data

    path = tmp_path / "dummy.hdf5"
    np.random.seed(0)
    write_dummy_data(str(path))
    ds = physviz.open_fields(path)
    with h5py.File(path) as f:
        field = f["t1_fields/field"][()]
        const = f["t0_fields/constant_field"][()]
        scalar = f["scalars/time_varying_scalar"][()]
    np.testing.assert_array_equal(ds.field_x.values, field[..., 0])
    np.testing.assert_array_equal(ds.field_y.values, field[..., 1])
    assert ds.constant_field.dims == ("trajectory", "x", "y")
    np.testing.assert_array_equal(ds.constant_field.values, const)
    assert ds.time_varying_scalar.dims == ("time",)
    np.testing.assert_allclose(ds.time_varying_scalar.values, scalar)
    assert ds.attrs["simulation_parameters"] == {"a": 0.25, "b": 0.75}
    # its masks are all False, which The Well reads as OPEN
    assert ds.attrs["boundary_conditions"] == {"x": "open", "y": "open"}


def test_xarray_engine_entry_point(tmp_path):
    path = tmp_path / "u.hdf5"
    u = write_well_2d(path)
    ds = xr.open_dataset(path, engine="physviz")
    np.testing.assert_array_equal(ds.u.isel(trajectory=1, time=2).values, u[1, 2])
    assert ds.attrs["source"]["format"] == "the_well"
    assert "physviz" in xr.backends.list_engines()


def test_directory_of_well_files_is_one_dataset_along_trajectory(tmp_path):
    train = tmp_path / "mydata" / "data" / "train"
    train.mkdir(parents=True)
    parts = [write_well_2d(train / f"part{i}.hdf5", n_traj=2 + i, seed=i) for i in range(3)]
    (tmp_path / "mydata" / "data" / "valid").mkdir()
    write_well_2d(tmp_path / "mydata" / "data" / "valid" / "v.hdf5", n_traj=1, seed=9)
    expected = np.concatenate(parts, axis=0)
    for where in (train, tmp_path / "mydata"):
        ds = physviz.open_fields(where)
        assert ds.sizes["trajectory"] == 9
        np.testing.assert_array_equal(ds.u.values, expected)
        # indexing across a file boundary, with a stride
        np.testing.assert_array_equal(ds.u.isel(trajectory=slice(1, 8, 3), time=0).values, expected[1:8:3, 0])
        np.testing.assert_array_equal(ds.u.isel(trajectory=-1).values, expected[-1])
        assert len(ds.attrs["source"]["files"]) == 3
    valid = physviz.open_fields(tmp_path / "mydata", split="valid")
    assert valid.sizes["trajectory"] == 1


def test_directory_with_mismatched_resolution_is_refused(tmp_path):
    write_well_2d(tmp_path / "a.hdf5", n=16)
    write_well_2d(tmp_path / "b.hdf5", n=8)
    with pytest.raises(InconsistentShapeError, match="b.hdf5"):
        physviz.open_fields(tmp_path)


def test_sample_varying_time_and_partial_dim_varying(tmp_path):
    path = tmp_path / "odd.hdf5"
    write_well_2d(path, n_traj=2, nt=4, n=8)
    with h5py.File(path, "a") as f:
        t = f["dimensions/time"][()]
        del f["dimensions/time"]
        d = f["dimensions"].create_dataset("time", data=np.stack([t, t]))  # identical rows
        d.attrs["sample_varying"] = np.bool_(True)
        d.attrs["time_varying"] = np.bool_(True)
        # a field constant along y, stored with a size-1 y axis
        prof = np.arange(8, dtype=np.float32).reshape(8, 1)
        d = f["t0_fields"].create_dataset("profile", data=prof)
        d.attrs["dim_varying"] = np.array([True, False])
        d.attrs["sample_varying"] = np.bool_(False)
        d.attrs["time_varying"] = np.bool_(False)
        f["t0_fields"].attrs["field_names"] = ["u", "profile"]
    ds = physviz.open_fields(path)
    assert ds.time.dims == ("time",)
    assert ds.profile.dims == ("x",)
    np.testing.assert_array_equal(ds.profile.values, np.arange(8))


def test_selecting_fields(tmp_path):
    path = tmp_path / "three_d.hdf5"
    write_well_3d(path)
    ds = physviz.open_fields(path, fields=["density", "velocity_z"])
    assert list(ds.data_vars) == ["density", "velocity_z"]
