"""Files xarray opens itself (NetCDF, Zarr), mapped onto the physviz schema."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from physviz.errors import CorruptFileError, SchemaError
from physviz.fields.lazy import FileContent, LazyVariable, VariableArray
from physviz.fields.name_map import NameMap
from physviz.fields.schema import DIM_ORDER, SPATIAL_DIMS, check_field_name, decode_attr, normalize_bc

FORMAT = "xarray"


def _name_map(names: NameMap | Mapping[str, Any] | None) -> NameMap:
    if names is None:
        return NameMap()
    if isinstance(names, NameMap):
        return names
    names = dict(names)
    if "fields" in names or "dims" in names:
        return NameMap().extend(names.get("fields"), names.get("dims"))
    return NameMap().extend(fields=names)


def read_generic(path: str, engine: str | None, opts: dict[str, Any], check_finite: bool = True) -> FileContent:
    """Open with xarray's own engine, rename to the schema, and guard reads for NaN."""
    import xarray as xr

    try:
        raw = xr.open_dataset(path, engine=engine, decode_times=False)
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"{path}: xarray could not open it ({exc}).") from exc
    nm = _name_map(opts.get("names"))
    renames: dict[str, str] = {}
    for d in raw.dims:
        if d not in DIM_ORDER and d in nm.dims:
            renames[str(d)] = nm.dims[str(d)]
    for v in raw.data_vars:
        if v in nm.fields and nm.fields[str(v)] not in raw.variables:
            renames[str(v)] = nm.fields[str(v)]
    try:
        ds = raw.rename(renames)
    except ValueError as exc:
        raise SchemaError(f"{path}: renaming {renames} onto the schema clashes ({exc}); pass names=... to choose.") from exc
    extra = [d for d in ds.dims if d not in DIM_ORDER]
    if extra:
        raise SchemaError(
            f"{path}: dimension(s) {extra} are not in the schema {list(DIM_ORDER)}; "
            f"map them with names={{'dims': {{'{extra[0]}': 'x'}}}} or select one index first."
        )
    spatial = [d for d in SPATIAL_DIMS if d in ds.dims]
    if not spatial:
        raise SchemaError(f"{path}: no spatial dimension found among {list(raw.dims)}; map one with names={{'dims': {{...: 'x'}}}}.")
    variables: dict[str, LazyVariable] = {}
    for name, var in ds.data_vars.items():
        check_field_name(str(name))
        order = tuple(d for d in DIM_ORDER if d in var.dims)
        v = var.variable.transpose(*order)
        data = VariableArray(v, f"{path}: field {str(name)!r}", check_finite) if v.dtype.kind in "fc" else np.asarray(v.values)
        variables[str(name)] = LazyVariable(order, data, dict(var.attrs))
    coords = {
        str(k): LazyVariable(tuple(c.dims), np.asarray(c.values), dict(c.attrs))
        for k, c in ds.coords.items()
        if all(d in DIM_ORDER for d in c.dims)
    }
    attrs = {k: decode_attr(v) for k, v in ds.attrs.items()}
    bcs = attrs.get("boundary_conditions") or {}
    if opts.get("boundary_conditions") is not None:
        bcs = opts["boundary_conditions"]
    if isinstance(bcs, str):
        bcs = {a: bcs for a in spatial}
    if not isinstance(bcs, Mapping):
        raise SchemaError(f"{path}: attrs boundary_conditions is {bcs!r}; expected a map of axis to condition.")
    attrs["boundary_conditions"] = {a: normalize_bc(bcs.get(a, "open"), f"{path}: boundary condition of {a}") for a in spatial}
    attrs.setdefault("dataset_name", str(attrs.get("dataset_name", "")) or path.rstrip("/").rsplit("/", 1)[-1].split(".")[0])
    attrs.setdefault("simulation_parameters", {})
    attrs["source"] = {"format": f"{FORMAT}:{engine or 'auto'}", "path": path}
    return FileContent(variables, coords, attrs, [raw.close])
