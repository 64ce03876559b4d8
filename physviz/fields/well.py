"""Reader of The Well's HDF5 layout (t0/t1/t2 fields, scalars, boundary conditions)."""
from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from physviz.errors import (
    FieldFileNotFoundError,
    InconsistentShapeError,
    SchemaError,
    UnknownLayoutError,
)
from physviz.fields.checks import check_dtype
from physviz.fields.detect import SPLITS, hdf5_files
from physviz.fields.h5util import (
    ALLOW_EXTERNAL,
    as_bool,
    as_count,
    as_python,
    as_str,
    as_str_list,
    check_external,
    dataset,
    read_coordinate,
)
from physviz.fields.lazy import FileContent, H5Slab, LazyVariable
from physviz.fields.schema import SPATIAL_DIMS, component_names, normalize_bc

FORMAT = "the_well"


def split_files(path: str | os.PathLike[str], split: str) -> tuple[list[Path], Path]:
    """The HDF5 files of one split of a Well dataset path, and the dataset root (where stats.yaml lives).

    ``path`` may be a Well dataset folder (``data/<split>/``), its ``data`` folder, a split folder,
    a folder holding ``<split>/`` folders or HDF5 files directly (those count as the train split),
    or one file (the train split). A split that is not there has no files.
    """
    p = Path(path).expanduser()
    if p.is_file():
        return ([p] if split == "train" else []), p.parent
    if not p.is_dir():
        raise FieldFileNotFoundError(f"{p}: no such file or directory.")
    for folder, root in ((p / "data" / split, p), (p / split, p.parent if p.name == "data" else p)):
        if folder.is_dir():
            return hdf5_files(folder), root
    if p.name in SPLITS and p.parent.name == "data":
        return (hdf5_files(p) if p.name == split else []), p.parent.parent
    return (hdf5_files(p) if split == "train" else []), p


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


def boundary_conditions(path: str, f: h5py.File, spatial: list[str], names: tuple[str, ...]) -> dict[str, Any]:
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
        mask = np.asarray(dataset(path, bc, "mask")[()]).astype(bool) if "mask" in bc else None
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


def _dim_varying(path: str, dset: h5py.Dataset, ndim: int) -> list[bool]:
    """A field's dim_varying flags, one per spatial axis (all True when absent)."""
    raw = dset.attrs.get("dim_varying")
    if raw is None:
        return [True] * ndim
    flags = np.atleast_1d(np.asarray(raw))
    if flags.dtype.kind not in "biu" or flags.ndim != 1 or len(flags) != ndim:
        raise SchemaError(
            f"{path}: {dset.name.lstrip('/')} has attribute dim_varying {raw!r}; expected {ndim} true/false flags, one per spatial axis."
        )
    return [bool(v) for v in flags]


def _physviz_attrs(path: str, value: Any) -> dict[str, Any]:
    """The JSON map of Dataset attrs physviz's writer keeps in the file's physviz_attrs attribute."""
    try:
        out = json.loads(as_str(value))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: attribute physviz_attrs is not valid JSON ({exc}); fix or delete the attribute.") from None
    if not isinstance(out, dict):
        raise SchemaError(f"{path}: attribute physviz_attrs holds a {type(out).__name__}, not a JSON map; fix or delete the attribute.")
    return out


@dataclass
class WellField:
    """One field dataset of a Well file (``t<order>_fields/<name>``) and what its attrs say of its axes."""

    name: str
    order: int
    dataset: h5py.Dataset
    sample_varying: bool
    time_varying: bool
    dim_varying: list[bool]  # one per spatial axis; False: stored with size 1 or left out

    @property
    def lead(self) -> int:
        """How many leading axes (trajectory, time) the stored array has."""
        return int(self.sample_varying) + int(self.time_varying)


@dataclass
class WellHeader:
    """The metadata of a Well file: spatial dims, grid size, time steps, trajectories and fields."""

    spatial: list[str]  # as the file names them
    names: tuple[str, ...]  # as physviz names them: x, y, z
    n_time: int
    sizes: list[int]
    n_trajectories: int | None  # None: the file has no sample-varying field and no n_trajectories
    fields: list[WellField]


def read_header(path: str, f: h5py.File) -> WellHeader:
    """A Well file's dimensions and fields (no field data); a PhysvizError names what is missing or malformed.

    Fields that are complex or not numbers, and data held in other files (unless the reader allows it,
    see `h5util.ALLOW_EXTERNAL`), are refused here, so every reader of Well files refuses them.
    """
    check_external(path, f, ALLOW_EXTERNAL.get())
    dims_group = f["dimensions"]
    if not isinstance(dims_group, h5py.Group):
        raise SchemaError(f"{path}: dimensions is a dataset where The Well keeps a group of coordinates.")
    spatial = as_str_list(dims_group.attrs.get("spatial_dims"))
    if not spatial or len(spatial) > 3:
        raise UnknownLayoutError(f"{path}: dimensions/@spatial_dims is {spatial!r}; expected 1 to 3 names.")
    for d in ["time", *spatial]:
        if d not in dims_group:
            raise InconsistentShapeError(f"{path}: dimensions/{d} is missing.")
        dataset(path, dims_group, d)
    ndim = len(spatial)
    n_traj = f.attrs.get("n_trajectories")
    n_traj = as_count(path, "n_trajectories", n_traj) if n_traj is not None else None
    fields = []
    for order in range(3):
        group = f.get(f"t{order}_fields")
        if group is None:
            continue
        for name in as_str_list(group.attrs.get("field_names")):
            if name not in group:
                raise InconsistentShapeError(
                    f"{path}: t{order}_fields lists field {name!r} but holds no dataset of that name."
                )
            dset = dataset(path, group, name)
            check_dtype(path, name, dset.dtype)
            dim_varying = _dim_varying(path, dset, ndim)
            field = WellField(name, order, dset, as_bool(dset.attrs.get("sample_varying"), True),
                              as_bool(dset.attrs.get("time_varying"), True),
                              dim_varying if len(dim_varying) == ndim else [True] * ndim)
            if field.sample_varying and n_traj is None:
                n_traj = int(dset.shape[0])
            fields.append(field)
    return WellHeader(spatial, SPATIAL_DIMS[:ndim], int(dims_group["time"].shape[-1]),
                      [int(dims_group[d].shape[-1]) for d in spatial], n_traj, fields)


def read_well(path: str, manager: Any, f: h5py.File, check_finite: bool = True) -> FileContent:
    """Describe a Well file lazily: coordinates and attrs now, field data on indexing."""
    header = read_header(path, f)
    dims_group = f["dimensions"]
    spatial, names, n_traj = header.spatial, header.names, header.n_trajectories
    ndim = len(spatial)
    coords: dict[str, LazyVariable] = {}
    tds = dims_group["time"]
    t_var, t_name = _coord(path, "time", read_coordinate(path, dims_group, "time"), as_bool(tds.attrs.get("sample_varying"), False))
    coords[t_name] = t_var
    n_time, sizes = header.n_time, header.sizes
    for d, n in zip(spatial, names):
        dset = dims_group[d]
        var, cname = _coord(path, n, read_coordinate(path, dims_group, d), as_bool(dset.attrs.get("sample_varying"), False))
        coords[cname] = var

    variables: dict[str, LazyVariable] = {}
    for wf in header.fields:
        name, order, dset, dim_varying = wf.name, wf.order, wf.dataset, wf.dim_varying
        sv, tv = wf.sample_varying, wf.time_varying
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
            dset = dataset(path, scalars, name)
            sv = as_bool(dset.attrs.get("sample_varying"), False)
            tv = as_bool(dset.attrs.get("time_varying"), False)
            want = tuple(([n_traj] if sv else []) + ([n_time] if tv else []))
            if (sv or tv) and tuple(dset.shape) != want:
                raise SchemaError(
                    f"{path}: scalars/{name} has shape {tuple(dset.shape)}; its sample_varying/time_varying flags "
                    f"ask for {want} ({'trajectory, ' if sv else ''}{'time' if tv else ''})."
                )
            if not sv and not tv:
                params[name] = as_python(dset[()])
            else:
                dims = tuple((["trajectory"] if sv else []) + (["time"] if tv else []))
                variables[name] = LazyVariable(dims, np.asarray(dset[()]))

    attrs: dict[str, Any] = {
        "dataset_name": as_str(f.attrs.get("dataset_name", "")),
        "boundary_conditions": boundary_conditions(path, f, spatial, names),
        "simulation_parameters": params,
    }
    grid_type = as_str(f.attrs.get("grid_type", "cartesian"))
    if grid_type != "cartesian":
        attrs["grid_type"] = grid_type
    if list(spatial) != list(names):
        attrs["source_spatial_dims"] = list(spatial)
    extra = f.attrs.get("physviz_attrs")
    if extra is not None:
        attrs.update(_physviz_attrs(path, extra))
    attrs["source"] = {"format": FORMAT, "path": path}
    return FileContent(variables, coords, attrs)
