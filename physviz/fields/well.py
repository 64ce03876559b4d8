"""Reader of The Well's HDF5 layout (t0/t1/t2 fields, scalars, boundary conditions)."""
from __future__ import annotations

import itertools
import json
from typing import Any

import h5py
import numpy as np

from physviz.errors import InconsistentShapeError, UnknownLayoutError
from physviz.fields.h5util import as_bool, as_python, as_str, as_str_list
from physviz.fields.lazy import FileContent, H5Slab, LazyVariable
from physviz.fields.schema import SPATIAL_DIMS, component_names, normalize_bc

FORMAT = "the_well"


def is_well(f: h5py.File) -> bool:
    """True when an open HDF5 file has The Well's layout."""
    return "dimensions" in f and any(f"t{i}_fields" in f for i in range(3))


def _coord(path: str, name: str, values: np.ndarray, sample_varying: bool) -> tuple[LazyVariable, str]:
    """A coordinate variable; per-trajectory grids that agree collapse to 1D."""
    values = np.asarray(values)
    if sample_varying and values.ndim == 2:
        if np.all(values == values[:1]):
            return LazyVariable((name,), values[0]), name
        return LazyVariable(("trajectory", name), values), f"{name}_per_trajectory"
    if values.ndim != 1:
        raise InconsistentShapeError(f"{path}: dimensions/{name} has shape {values.shape}; expected one axis.")
    return LazyVariable((name,), values), name


def _boundary_conditions(path: str, f: h5py.File, spatial: list[str], names: tuple[str, ...]) -> dict[str, Any]:
    """Reduce The Well's boundary masks to one condition per axis end."""
    ends = {n: ["open", "open"] for n in names}
    group = f.get("boundary_conditions")
    if group is None:
        return {n: "open" for n in names}
    for key in group:
        bc = group[key]
        kind = as_str(bc.attrs.get("bc_type", "open")).lower()
        kind = normalize_bc(kind, f"{path}: boundary_conditions/{key}")
        assoc = as_str_list(bc.attrs.get("associated_dims", []))
        mask = np.asarray(bc["mask"][()]).astype(bool) if "mask" in bc else None
        for pos, dim in enumerate(assoc):
            if dim not in spatial:
                raise InconsistentShapeError(
                    f"{path}: boundary_conditions/{key} names dim {dim!r}, not one of the spatial dims {spatial}."
                )
            axis = names[spatial.index(dim)]
            if mask is None or mask.ndim != len(assoc):
                lo = hi = True
            else:
                agg = np.all if kind == "wall" else np.any
                lo = bool(agg(np.take(mask, 0, axis=pos)))
                hi = bool(agg(np.take(mask, -1, axis=pos)))
            if lo:
                ends[axis][0] = kind
            if hi:
                ends[axis][1] = kind
    return {axis: normalize_bc(v) for axis, v in ends.items()}


def read_well(path: str, manager: Any, f: h5py.File, check_finite: bool = True) -> FileContent:
    """Describe a Well file lazily: coordinates and attrs now, field data on indexing."""
    dims_group = f["dimensions"]
    spatial = as_str_list(dims_group.attrs.get("spatial_dims"))
    if not spatial or len(spatial) > 3:
        raise UnknownLayoutError(f"{path}: dimensions/@spatial_dims is {spatial!r}; expected 1 to 3 names.")
    for d in ["time", *spatial]:
        if d not in dims_group:
            raise InconsistentShapeError(f"{path}: dimensions/{d} is missing.")
    names = SPATIAL_DIMS[: len(spatial)]
    ndim = len(spatial)
    coords: dict[str, LazyVariable] = {}
    tds = dims_group["time"]
    t_var, t_name = _coord(path, "time", tds[()], as_bool(tds.attrs.get("sample_varying"), False))
    coords[t_name] = t_var
    n_time = tds.shape[-1]
    sizes = []
    for d, n in zip(spatial, names):
        dset = dims_group[d]
        var, cname = _coord(path, n, dset[()], as_bool(dset.attrs.get("sample_varying"), False))
        coords[cname] = var
        sizes.append(dset.shape[-1])
    n_traj = f.attrs.get("n_trajectories")
    n_traj = int(n_traj) if n_traj is not None else None

    variables: dict[str, LazyVariable] = {}
    for order in range(3):
        group = f.get(f"t{order}_fields")
        if group is None:
            continue
        for name in as_str_list(group.attrs.get("field_names")):
            if name not in group:
                raise InconsistentShapeError(
                    f"{path}: t{order}_fields lists field {name!r} but holds no dataset of that name."
                )
            dset = group[name]
            sv = as_bool(dset.attrs.get("sample_varying"), True)
            tv = as_bool(dset.attrs.get("time_varying"), True)
            dim_varying = [bool(v) for v in np.atleast_1d(dset.attrs.get("dim_varying", [True] * ndim))]
            if len(dim_varying) != ndim:
                dim_varying = [True] * ndim
            if sv and n_traj is None:
                n_traj = dset.shape[0]
            lead = (["trajectory"] if sv else []) + (["time"] if tv else [])
            lead_sizes = ([n_traj] if sv else []) + ([n_time] if tv else [])
            where = f"{path}: field t{order}_fields/{name}"
            stored = dset.shape
            n_lead = len(lead)
            tail = stored[len(stored) - order :] if order else ()
            mid = stored[n_lead : len(stored) - order]
            if list(stored[:n_lead]) != lead_sizes or tuple(tail) != (ndim,) * order:
                raise InconsistentShapeError(
                    f"{where} has shape {stored}; expected {tuple(lead_sizes)} + spatial {tuple(sizes)} + {(ndim,) * order} "
                    f"({'trajectory, ' if sv else ''}{'time, ' if tv else ''}{', '.join(spatial)}{', components' if order else ''})."
                )
            template: list[Any] = list(range(n_lead))
            var_dims = list(lead)
            shape = list(lead_sizes)
            if len(mid) == ndim:
                for i, (m, n) in enumerate(zip(mid, sizes)):
                    if dim_varying[i] and m == n:
                        template.append(len(var_dims))
                        var_dims.append(names[i])
                        shape.append(n)
                    elif not dim_varying[i] and m == 1:
                        template.append((0,))
                    else:
                        raise InconsistentShapeError(
                            f"{where} has {m} points along {spatial[i]}, but dimensions/{spatial[i]} has {n}."
                        )
            elif len(mid) == sum(dim_varying):
                it = iter(mid)
                for i, n in enumerate(sizes):
                    if dim_varying[i]:
                        m = next(it)
                        if m != n:
                            raise InconsistentShapeError(
                                f"{where} has {m} points along {spatial[i]}, but dimensions/{spatial[i]} has {n}."
                            )
                        template.append(len(var_dims))
                        var_dims.append(names[i])
                        shape.append(n)
            else:
                raise InconsistentShapeError(
                    f"{where} has shape {stored}, which does not fit spatial dims {spatial} of sizes {sizes}."
                )
            channels = component_names(name, order, names)
            for channel, comp in zip(channels, itertools.product(range(ndim), repeat=order)):
                full = template + [(c,) for c in comp]
                variables[channel] = LazyVariable(
                    tuple(var_dims),
                    H5Slab(manager, dset.name, shape, dset.dtype, full, f"{path}: field {channel!r}", check_finite),
                )

    params: dict[str, Any] = {}
    for p in as_str_list(f.attrs.get("simulation_parameters")):
        if p in f.attrs:
            params[p] = as_python(f.attrs[p])
    scalars = f.get("scalars")
    if scalars is not None:
        for name in as_str_list(scalars.attrs.get("field_names")):
            if name not in scalars:
                raise InconsistentShapeError(f"{path}: scalars lists {name!r} but holds no dataset of that name.")
            dset = scalars[name]
            sv = as_bool(dset.attrs.get("sample_varying"), False)
            tv = as_bool(dset.attrs.get("time_varying"), False)
            if not sv and not tv:
                params[name] = as_python(dset[()])
            else:
                dims = tuple((["trajectory"] if sv else []) + (["time"] if tv else []))
                variables[name] = LazyVariable(dims, np.asarray(dset[()]))

    attrs: dict[str, Any] = {
        "dataset_name": as_str(f.attrs.get("dataset_name", "")),
        "boundary_conditions": _boundary_conditions(path, f, spatial, names),
        "simulation_parameters": params,
    }
    grid_type = as_str(f.attrs.get("grid_type", "cartesian"))
    if grid_type != "cartesian":
        attrs["grid_type"] = grid_type
    if list(spatial) != list(names):
        attrs["source_spatial_dims"] = list(spatial)
    extra = f.attrs.get("physviz_attrs")
    if extra is not None:
        attrs.update(json.loads(as_str(extra)))
    attrs["source"] = {"format": FORMAT, "path": path}
    return FileContent(variables, coords, attrs)
