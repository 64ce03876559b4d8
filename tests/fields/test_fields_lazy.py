"""Opening reads metadata only; indexing reads just the frame asked for."""
from __future__ import annotations

import h5py
import numpy as np

import physviz
from tests.handmade import write_well_2d


def _rchar() -> int:
    """Bytes this process has read through read()/pread() system calls."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar:")).split()[1])


class _CountingReads:
    """Counts h5py dataset reads and the bytes they return."""

    def __init__(self, monkeypatch):
        self.calls = 0
        self.bytes = 0
        original = h5py.Dataset.__getitem__

        def counting(ds, key, *a, **k):
            out = original(ds, key, *a, **k)
            if ds.name.startswith("/t0_fields"):
                self.calls += 1
                self.bytes += np.asarray(out).nbytes
            return out

        monkeypatch.setattr(h5py.Dataset, "__getitem__", counting)


def test_open_reads_metadata_only_and_a_frame_reads_one_frame(tmp_path, monkeypatch):
    path = tmp_path / "big.hdf5"
    n = 256
    write_well_2d(path, n_traj=4, nt=0, n=n, big=100)  # 4 x 100 frames of 256^2 float32: 105 MB
    size = path.stat().st_size
    assert size > 100e6
    frame_bytes = n * n * 4
    small = tmp_path / "small.hdf5"
    write_well_2d(small, n=8)
    physviz.open_fields(small).u[0, 0].values  # warm up: imports read .py files too
    counter = _CountingReads(monkeypatch)

    before = _rchar()
    ds = physviz.open_fields(path)
    opened = _rchar() - before
    assert counter.calls == 0 and counter.bytes == 0
    assert opened < 1e6, f"opening read {opened} bytes of a {size}-byte file"
    assert ds.u.shape == (4, 100, n, n)

    before = _rchar()
    frame = ds.u.isel(trajectory=2, time=37).values
    read = _rchar() - before
    assert frame.shape == (n, n)
    assert counter.calls == 1 and counter.bytes == frame_bytes
    assert frame_bytes <= read < 4 * frame_bytes, f"one frame read {read} bytes"
    with h5py.File(path) as f:
        np.testing.assert_array_equal(frame, f["t0_fields/u"][2, 37])

    # a strided sub-window reads only its own points
    counter.bytes = 0
    sub = ds.u.isel(trajectory=0, time=slice(0, 10, 5), x=slice(0, 64)).values
    assert sub.shape == (2, 64, n) and counter.bytes == sub.nbytes


def test_xarray_open_dataset_is_lazy_too(tmp_path, monkeypatch):
    import xarray as xr

    path = tmp_path / "u.hdf5"
    write_well_2d(path, n_traj=2, nt=0, n=64, big=50)
    counter = _CountingReads(monkeypatch)
    ds = xr.open_dataset(path, engine="physviz")
    assert counter.bytes == 0
    ds.u[1, 3].values
    assert counter.bytes == 64 * 64 * 4
