"""Files xarray opens itself (NetCDF, Zarr), mapped onto the physviz schema."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from physviz.errors import CorruptFileError, OptionError, SchemaError
from physviz.fields.checks import check_coordinate_size
from physviz.fields.lazy import FileContent, LazyVariable, VariableArray
from physviz.fields.name_map import NameMap
from physviz.fields.schema import (
    DIM_ORDER,
    SPATIAL_DIMS,
    check_field_name,
    decode_attr,
    normalize_bc,
)

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

    from physviz.fields.zarr_check import MISSING_CHUNK_POLICIES

    missing_chunks = opts.get("missing_chunks", "raise")
    if missing_chunks not in MISSING_CHUNK_POLICIES:
        raise OptionError(f"missing_chunks={missing_chunks!r} is not one of {MISSING_CHUNK_POLICIES}.")
    try:
        # no default indexes: coordinates are read below, after their size is checked
        raw = xr.open_dataset(path, engine=engine, decode_times=False, create_default_indexes=False)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise CorruptFileError(f"{path}: xarray could not open it ({exc}).") from exc
    try:
        return _map_onto_schema(path, engine, raw, opts, check_finite, missing_chunks)
    except BaseException:
        raw.close()
        raise


def _renames(path: str, raw: Any, nm: NameMap) -> dict[str, str]:
    """Dimension and variable renames onto the schema; refuses two dims that would become one."""
    renames: dict[str, str] = {}
    for d in raw.dims:
        if d not in DIM_ORDER and d in nm.dims:
            renames[str(d)] = nm.dims[str(d)]
    for name, var in raw.variables.items():
        mapped = [renames.get(str(d), str(d)) for d in var.dims]
        for target in dict.fromkeys(mapped):
            sources = [str(d) for d, m in zip(var.dims, mapped) if m == target]
            if len(sources) > 1:
                raise SchemaError(
                    f"{path}: variable {str(name)!r} has dims {' and '.join(repr(x) for x in sources)}, which both become "
                    f"{target!r} in the schema; map one elsewhere with names={{'dims': {{{sources[0]!r}: 'trajectory'}}}} "
                    "or select one index first."
                )
    for v in raw.data_vars:
        if v in nm.fields and nm.fields[str(v)] not in raw.variables:
            renames[str(v)] = nm.fields[str(v)]
    return renames


def _map_onto_schema(
    path: str, engine: str | None, raw: Any, opts: dict[str, Any], check_finite: bool, missing_chunks: str
) -> FileContent:
    """Rename an opened Dataset onto the schema and wrap its variables lazily."""
    for k, c in raw.coords.items():
        check_coordinate_size(f"{path}: coordinate {str(k)!r}", tuple(c.shape))
    if engine == "zarr":
        from physviz.fields.zarr_check import check_chunks, check_metadata

        check_metadata(path, [str(k) for k in raw.variables])
        if missing_chunks == "raise":
            blocks = {
                str(k): (tuple(v.shape), tuple(v.encoding.get("shards") or v.encoding.get("chunks") or ()))
                for k, v in raw.variables.items()
            }
            check_chunks(path, blocks)
    nm = _name_map(opts.get("names"))
    renames = _renames(path, raw, nm)
    try:
        ds = raw.rename(renames)
    except ValueError as exc:
        raise SchemaError(f"{path}: renaming {renames} onto the schema clashes ({exc}); pass names=... to choose.") from exc
    original = {new: old for old, new in renames.items()}
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
        try:
            check_field_name(str(name))
        except SchemaError as exc:
            raise SchemaError(f"{path}: {exc}") from None
        order = tuple(d for d in DIM_ORDER if d in var.dims)
        v = var.variable.transpose(*order)
        stored = original.get(str(name), str(name))
        locate = _chunk_locator(path, stored, [var.dims.index(d) for d in order]) if engine == "zarr" else None
        variables[str(name)] = LazyVariable(order, VariableArray(v, f"{path}: field {str(name)!r}", check_finite, locate), dict(var.attrs))
    coords = {}
    for k, c in ds.coords.items():
        if all(d in DIM_ORDER for d in c.dims):
            check_coordinate_size(f"{path}: coordinate {str(k)!r}", tuple(c.shape))
            try:
                values = np.asarray(c.values)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise CorruptFileError(f"{path}: coordinate {str(k)!r} could not be read ({exc}); the file is damaged.") from exc
            coords[str(k)] = LazyVariable(tuple(c.dims), values, dict(c.attrs))
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


def _chunk_locator(store: str, name: str, axes: list[int]) -> Any:
    """A function naming the damaged chunks of a block read (key in schema order, mapped back to stored order)."""
    from physviz.fields.zarr_check import damaged_chunks

    def locate(key: tuple[Any, ...]) -> str:
        stored = [slice(None)] * len(axes)
        for k, axis in zip(key, axes):
            stored[axis] = k
        bad = damaged_chunks(store, name, tuple(stored))
        return f" (damaged chunk file(s) {', '.join(bad[:4])} of {name!r})" if bad else ""

    return locate
