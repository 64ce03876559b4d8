"""The Well's on-disk layout walked once (split files, the header), and periodic flags from boundary conditions."""
from __future__ import annotations

from pathlib import Path

import h5py
import pytest

from physviz.errors import FieldFileNotFoundError, InconsistentShapeError
from physviz.fields.schema import periodic_flags
from physviz.fields.well import read_header, split_files
from tests.handmade import write_well_2d, write_well_3d


def _touch_h5(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return [folder / n for n in sorted(names) if not n.startswith(".") and n.endswith((".h5", ".hdf5"))]


def test_split_files_of_every_dataset_path_form(tmp_path):
    ds = tmp_path / "ds"
    train = _touch_h5(ds / "data" / "train", "b.hdf5", "a.h5", ".hidden.h5", "notes.txt")
    valid = _touch_h5(ds / "data" / "valid", "v.hdf5")
    assert split_files(ds, "train") == (train, ds)
    assert split_files(ds, "valid") == (valid, ds)
    assert split_files(ds, "test") == ([], ds)  # no such split: no files
    assert split_files(ds / "data", "valid") == (valid, ds)
    assert split_files(ds / "data" / "valid", "valid") == (valid, ds)
    assert split_files(ds / "data" / "valid", "train") == ([], ds)
    assert split_files(train[0], "train") == ([train[0]], train[0].parent)
    assert split_files(train[0], "valid") == ([], train[0].parent)
    flat = tmp_path / "flat"
    files = _touch_h5(flat, "x.h5")
    assert split_files(flat, "train") == (files, flat) and split_files(flat, "valid") == ([], flat)
    with pytest.raises(FieldFileNotFoundError, match="nowhere"):
        split_files(tmp_path / "nowhere", "train")


def test_read_header_of_2d_and_3d_files(tmp_path):
    write_well_2d(tmp_path / "a.hdf5", n_traj=3, nt=6, n=16)
    with h5py.File(tmp_path / "a.hdf5", "r") as f:
        head = read_header(str(tmp_path / "a.hdf5"), f)
    assert head.names == ("x", "y") and head.sizes == [16, 16] and head.n_time == 6 and head.n_trajectories == 3
    assert all(len(w.dim_varying) == 2 for w in head.fields)
    assert {w.order for w in head.fields} <= {0, 1, 2} and head.fields

    write_well_3d(tmp_path / "b.hdf5", n_traj=2, nt=5, shape=(8, 6, 4))
    with h5py.File(tmp_path / "b.hdf5", "a") as f:
        head = read_header(str(tmp_path / "b.hdf5"), f)
        assert head.names == ("x", "y", "z") and head.sizes == [8, 6, 4] and head.n_time == 5
        assert head.n_trajectories == 2
        group = next(f[k] for k in ("t0_fields", "t1_fields", "t2_fields") if k in f)
        group.attrs["field_names"] = [*group.attrs["field_names"], "ghost"]
        with pytest.raises(InconsistentShapeError, match=r"b\.hdf5.*ghost"):
            read_header(str(tmp_path / "b.hdf5"), f)


@pytest.mark.parametrize(("bcs", "dims", "flags"), [
    ({"x": "periodic", "y": "wall"}, ("x", "y"), (1, 0)),
    ({"x": ["periodic", "periodic"], "y": ["periodic", "open"]}, ("x", "y"), (1, 0)),
    ({"x": ("periodic", "periodic")}, ("x", "y", "z"), (1, 0, 0)),
    ({"x": "open", "y": "periodic", "z": "periodic"}, ("y", "z"), (1, 1)),
    ({}, ("x",), (0,)),
    (None, ("x", "y"), (0, 0)),
])
def test_periodic_flags(bcs, dims, flags):
    assert periodic_flags(bcs, dims) == flags

