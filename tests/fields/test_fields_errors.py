"""Bad input gets a PhysvizError naming the file and what is wrong; nothing is lost."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

import physviz
from physviz.errors import (
    CorruptFileError,
    FieldFileNotFoundError,
    InconsistentShapeError,
    NonFiniteFieldError,
    NotHDF5Error,
    OptionError,
    PhysvizError,
    UnknownFieldError,
    UnknownLayoutError,
)
from tests.handmade import write_well_2d, write_well_3d


def _one_sentence(exc: BaseException, name: str) -> None:
    text = str(exc)
    assert name in text
    assert "\n" not in text
    assert isinstance(exc, PhysvizError)


def test_missing_path(tmp_path):
    with pytest.raises(FieldFileNotFoundError) as e:
        physviz.open_fields(tmp_path / "nope.hdf5")
    _one_sentence(e.value, "nope.hdf5")
    assert isinstance(e.value, FileNotFoundError)


def test_not_hdf5(tmp_path):
    path = tmp_path / "notes.hdf5"
    path.write_text("these are not the fields you are looking for")
    with pytest.raises(NotHDF5Error) as e:
        physviz.open_fields(path)
    _one_sentence(e.value, "notes.hdf5")
    empty = tmp_path / "empty.h5"
    empty.touch()
    with pytest.raises(NotHDF5Error, match="empty"):
        physviz.open_fields(empty)


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.hdf5"
    write_well_2d(path, n=64)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError) as e:
        physviz.open_fields(path)
    _one_sentence(e.value, "cut.hdf5")


def test_damaged_data_region_is_reported_on_read(tmp_path):
    path = tmp_path / "chunked.hdf5"
    u = np.random.default_rng(0).normal(size=(2, 4, 32, 32)).astype(np.float32)
    write_well_2d(path, n_traj=2, nt=4, n=32)
    with h5py.File(path, "a") as f:
        del f["t0_fields/u"]
        d = f["t0_fields"].create_dataset("u", data=u, chunks=(1, 1, 32, 32), compression="gzip")
        d.attrs["dim_varying"] = np.array([True, True])
        d.attrs["sample_varying"] = np.bool_(True)
        d.attrs["time_varying"] = np.bool_(True)
        offset = d.id.get_chunk_info(5).byte_offset
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 64] = b"\xff" * 64  # corrupt one compressed chunk
    path.write_bytes(bytes(raw))
    ds = physviz.open_fields(path)
    np.testing.assert_array_equal(ds.u[0, 0].values, u[0, 0])  # other frames still read
    with pytest.raises(CorruptFileError) as e:
        ds.u[1, 1].values
    _one_sentence(e.value, "chunked.hdf5")
    assert "'u'" in str(e.value)


def test_unknown_layout(tmp_path):
    path = tmp_path / "random.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("something", data=np.zeros(3))
        f.create_group("elsewhere")
    with pytest.raises(UnknownLayoutError) as e:
        physviz.open_fields(path)
    _one_sentence(e.value, "random.h5")
    assert "something" in str(e.value)


def test_inconsistent_shapes_in_a_well_file(tmp_path):
    path = tmp_path / "shapes.hdf5"
    write_well_2d(path, n=16)
    with h5py.File(path, "a") as f:
        del f["dimensions/y"]
        f["dimensions"].create_dataset("y", data=np.arange(12, dtype=np.float32))
    with pytest.raises(InconsistentShapeError) as e:
        physviz.open_fields(path)
    _one_sentence(e.value, "shapes.hdf5")
    assert "along y" in str(e.value)


def test_field_listed_but_missing(tmp_path):
    path = tmp_path / "listed.hdf5"
    write_well_2d(path)
    with h5py.File(path, "a") as f:
        f["t0_fields"].attrs["field_names"] = ["u", "ghost"]
    with pytest.raises(InconsistentShapeError, match="ghost"):
        physviz.open_fields(path)


def test_unknown_field_names(tmp_path):
    path = tmp_path / "fields.hdf5"
    write_well_3d(path)
    with pytest.raises(UnknownFieldError) as e:
        physviz.open_fields(path, fields=["density", "vorticity"])
    _one_sentence(e.value, "vorticity")
    assert "velocity_x" in str(e.value)  # lists what is available


def test_nan_and_inf_are_named_when_read(tmp_path):
    path = tmp_path / "nan.hdf5"
    u = write_well_2d(path, n_traj=2, nt=4, n=8)
    with h5py.File(path, "a") as f:
        f["t0_fields/u"][1, 2, 3, 4] = np.nan
        f["t0_fields/u"][0, 3, 0, 0] = np.inf
    ds = physviz.open_fields(path)
    np.testing.assert_array_equal(ds.u[0, 0].values, u[0, 0])
    with pytest.raises(NonFiniteFieldError) as e:
        ds.u[1].values
    _one_sentence(e.value, "nan.hdf5")
    assert "(1, 2, 3, 4)" in str(e.value) and "'u'" in str(e.value)
    with pytest.raises(NonFiniteFieldError, match=r"\(0, 3, 0, 0\)"):
        ds.u[0, 3].values
    allowed = physviz.open_fields(path, nonfinite="allow").u.values
    assert np.isnan(allowed[1, 2, 3, 4]) and np.isinf(allowed[0, 3, 0, 0])
    with pytest.raises(OptionError, match="nonfinite"):
        physviz.open_fields(path, nonfinite="ignore")


def test_directory_without_field_files(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(UnknownLayoutError, match="no .hdf5"):
        physviz.open_fields(tmp_path)
