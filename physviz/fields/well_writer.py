"""Writer of The Well's HDF5 layout, so simulators and users can make training data."""
from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from physviz.errors import SchemaError
from physviz.fields.atomic import atomic_path
from physviz.fields.schema import split_component, validate_dataset


@dataclass
class TensorField:
    """A field as The Well stores it: a base name, a tensor order and its channels."""

    name: str
    order: int
    channels: list[str]  # data variable names, in The Well's component order


def group_tensor_fields(field_names: list[str], spatial: list[str]) -> list[TensorField]:
    """Group component variables (velocity_x, velocity_y) into vector/tensor fields."""
    vec = [d for d in spatial]
    ten = [a + b for a in spatial for b in spatial]
    by_base: dict[str, dict[str, str]] = defaultdict(dict)
    for name in field_names:
        base, comp = split_component(name)
        if comp:
            by_base[base][comp] = name
    grouped: list[TensorField] = []
    taken: set[str] = set()
    for name in field_names:
        if name in taken:
            continue
        base, comp = split_component(name)
        comps = by_base.get(base, {})
        if comp and set(comps) >= set(vec) and comp in vec and len(spatial) > 0:
            grouped.append(TensorField(base, 1, [comps[c] for c in vec]))
            taken.update(comps[c] for c in vec)
        elif comp and len(spatial) > 1 and set(comps) >= set(ten) and comp in ten:
            grouped.append(TensorField(base, 2, [comps[c] for c in ten]))
            taken.update(comps[c] for c in ten)
        else:
            grouped.append(TensorField(name, 0, [name]))
            taken.add(name)
    return grouped


def _jsonable(value: Any) -> Any:
    """Attrs as plain JSON types (numpy scalars and arrays converted)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _str_attr(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=h5py.string_dtype())


def _coord_values(ds: Any, name: str, n: int, dtype: Any) -> np.ndarray:
    if name in ds.coords and ds[name].ndim == 1:
        values = np.asarray(ds[name].values)
    else:
        values = np.arange(n, dtype=np.float64)
    if values.dtype.kind not in "fiu":
        raise SchemaError(f"Coordinate {name!r} is of type {values.dtype}; The Well stores numeric coordinates.")
    return values.astype(dtype) if dtype is not None else values


def _write_bcs(f: h5py.File, bcs: dict[str, Any], spatial: list[str], sizes: dict[str, int]) -> None:
    group = f.create_group("boundary_conditions")
    for axis in spatial:
        value = bcs.get(axis)
        if value is None:
            continue
        ends = [value, value] if isinstance(value, str) else list(value)
        for kind in dict.fromkeys(ends):
            mask = np.zeros(sizes[axis], dtype=bool)
            mask[0] = ends[0] == kind
            mask[-1] = mask[-1] or ends[1] == kind
            name = f"{axis}_{kind}" if ends[0] == ends[1] else f"{axis}_{kind}_{'lower' if ends[0] == kind else 'upper'}"
            g = group.create_group(name)
            g.attrs["bc_type"] = kind.upper()
            g.attrs["associated_dims"] = _str_attr([axis])
            g.attrs["associated_fields"] = _str_attr([])
            g.attrs["sample_varying"] = np.bool_(False)
            g.attrs["time_varying"] = np.bool_(False)
            g.create_dataset("mask", data=mask)


def to_well(
    ds: Any,
    path: str | os.PathLike[str],
    *,
    dtype: Any = "float32",
    stats: bool = True,
    compression: str | None = None,
) -> Path:
    """Write an xarray Dataset in the physviz schema as a Well HDF5 file (plus stats.yaml)."""
    path = Path(path)
    report = validate_dataset(ds, f"Dataset written to {path}")
    spatial = report.spatial_dims
    if not report.fields:
        raise SchemaError(f"Nothing to write to {path}: the dataset has no field spanning {spatial}.")
    if "time" not in ds.dims:
        raise SchemaError(f"Cannot write {path}: The Well needs a 'time' dimension and the dataset has none.")
    sizes = {d: int(ds.sizes[d]) for d in ds.dims}
    n_traj = sizes.get("trajectory", 1)
    out_dtype = np.dtype(dtype) if dtype is not None else None
    tensors = group_tensor_fields(report.fields, spatial)
    for t in tensors:
        dims = {ds[c].dims for c in t.channels}
        if len(dims) != 1:
            raise SchemaError(f"Components of {t.name!r} have different dims {sorted(dims)}; they must match.")
        for c in t.channels:
            if ds[c].dtype.kind not in "fiub":
                raise SchemaError(f"Field {c!r} has dtype {ds[c].dtype}; only numeric fields can be written.")

    attrs = dict(ds.attrs)
    params = {k: v for k, v in (attrs.get("simulation_parameters") or {}).items()}
    numeric = {k: v for k, v in params.items() if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
    dataset_name = str(attrs.get("dataset_name") or path.stem)

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["dataset_name"] = dataset_name
        f.attrs["grid_type"] = str(attrs.get("grid_type", "cartesian"))
        f.attrs["n_spatial_dims"] = np.int64(len(spatial))
        f.attrs["n_trajectories"] = np.int64(n_traj)
        f.attrs["simulation_parameters"] = _str_attr(list(numeric))
        for k, v in numeric.items():
            f.attrs[k] = v
        keep = {k: v for k, v in attrs.items() if k != "source"}
        f.attrs["physviz_attrs"] = json.dumps(_jsonable(keep))

        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = _str_attr(spatial)
        coord_dtype = out_dtype if out_dtype is not None and out_dtype.kind == "f" else None
        t = dims.create_dataset("time", data=_coord_values(ds, "time", sizes["time"], coord_dtype))
        t.attrs["sample_varying"] = np.bool_(False)
        t.attrs["time_varying"] = np.bool_(True)
        for d in spatial:
            c = dims.create_dataset(d, data=_coord_values(ds, d, sizes[d], coord_dtype))
            c.attrs["sample_varying"] = np.bool_(False)
            c.attrs["time_varying"] = np.bool_(False)

        _write_bcs(f, report.boundary_conditions, spatial, sizes)

        scalars = f.create_group("scalars")
        scalar_names = list(numeric) + report.scalars
        scalars.attrs["field_names"] = _str_attr(scalar_names)
        for k, v in numeric.items():
            s = scalars.create_dataset(k, data=v)
            s.attrs["sample_varying"] = np.bool_(False)
            s.attrs["time_varying"] = np.bool_(False)
        for k in report.scalars:
            var = ds[k]
            s = scalars.create_dataset(k, data=np.asarray(var.values))
            s.attrs["sample_varying"] = np.bool_("trajectory" in var.dims)
            s.attrs["time_varying"] = np.bool_("time" in var.dims)

        groups = {i: f.create_group(f"t{i}_fields") for i in range(3)}
        for i in range(3):
            groups[i].attrs["field_names"] = _str_attr([t.name for t in tensors if t.order == i])
        for t in tensors:
            var_dims = ds[t.channels[0]].dims
            shape = [sizes[d] for d in var_dims] + [len(spatial)] * t.order
            wdtype = out_dtype if out_dtype is not None else ds[t.channels[0]].dtype
            chunks = tuple(1 if d in ("trajectory", "time") else sizes[d] for d in var_dims) + (len(spatial),) * t.order
            dset = groups[t.order].create_dataset(
                t.name, shape=tuple(shape), dtype=wdtype, chunks=chunks if compression else None, compression=compression
            )
            dset.attrs["dim_varying"] = np.ones(len(spatial), dtype=bool)
            dset.attrs["sample_varying"] = np.bool_("trajectory" in var_dims)
            dset.attrs["time_varying"] = np.bool_("time" in var_dims)
            if t.order == 2:
                dset.attrs["symmetric"] = np.bool_(False)
                dset.attrs["antisymmetric"] = np.bool_(False)
            lead = "trajectory" if "trajectory" in var_dims else None
            for i in range(n_traj if lead else 1):
                sel = {lead: i} if lead else {}
                block = np.stack([np.asarray(ds[c].isel(sel).values) for c in t.channels], axis=-1)
                if t.order == 2:
                    block = block.reshape(*block.shape[:-1], len(spatial), len(spatial))
                elif t.order == 0:
                    block = block[..., 0]
                if lead:
                    dset[i] = block
                else:
                    dset[...] = block
    if stats:
        from physviz.fields.stats import write_stats_for

        write_stats_for(path)
    return path
