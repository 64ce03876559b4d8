"""NetCDF and Zarr files opened through xarray's own engines and mapped onto the schema."""
from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import physviz
from physviz.errors import NonFiniteFieldError, SchemaError
from physviz.fields import NameMap


def _foreign(n_t=4, n=8, seed=0) -> xr.Dataset:
    """A dataset in someone else's conventions: short names, lon/lat/t dims."""
    rng = np.random.default_rng(seed)
    dims = ("t", "lat", "lon")  # note: y before x, t not 'time'
    return xr.Dataset(
        {
            "rho": (dims, rng.normal(size=(n_t, n, n + 2)).astype(np.float32)),
            "u": (dims, rng.normal(size=(n_t, n, n + 2)).astype(np.float32)),
            "T2": (dims, rng.normal(size=(n_t, n, n + 2)).astype(np.float32)),
        },
        coords={"t": np.arange(n_t) * 0.5, "lat": np.linspace(-1, 1, n), "lon": np.linspace(0, 3, n + 2)},
        attrs={"boundary_conditions": json.dumps({"x": "periodic", "y": "wall"}), "dataset_name": "foreign"},
    )


@pytest.mark.parametrize("engine", ["netcdf4", "h5netcdf", "scipy_or_nc3"])
def test_netcdf_is_mapped_to_schema(tmp_path, engine):
    src = _foreign()
    path = tmp_path / "foreign.nc"
    if engine == "scipy_or_nc3":
        src.to_netcdf(path, format="NETCDF3_64BIT", engine="netcdf4")
    else:
        src.to_netcdf(path, engine=engine)
    ds = physviz.open_fields(path, names={"fields": {"T2": "temperature"}})
    assert set(ds.data_vars) == {"density", "velocity_x", "temperature"}
    assert ds.density.dims == ("time", "x", "y")  # transposed into schema order
    np.testing.assert_array_equal(ds.density.values, src.rho.values.transpose(0, 2, 1))
    np.testing.assert_allclose(ds.x.values, src.lon.values)
    np.testing.assert_allclose(ds.time.values, src.t.values)
    assert ds.attrs["boundary_conditions"] == {"x": "periodic", "y": "wall"}
    assert ds.attrs["dataset_name"] == "foreign"


def test_zarr_store(tmp_path):
    src = _foreign()
    store = tmp_path / "foreign.zarr"
    src.to_zarr(store)
    ds = physviz.open_fields(store)
    assert "density" in ds and "T2" in ds  # unmapped names pass through unchanged
    np.testing.assert_array_equal(ds.velocity_x.isel(time=1).values, src.u.isel(t=1).values.T)


def test_name_map_is_extensible():
    nm = NameMap().extend(fields={"T2": "temperature"}, dims={"level": "z"})
    assert nm.fields["T2"] == "temperature" and nm.dims["level"] == "z"
    assert nm.fields["rho"] == "density"  # defaults kept
    assert "T2" not in NameMap().fields  # the default is not mutated


def test_unmappable_dimension_is_named(tmp_path):
    src = _foreign().expand_dims(level=[1, 2])
    path = tmp_path / "levels.nc"
    src.to_netcdf(path)
    with pytest.raises(SchemaError, match="level"):
        physviz.open_fields(path)
    ds = physviz.open_fields(path, names={"dims": {"level": "z"}})
    assert ds.density.dims == ("time", "x", "y", "z")


def test_nan_in_netcdf_is_reported_when_read(tmp_path):
    src = _foreign()
    src["rho"][2, 3, 4] = np.nan
    path = tmp_path / "nan.nc"
    src.to_netcdf(path)
    ds = physviz.open_fields(path)
    ds.density.isel(time=0).values  # a clean frame reads fine
    with pytest.raises(NonFiniteFieldError, match="density"):
        ds.density.isel(time=2).values
    ok = physviz.open_fields(path, nonfinite="allow")
    assert np.isnan(ok.density.values).sum() == 1
