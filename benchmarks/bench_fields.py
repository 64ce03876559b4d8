"""Data: reading one frame through physviz's lazy xarray backend against raw h5py."""
from __future__ import annotations

import tempfile
from pathlib import Path

import h5py
import numpy as np

from benchmarks.common import Result, time_call


def _write(path: Path, n: int, frames: int) -> None:
    from physviz.fields import to_well
    import xarray as xr

    rng = np.random.default_rng(0)
    u = rng.normal(size=(1, frames, n, n)).astype(np.float32)
    ds = xr.Dataset({"u": (("trajectory", "time", "x", "y"), u)},
                    coords={"time": np.arange(frames, dtype=np.float32), "x": np.arange(n, dtype=np.float32), "y": np.arange(n, dtype=np.float32)})
    to_well(ds, path, stats=False)


def run(quick: bool) -> list[Result]:
    """Random frame reads per second at 256^2 and 1024^2."""
    import physviz

    results = []
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        for n, frames in ((256, 64), (1024, 8)):
            path = Path(tmp) / f"f{n}.hdf5"
            _write(path, n, frames)
            ds = physviz.open_fields(path)
            f = h5py.File(path, "r")
            dset = f["t0_fields/u"]
            order = rng.integers(0, frames, size=1000)
            i = iter(order)
            j = iter(order)
            repeats = 20 if quick else 100
            ours = time_call(lambda: ds.u.isel(trajectory=0, time=int(next(i))).values, repeats)
            peer = time_call(lambda: dset[0, int(next(j))], repeats)
            f.close()
            ds.close()
            results.append(Result("data", f"read one {n}x{n} frame (open_fields, lazy)", ours, peer, "h5py direct read"))
    return results
