"""Checks shared by spectra and metrics: spatial dims, field selection, grid spacing, alignment, finiteness."""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from physviz.errors import NonFiniteFieldError, OptionError, SchemaError, UnknownFieldError
from physviz.fields.schema import SPATIAL_DIMS

Data = xr.DataArray | xr.Dataset


def label(obj: Data) -> str:
    """How to name `obj` in a message: 'field 'u'' or 'the dataset'."""
    if isinstance(obj, xr.DataArray):
        return f"field {obj.name!r}" if obj.name is not None else "the DataArray"
    return "the dataset"


def check_data(obj: Any, what: str) -> Data:
    """Raise SchemaError unless `obj` is an xarray DataArray or Dataset."""
    if not isinstance(obj, (xr.DataArray, xr.Dataset)):
        raise SchemaError(f"{what} must be an xarray DataArray or Dataset, not {type(obj).__name__}.")
    return obj


def resolve_dims(obj: Data, dims: str | Sequence[str] | None) -> tuple[str, ...]:
    """The spatial dims to reduce over: `dims`, or the x, y, z present in `obj` (schema order)."""
    if dims is None:
        found = tuple(d for d in SPATIAL_DIMS if d in obj.dims)
        if not found:
            raise SchemaError(
                f"{label(obj)} has no spatial dim x, y or z (its dims are {tuple(obj.dims)}); "
                "pass dims=... to name the spatial dims."
            )
        return found
    chosen = (dims,) if isinstance(dims, str) else tuple(dims)
    if not chosen:
        raise OptionError("dims must name at least one spatial dim.")
    if len(set(chosen)) != len(chosen):
        raise OptionError(f"dims={chosen} names a dim twice.")
    missing = [d for d in chosen if d not in obj.dims]
    if missing:
        raise SchemaError(f"{label(obj)} has no dim {missing[0]!r} (its dims are {tuple(obj.dims)}).")
    return chosen


def select_fields(ds: xr.Dataset, fields: str | Iterable[Hashable] | None, dims: tuple[str, ...]) -> list[Hashable]:
    """The data variables to analyse: `fields`, or every variable that has all of `dims`."""
    if fields is None:
        names = [n for n, v in ds.data_vars.items() if set(dims) <= set(v.dims)]
        if not names:
            raise SchemaError(f"the dataset has no data variable over the spatial dims {dims}.")
        return names
    names = [fields] if isinstance(fields, str) else list(fields)
    if not names:
        raise OptionError("fields= is empty; name at least one data variable or leave it out.")
    for name in names:
        if name not in ds.data_vars:
            raise UnknownFieldError(f"the dataset has no field {name!r}; its fields are {list(ds.data_vars)}.")
        lacking = [d for d in dims if d not in ds[name].dims]
        if lacking:
            raise SchemaError(f"field {name!r} has no spatial dim {lacking[0]!r} (its dims are {ds[name].dims}).")
    return names


def checked_dims(obj: Any, what: str, dims: str | Sequence[str] | None, fields: Any) -> tuple[str, ...]:
    """Check `obj` (a DataArray or Dataset; fields= only with a Dataset) and return the spatial dims to reduce over."""
    check_data(obj, what)
    if fields is not None and isinstance(obj, xr.DataArray):
        raise OptionError("fields= selects data variables of a Dataset; a DataArray is one field already.")
    return resolve_dims(obj, dims)


def as_frames(da: xr.DataArray, dims: tuple[str, ...], keep_float: bool = False) -> tuple[np.ndarray, list[Hashable], tuple[int, ...]]:
    """Values of `da` as frames (B, *spatial) in float64 (or as they are if float and `keep_float`), with the leading dims and their shape."""
    lead = [d for d in da.dims if d not in dims]
    values = np.asarray(da.transpose(*lead, *dims).values)
    if np.iscomplexobj(values) or not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise SchemaError(f"{label(da)} has dtype {values.dtype}; spectra and metrics take real-valued fields.")
    lead_shape = tuple(da.sizes[d] for d in lead)
    spatial = tuple(da.sizes[d] for d in dims)
    if not (keep_float and values.dtype in (np.float32, np.float64)):
        values = values.astype(np.float64, copy=False)
    frames = values.reshape((int(np.prod(lead_shape)),) + spatial)
    return frames, lead, lead_shape


def spacing(da: xr.DataArray, dim: str) -> float:
    """Grid spacing along `dim` from its coordinate (1.0 without one); SchemaError if not uniform."""
    n = da.sizes[dim]
    if dim not in da.coords or n < 2:
        return 1.0
    try:
        c = np.asarray(da[dim].values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"coordinate {dim!r} of {label(da)} is not numeric, so it has no grid spacing.") from exc
    steps = np.diff(c)
    step = (c[-1] - c[0]) / (n - 1)
    if step == 0 or not np.isfinite(step) or not np.allclose(steps, step, rtol=1e-3, atol=0):
        raise SchemaError(
            f"coordinate {dim!r} of {label(da)} is not uniformly spaced; spectra need a uniform grid."
        )
    return abs(float(step))


def outer_coords(da: xr.DataArray, dims: tuple[str, ...]) -> dict[Hashable, xr.Variable]:
    """Coordinates of `da` that do not involve any of `dims` (kept on a reduced result)."""
    return {k: v.variable for k, v in da.coords.items() if not set(v.dims) & set(dims)}


def first_nonfinite(da: xr.DataArray) -> str:
    """Where the first NaN/inf of `da` is, as 'dim=coord, ...'."""
    bad = np.argwhere(~np.isfinite(np.asarray(da.values)))
    if not len(bad):
        return ""
    parts = []
    for dim, i in zip(da.dims, bad[0]):
        value = da[dim].values[i] if dim in da.coords else i
        parts.append(f"{dim}={value}")
    return ", ".join(parts)


def raise_if_nonfinite(da: xr.DataArray, what: str) -> None:
    """Raise NonFiniteFieldError naming `what` and the first bad point, if `da` holds NaN or inf."""
    where = first_nonfinite(da)
    if where:
        raise NonFiniteFieldError(
            f"{what} holds NaN or infinite values (first at {where}); analysis needs finite values."
        )


def _check_spatial_grids(pred: xr.DataArray, truth: xr.DataArray, dims: tuple[str, ...], name: str) -> None:
    """Raise SchemaError unless pred and truth share sizes and coordinates along `dims`."""
    if set(pred.dims) != set(truth.dims):
        raise SchemaError(
            f"{name}: pred has dims {tuple(pred.dims)} but truth has {tuple(truth.dims)}; they must have the same dims."
        )
    for d in dims:
        if pred.sizes[d] != truth.sizes[d]:
            raise SchemaError(f"{name}: pred has {pred.sizes[d]} points along {d!r} but truth has {truth.sizes[d]}.")
        if d in pred.coords and d in truth.coords:
            a, b = pred[d].values, truth[d].values
            scale = max(float(np.max(np.abs(b))), 1e-30) if b.size else 1.0
            if not np.allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-6, atol=1e-6 * scale):
                raise SchemaError(f"{name}: pred and truth have different {d!r} coordinates; they must be on one grid.")


def align_pair(pred: Data, truth: Data, dims: tuple[str, ...], fields: list[Hashable] | None) -> tuple[Data, Data]:
    """Pred and truth on one grid: spatial coords must match, other dims inner-join as in `pred - truth`."""
    if isinstance(truth, xr.Dataset):
        if not isinstance(pred, xr.Dataset):
            raise SchemaError("truth is a Dataset but pred is a DataArray; pass both as Datasets or both as DataArrays.")
        assert fields is not None
        missing = [f for f in fields if f not in pred.data_vars]
        if missing:
            raise SchemaError(
                f"pred has no field {missing[0]!r} that truth has; pass fields=... to compare a subset."
            )
        pred, truth = pred[fields], truth[fields]
        for f in fields:
            _check_spatial_grids(pred[f], truth[f], dims, f"field {f!r}")
    else:
        if not isinstance(pred, xr.DataArray):
            raise SchemaError("truth is a DataArray but pred is a Dataset; pass both as Datasets or both as DataArrays.")
        _check_spatial_grids(pred, truth, dims, label(truth))
    pred = pred.assign_coords({d: truth[d].variable for d in dims if d in truth.coords})
    try:
        pred, truth = xr.align(pred, truth, join="inner", copy=False)
    except ValueError as exc:
        raise SchemaError(f"pred and truth do not align by coordinates: {exc}".replace("\n", " ")) from exc
    for d, n in truth.sizes.items():
        if n == 0:
            raise SchemaError(f"pred and truth share no {d!r} coordinates, so there is nothing to compare.")
    return pred, truth
