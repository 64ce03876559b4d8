"""Hostile field files: each is refused with one PhysvizError naming the file (and field), or read faithfully."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

import physviz
from physviz.cli.main import main as cli_main
from physviz.errors import (
    CorruptFileError,
    ExternalDataError,
    FieldFileNotFoundError,
    OptionError,
    PhysvizError,
    SchemaError,
)
from tests.handmade import write_well_2d

pytestmark = pytest.mark.filterwarnings("ignore")


def refused(exc_type: type[BaseException], fn, *names: str) -> PhysvizError:
    """fn() raises exc_type (a PhysvizError), in one line naming every one of `names`."""
    with pytest.raises(exc_type) as info:
        result = fn()
        if hasattr(result, "load"):
            result.load()
    exc = info.value
    assert isinstance(exc, PhysvizError), repr(exc)
    text = str(exc)
    assert "\n" not in text, text
    for name in names:
        assert name in text, (name, text)
    return exc


def _plain(n_time: int = 16, n_x: int = 64, name: str = "density") -> xr.Dataset:
    rng = np.random.default_rng(0)
    return xr.Dataset(
        {name: (("time", "x"), rng.uniform(1, 2, size=(n_time, n_x)))},
        coords={"time": np.arange(n_time, dtype=float), "x": np.linspace(0, 1, n_x)},
    )


def _zarr(path: Path, fill: object = "default", zarr_format: int = 2) -> Path:
    enc: dict = {"chunks": (4, 64)}
    if fill != "default":
        enc["_FillValue"] = fill
    _plain().to_zarr(path, zarr_format=zarr_format, encoding={"density": enc}, consolidated=False)
    return path


def _cut(path: Path, size: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:size])


# -- NetCDF ---------------------------------------------------------------------------------------------------


def test_netcdf3_cut_in_half_is_refused_as_truncated(tmp_path):
    path = tmp_path / "half.nc"
    _plain().to_netcdf(path, format="NETCDF3_64BIT")
    _cut(path, path.stat().st_size // 2)
    exc = refused(CorruptFileError, lambda: physviz.open_fields(path), "half.nc")
    assert "truncated" in str(exc)


def test_netcdf3_record_variable_cut_is_refused(tmp_path):
    path = tmp_path / "records.nc"
    _plain().to_netcdf(path, format="NETCDF3_CLASSIC", unlimited_dims=["time"])
    _cut(path, path.stat().st_size - 100)
    refused(CorruptFileError, lambda: physviz.open_fields(path), "records.nc", "truncated")


def test_netcdf3_of_40_bytes_is_refused_as_truncated(tmp_path):
    path = tmp_path / "stub.nc"
    _plain().to_netcdf(path, format="NETCDF3_64BIT")
    _cut(path, 40)
    exc = refused(CorruptFileError, lambda: physviz.open_fields(path), "stub.nc")
    assert "spatial" not in str(exc)


def test_whole_netcdf3_still_opens(tmp_path):
    for fmt, unlimited in (("NETCDF3_64BIT", None), ("NETCDF3_CLASSIC", ["time"])):
        path = tmp_path / f"{fmt}.nc"
        _plain().to_netcdf(path, format=fmt, unlimited_dims=unlimited)
        with physviz.open_fields(path) as ds:
            np.testing.assert_allclose(ds.density.values, _plain().density.values)


def test_netcdf4_damaged_chunk_names_the_file_and_field(tmp_path):
    path = tmp_path / "damaged.nc"
    _plain().to_netcdf(path, engine="h5netcdf", encoding={"density": {"zlib": True, "chunksizes": (4, 64)}})
    with h5py.File(path, "r") as f:
        offset = f["density"].id.get_chunk_info(1).byte_offset
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 32] = b"\xff" * 32
    path.write_bytes(bytes(raw))
    ds = physviz.open_fields(path)
    refused(CorruptFileError, lambda: ds.density[4:8].values, "damaged.nc", "density")


def test_netcdf_with_two_dims_mapping_to_time_is_refused(tmp_path):
    path = tmp_path / "dup.nc"
    xr.Dataset({"density": (("t", "time", "x"), np.ones((2, 3, 8)))}).to_netcdf(path)
    refused(SchemaError, lambda: physviz.open_fields(path), "dup.nc", "'t'", "'time'")


# -- Zarr -----------------------------------------------------------------------------------------------------


def test_zarr_missing_chunk_without_fill_value_is_reported(tmp_path):
    store = _zarr(tmp_path / "nofill.zarr", fill=None)
    (store / "density" / "1.0").unlink()
    exc = refused(CorruptFileError, lambda: physviz.open_fields(store), "nofill.zarr", "density", "1.0")
    assert "missing" in str(exc)


def test_zarr_missing_chunk_with_default_fill_is_reported_as_missing_not_nan(tmp_path):
    store = _zarr(tmp_path / "nanfill.zarr")
    (store / "density" / "2.0").unlink()
    exc = refused(CorruptFileError, lambda: physviz.open_fields(store), "nanfill.zarr", "density", "2.0")
    assert "NaN" not in str(exc)


def test_zarr_v3_missing_chunk_is_reported(tmp_path):
    store = _zarr(tmp_path / "v3.zarr", zarr_format=3)
    (store / "density" / "c" / "3" / "0").unlink()
    refused(CorruptFileError, lambda: physviz.open_fields(store), "v3.zarr", "density", "c/3/0")


def test_zarr_missing_chunks_read_as_fill_on_request(tmp_path):
    store = _zarr(tmp_path / "sparse.zarr", fill=None)
    (store / "density" / "1.0").unlink()
    with physviz.open_fields(store, missing_chunks="fill") as ds:
        values = ds.density.values
    assert (values[4:8] == 0).all() and (values[:4] > 0).all()
    refused(OptionError, lambda: physviz.open_fields(store, missing_chunks="maybe"), "missing_chunks")


def test_zarr_corrupt_chunk_names_store_variable_and_chunk(tmp_path):
    store = _zarr(tmp_path / "corrupt.zarr")
    (store / "density" / "1.0").write_bytes(b"garbage!" * 8)
    ds = physviz.open_fields(store)
    np.testing.assert_allclose(ds.density[:4].values, _plain().density.values[:4])  # other chunks read
    refused(CorruptFileError, lambda: ds.density.values, "corrupt.zarr", "density", "1.0")


def test_zarr_array_without_metadata_is_refused(tmp_path):
    store = _zarr(tmp_path / "nometa.zarr")
    (store / "density" / ".zarray").unlink()
    exc = refused(CorruptFileError, lambda: physviz.open_fields(store), "nometa.zarr", "density", ".zarray")
    assert "spatial" not in str(exc)


# -- HDF5: external data --------------------------------------------------------------------------------------


def _well_with_external_storage(tmp_path: Path, target: Path) -> Path:
    path = tmp_path / "external.hdf5"
    write_well_2d(path, n_traj=1, nt=2, n=4)
    with h5py.File(path, "a") as f:
        del f["t0_fields/u"]
        d = f["t0_fields"].create_dataset("u", shape=(1, 2, 4, 4), dtype="u1", external=[(str(target), 0, 32)])
        d.attrs["dim_varying"] = np.array([True, True])
        d.attrs["sample_varying"] = np.bool_(True)
        d.attrs["time_varying"] = np.bool_(True)
    return path


def test_hdf5_external_storage_is_refused_unless_allowed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    path = _well_with_external_storage(tmp_path, secret)
    refused(ExternalDataError, lambda: physviz.open_fields(path), "external.hdf5", "secret.txt", "allow_external")
    with physviz.open_fields(path, allow_external=True) as ds:
        assert ds.u.values.tobytes() == secret.read_bytes()[:32]
    refused(OptionError, lambda: physviz.open_fields(path, allow_external="yes"), "allow_external")


def _well_with_external_link(tmp_path: Path, target_name: str) -> Path:
    other = tmp_path / "other.hdf5"
    u = write_well_2d(other, n_traj=1, nt=2, n=4)
    path = tmp_path / "linked.hdf5"
    write_well_2d(path, n_traj=1, nt=2, n=4)
    with h5py.File(path, "a") as f:
        del f["t0_fields/u"]
        f["t0_fields/u"] = h5py.ExternalLink(target_name, "/t0_fields/u")
    return path, u


def test_hdf5_external_link_is_refused_unless_allowed(tmp_path):
    path, u = _well_with_external_link(tmp_path, str(tmp_path / "other.hdf5"))
    refused(ExternalDataError, lambda: physviz.open_fields(path), "linked.hdf5", "other.hdf5", "allow_external")
    with physviz.open_fields(path, allow_external=True) as ds:
        np.testing.assert_array_equal(ds.u.values, u)


def test_hdf5_external_link_to_missing_file_is_a_clear_error(tmp_path):
    path, _ = _well_with_external_link(tmp_path, str(tmp_path / "gone.hdf5"))
    refused(FieldFileNotFoundError, lambda: physviz.open_fields(path, allow_external=True), "linked.hdf5", "gone.hdf5")
    refused(ExternalDataError, lambda: physviz.open_fields(path), "linked.hdf5", "gone.hdf5")


def test_hdf5_virtual_dataset_is_refused_unless_allowed(tmp_path):
    other = tmp_path / "source.hdf5"
    u = write_well_2d(other, n_traj=1, nt=2, n=4)
    path = tmp_path / "virtual.hdf5"
    write_well_2d(path, n_traj=1, nt=2, n=4)
    layout = h5py.VirtualLayout(shape=u.shape, dtype=u.dtype)
    layout[...] = h5py.VirtualSource(str(other), "t0_fields/u", shape=u.shape)
    with h5py.File(path, "a") as f:
        del f["t0_fields/u"]
        d = f["t0_fields"].create_virtual_dataset("u", layout)
        d.attrs["dim_varying"] = np.array([True, True])
        d.attrs["sample_varying"] = np.bool_(True)
        d.attrs["time_varying"] = np.bool_(True)
    refused(ExternalDataError, lambda: physviz.open_fields(path), "virtual.hdf5", "source.hdf5", "allow_external")
    with physviz.open_fields(path, allow_external=True) as ds:
        np.testing.assert_array_equal(ds.u.values, u)


# -- HDF5: malformed metadata ---------------------------------------------------------------------------------


def _well(tmp_path: Path, name: str = "w.hdf5", **kw) -> Path:
    path = tmp_path / name
    write_well_2d(path, n_traj=2, nt=3, n=8, **kw)
    return path


def _both(path: Path, exc_type: type[BaseException], *names: str) -> None:
    """open_fields and `physviz info` both refuse the file in one line naming `names`."""
    refused(exc_type, lambda: physviz.open_fields(path), str(path), *names)
    assert cli_main(["info", str(path)]) == 2


def test_malformed_physviz_attrs_json(tmp_path, capsys):
    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        f.attrs["physviz_attrs"] = "{not json"
    _both(path, SchemaError, "physviz_attrs")
    with h5py.File(path, "a") as f:
        f.attrs["physviz_attrs"] = "[1, 2]"
    _both(path, SchemaError, "physviz_attrs")
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 2


def test_group_where_a_field_dataset_should_be(tmp_path):
    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        del f["t0_fields/u"]
        f["t0_fields"].create_group("u")
    _both(path, SchemaError, "t0_fields/u")


def test_group_where_a_coordinate_should_be(tmp_path):
    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        del f["dimensions/x"]
        f["dimensions"].create_group("x")
    _both(path, SchemaError, "dimensions/x")


def test_pdebench_group_where_a_dataset_should_be(tmp_path):
    path = tmp_path / "2D_CFD_rand.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("density")
        f.create_dataset("Vx", data=np.zeros((2, 3, 4, 4)))
    _both(path, SchemaError, "density")


def test_n_trajectories_not_a_number(tmp_path):
    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        f.attrs["n_trajectories"] = "two"
    _both(path, SchemaError, "n_trajectories", "two")
    with h5py.File(path, "a") as f:
        f.attrs["n_trajectories"] = -3
    _both(path, SchemaError, "n_trajectories")


def test_absurd_declared_coordinate_is_refused_before_reading(tmp_path):
    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        del f["dimensions/x"]
        f["dimensions"].create_dataset("x", shape=(20_000_000_000,), dtype="f8", chunks=(1 << 16,))
    assert path.stat().st_size < 1 << 20
    _both(path, SchemaError, "dimensions/x", "20000000000")


def test_spatial_dims_attribute_of_wrong_type(tmp_path):
    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        f["dimensions"].attrs["spatial_dims"] = 7
    _both(path, PhysvizError, "spatial_dims")


def test_dim_varying_attribute_of_wrong_type(tmp_path):
    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        f["t0_fields/u"].attrs["dim_varying"] = "yes"
    _both(path, SchemaError, "t0_fields/u", "dim_varying")


def test_scalar_of_wrong_shape_is_refused(tmp_path):
    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        f["scalars"].attrs["field_names"] = ["viscosity"]
        d = f["scalars"].create_dataset("viscosity", data=np.ones(5))
        d.attrs["sample_varying"] = np.bool_(True)
        d.attrs["time_varying"] = np.bool_(False)
    _both(path, SchemaError, "scalars/viscosity")


def test_hdf5_truncated_copy(tmp_path):
    path = _well(tmp_path, big=40)
    _cut(path, path.stat().st_size * 2 // 3)
    refused(CorruptFileError, lambda: physviz.open_fields(path), "w.hdf5")


# -- field values and axes ------------------------------------------------------------------------------------


def test_complex_field_is_refused_at_open(tmp_path):
    path = tmp_path / "complex.nc"
    xr.Dataset({"density": (("time", "x"), np.ones((3, 8)) + 1j)}).to_netcdf(path, engine="h5netcdf", invalid_netcdf=True)
    exc = refused(SchemaError, lambda: physviz.open_fields(path), "complex.nc", "density")
    assert "real" in str(exc) and "imag" in str(exc)


def test_complex_field_in_well_file_is_refused(tmp_path):
    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        u = f["t0_fields/u"][()]
        del f["t0_fields/u"]
        d = f["t0_fields"].create_dataset("u", data=u.astype(np.complex64))
        d.attrs["dim_varying"] = np.array([True, True])
    refused(SchemaError, lambda: physviz.open_fields(path), "w.hdf5", "'u'", "complex")


def test_well_header_reader_used_by_training_refuses_complex_and_external(tmp_path):
    from physviz.fields.well import read_header

    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        u = f["t0_fields/u"][()]
        del f["t0_fields/u"]
        f["t0_fields"].create_dataset("u", data=u.astype(np.complex64))
    with h5py.File(path, "r") as f:
        refused(SchemaError, lambda: read_header(str(path), f), "w.hdf5", "'u'", "complex")
    linked, _ = _well_with_external_link(tmp_path, str(tmp_path / "other.hdf5"))
    with h5py.File(linked, "r") as f:
        refused(ExternalDataError, lambda: read_header(str(linked), f), "linked.hdf5", "other.hdf5")


def test_string_field_is_refused_at_open(tmp_path):
    path = tmp_path / "strings.nc"
    xr.Dataset({"density": (("time", "x"), np.full((3, 8), "ab"))}).to_netcdf(path)
    refused(SchemaError, lambda: physviz.open_fields(path), "strings.nc", "density")


def test_string_field_can_be_left_out(tmp_path):
    path = tmp_path / "mixed.nc"
    ds = _plain()
    ds["label"] = (("time", "x"), np.full((16, 64), "ab"))
    ds.to_netcdf(path)
    with physviz.open_fields(path, fields=["density"]) as opened:
        assert list(opened.data_vars) == ["density"]


@pytest.mark.parametrize("axis", ["x", "time"])
def test_zero_length_axis_is_refused(tmp_path, axis):
    path = tmp_path / f"empty_{axis}.nc"
    shape = (3, 0) if axis == "x" else (0, 4)
    xr.Dataset({"density": (("time", "x"), np.zeros(shape))}).to_netcdf(path)
    refused(SchemaError, lambda: physviz.open_fields(path), f"empty_{axis}.nc", f"'{axis}'")


def test_zero_length_time_in_well_file_is_refused(tmp_path):
    path = tmp_path / "nothing.hdf5"
    write_well_2d(path, n_traj=2, nt=0, n=4)
    refused(SchemaError, lambda: physviz.open_fields(path), "nothing.hdf5", "'time'")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_coordinate_is_refused(tmp_path, bad):
    path = tmp_path / "nanx.nc"
    xr.Dataset({"density": (("time", "x"), np.ones((3, 4)))}, coords={"x": [0.0, 1.0, bad, 3.0]}).to_netcdf(path)
    refused(SchemaError, lambda: physviz.open_fields(path), "nanx.nc", "'x'")


def test_non_finite_coordinate_in_well_file_is_refused(tmp_path):
    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        f["dimensions/y"][3] = np.nan
    refused(SchemaError, lambda: physviz.open_fields(path), "w.hdf5", "'y'")


def test_time_going_backwards_is_refused(tmp_path):
    path = tmp_path / "backwards.nc"
    xr.Dataset({"density": (("time", "x"), np.ones((3, 4)))}, coords={"time": [0.0, 2.0, 1.0]}).to_netcdf(path)
    refused(SchemaError, lambda: physviz.open_fields(path), "backwards.nc", "'time'", "increas")


def test_repeated_time_in_well_file_is_refused(tmp_path):
    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        f["dimensions/time"][...] = np.array([0.0, 1.0, 1.0])
    refused(SchemaError, lambda: physviz.open_fields(path), "w.hdf5", "'time'")


def test_zigzag_spatial_coordinate_is_refused_but_decreasing_is_read(tmp_path):
    path = tmp_path / "lat.nc"
    xr.Dataset({"density": (("time", "x"), np.ones((3, 4)))}, coords={"x": [3.0, 2.0, 1.0, 0.0]}).to_netcdf(path)
    with physviz.open_fields(path) as ds:
        assert ds.x.values[0] == 3.0
    bad = tmp_path / "zigzag.nc"
    xr.Dataset({"density": (("time", "x"), np.ones((3, 4)))}, coords={"x": [0.0, 2.0, 1.0, 3.0]}).to_netcdf(bad)
    refused(SchemaError, lambda: physviz.open_fields(bad), "zigzag.nc", "'x'")


# -- paths ----------------------------------------------------------------------------------------------------


def test_symlink_loop_is_named_as_such(tmp_path):
    (tmp_path / "a.hdf5").symlink_to(tmp_path / "b.hdf5")
    (tmp_path / "b.hdf5").symlink_to(tmp_path / "a.hdf5")
    exc = refused(FieldFileNotFoundError, lambda: physviz.open_fields(tmp_path / "a.hdf5"), "a.hdf5")
    assert "symbolic link" in str(exc).replace(str(tmp_path), "")


def test_dangling_symlink_names_its_target(tmp_path):
    (tmp_path / "data.hdf5").symlink_to(tmp_path / "moved_away.hdf5")
    refused(FieldFileNotFoundError, lambda: physviz.open_fields(tmp_path / "data.hdf5"), "data.hdf5", "moved_away.hdf5")


def test_well_folder_with_mismatched_grids_is_refused(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_well_2d(folder / "a.hdf5", n_traj=1, nt=3, n=8)
    write_well_2d(folder / "b.hdf5", n_traj=1, nt=3, n=16)
    refused(PhysvizError, lambda: physviz.open_fields(folder), "a.hdf5", "b.hdf5")


def test_refused_files_are_left_unchanged(tmp_path):
    path = _well(tmp_path)
    with h5py.File(path, "a") as f:
        f.attrs["physviz_attrs"] = "{not json"
    before = path.read_bytes()
    with pytest.raises(SchemaError):
        physviz.open_fields(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["w.hdf5"]


def test_physviz_attrs_round_trip_still_reads(tmp_path):
    path = tmp_path / "round.hdf5"
    physviz.fields.to_well(physviz.fields.taylor_green(n=8, steps=3), path, stats=False)
    with h5py.File(path, "r") as f:
        assert isinstance(json.loads(f.attrs["physviz_attrs"]), dict)
    with physviz.open_fields(path) as ds:
        assert ds.sizes["x"] == 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        physviz.fields.describe(path)


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.nc"
    os.mkfifo(fifo)
    exc = refused(PhysvizError, lambda: physviz.open_fields(fifo), "pipe.nc")
    assert "regular file" in str(exc)


@pytest.mark.parametrize("writer", ["netcdf", "well"])
def test_text_coordinate_is_refused(tmp_path, writer):
    if writer == "netcdf":
        path = tmp_path / "labels.nc"
        xr.Dataset({"density": (("time", "x"), np.ones((3, 4)))}, coords={"x": list("abcd")}).to_netcdf(path)
    else:
        path = _well(tmp_path)
        with h5py.File(path, "a") as f:
            del f["dimensions/x"]
            f["dimensions"].create_dataset("x", data=np.array([b"a"] * 8))
    refused(SchemaError, lambda: physviz.open_fields(path), path.name, "'x'", "number")


def test_invalid_field_name_names_the_file(tmp_path):
    path = tmp_path / "names.nc"
    xr.Dataset({"my-field": (("time", "x"), np.ones((3, 4)))}).to_netcdf(path)
    refused(SchemaError, lambda: physviz.open_fields(path), "names.nc", "my-field")
    well = _well(tmp_path)
    with h5py.File(well, "a") as f:
        f["t0_fields"].attrs["field_names"] = ["u", "bad-name"]
        f["t0_fields"]["bad-name"] = f["t0_fields/u"]
    refused(SchemaError, lambda: physviz.open_fields(well), "w.hdf5", "bad-name")


def test_simulation_parameters_attr_not_a_map_is_refused(tmp_path, capsys):
    path = tmp_path / "params.nc"
    ds = _plain()
    ds.attrs["simulation_parameters"] = "[1, 2]"
    ds.to_netcdf(path)
    refused(SchemaError, lambda: physviz.open_fields(path), "params.nc", "simulation_parameters")
    assert cli_main(["info", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_pdebench_field_names_option_checked_naming_the_file(tmp_path):
    path = tmp_path / "1D_diff-sorp_NA_NA.h5"
    with h5py.File(path, "w") as f:
        for s in ("0000", "0001"):
            f.create_group(s).create_dataset("data", data=np.ones((3, 8, 1), dtype=np.float32))
    refused(SchemaError, lambda: physviz.open_fields(path, field_names=["bad name"]), path.name, "bad name")
    with physviz.open_fields(path, field_names="conc") as ds:  # one name as a plain string
        assert list(ds.data_vars) == ["conc"]


def test_absurd_declared_coordinate_in_zarr_is_refused_before_reading(tmp_path):
    import zarr

    store = tmp_path / "huge.zarr"
    root = zarr.open_group(store, mode="w", zarr_format=2)
    x = root.create_array("x", shape=(20_000_000_000,), chunks=(1 << 20,), dtype="f8")
    x.attrs["_ARRAY_DIMENSIONS"] = ["x"]
    d = root.create_array("density", shape=(2, 20_000_000_000), chunks=(1, 1 << 20), dtype="f8")
    d.attrs["_ARRAY_DIMENSIONS"] = ["time", "x"]
    for missing_chunks in ("raise", "fill"):
        refused(SchemaError, lambda m=missing_chunks: physviz.open_fields(store, missing_chunks=m), "huge.zarr", "'x'", "20000000000")


def test_periodic_flags_refuses_an_unknown_condition():
    """Every caller of the one owner of periodicity (training, evaluation, models) refuses 'sponge'."""
    from physviz.fields.schema import periodic_flags

    assert periodic_flags({"x": "periodic", "y": ["wall", "open"]}, ["x", "y", "z"]) == (1, 0, 0)
    assert periodic_flags({"x": ["periodic", "periodic"], "y": "Periodic"}, ["x", "y"]) == (1, 1)
    with pytest.raises(SchemaError, match=r"boundary_conditions\['y'\].*'sponge'"):
        periodic_flags({"x": "periodic", "y": "sponge"}, ["x", "y"])
    with pytest.raises(SchemaError, match=r"boundary_conditions\['x'\].*\[\]"):
        periodic_flags({"x": []}, ["x"])
