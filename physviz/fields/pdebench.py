"""Readers of PDEBench's HDF5 layouts: per-seed groups, flat CFD, flat INS, scalar `tensor`."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from physviz.errors import InconsistentShapeError, SchemaError, UnknownFieldError
from physviz.fields.h5util import as_python, dataset, read_coordinate
from physviz.fields.lazy import (
    FieldArray,
    FileContent,
    H5Slab,
    LazyVariable,
    StackedArray,
)
from physviz.fields.schema import SPATIAL_DIMS, check_field_name, normalize_bc

FORMAT = "pdebench"
CFD_FIELDS = {"density": "density", "pressure": "pressure", "Vx": "velocity_x", "Vy": "velocity_y", "Vz": "velocity_z"}
_SEED_RE = re.compile(r"^\d+$")


def layout_of(f: h5py.File) -> str | None:
    """Which PDEBench layout an open HDF5 file has, or None."""
    keys = list(f.keys())
    if keys and all(_SEED_RE.match(k) for k in keys) and isinstance(f[keys[0]], h5py.Group) and "data" in f[keys[0]]:
        return "seed_groups"
    if "density" in f and "Vx" in f:
        return "cfd"
    if "velocity" in f and ("particles" in f or "force" in f):
        return "ns_incom"
    if "tensor" in f:
        return "tensor"
    return None


def _default_bcs(path: str, ndim: int, override: Any) -> dict[str, Any]:
    """Boundary conditions from the user, else guessed from PDEBench's file name."""
    axes = SPATIAL_DIMS[:ndim]
    if override is not None:
        if isinstance(override, str):
            override = {a: override for a in axes}
        return {a: normalize_bc(v, f"boundary_conditions for {path}") for a, v in override.items()}
    name = Path(path).name.lower()
    if "periodic" in name or "advection" in name or "burgers" in name:
        kind = "periodic"
    elif "diff-react" in name or "ns_incom" in name or "darcy" in name:
        kind = "wall"
    else:
        kind = "open"
    return {a: kind for a in axes}


def _check_name(path: str, name: str) -> None:
    """check_field_name, naming the file."""
    try:
        check_field_name(name)
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from None


def _channel_names(path: str, n: int, given: list[str] | None) -> list[str]:
    """Names of the channels of a per-seed `data` array."""
    if given is not None:
        if len(given) != n:
            raise UnknownFieldError(f"{path}: field_names has {len(given)} names but the data has {n} channel(s).")
        for g in given:
            _check_name(path, g)
        return list(given)
    name = Path(path).name.lower()
    if "rdb" in name or "swe" in name or "shallow" in name:
        guess = ["height"]
    elif "diff-react" in name or "diffreact" in name:
        guess = ["activator", "inhibitor"]
    elif "diff-sorp" in name:
        guess = ["u"]
    else:
        guess = []
    if len(guess) == n:
        return guess
    if n == 1:
        return ["u"]
    return [f"u{i}" for i in range(n)]


def _params_from_attrs(f: h5py.File) -> dict[str, Any]:
    return {k: as_python(v) for k, v in f.attrs.items() if np.asarray(v).dtype.kind in "fiub"}


def _attrs(path: str, f: h5py.File, ndim: int, opts: dict[str, Any]) -> dict[str, Any]:
    """Dataset attrs of a PDEBench file: name from the file, guessed BCs, numeric root attrs."""
    return {
        "dataset_name": Path(path).stem,
        "boundary_conditions": _default_bcs(path, ndim, opts.get("boundary_conditions")),
        "simulation_parameters": _params_from_attrs(f),
    }


def _time_coord(path: str, values: np.ndarray, n_time: int) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim == 2:
        values = values[0]
    if values.shape[0] < n_time:
        raise InconsistentShapeError(
            f"{path}: the time coordinate has {values.shape[0]} entries but the data has {n_time} time steps."
        )
    return values[:n_time]  # PDEBench's t-coordinate often has one extra entry


def _read_seed_groups(path: str, manager: Any, f: h5py.File, opts: dict[str, Any], check: bool) -> FileContent:
    seeds = sorted(f.keys())
    first = dataset(path, f[seeds[0]], "data")
    shape = first.shape  # (T, X[, Y[, Z]], C)
    ndim = len(shape) - 2
    if ndim < 1 or ndim > 3:
        raise InconsistentShapeError(f"{path}: {seeds[0]}/data has shape {shape}; expected (time, x[, y[, z]], channels).")
    names = _channel_names(path, shape[-1], opts.get("field_names"))
    for s in seeds:
        if not isinstance(f[s], h5py.Group) or "data" not in f[s] or dataset(path, f[s], "data").shape != shape:
            got = f[s]["data"].shape if isinstance(f[s], h5py.Group) and "data" in f[s] else "no data"
            raise InconsistentShapeError(f"{path}: group {s}/data has shape {got}, but {seeds[0]}/data has {shape}.")
    grid = first.parent.get("grid")
    if grid is not None and not isinstance(grid, h5py.Group):
        raise SchemaError(f"{path}: {grid.name.lstrip('/')} is a dataset where PDEBench keeps a group of coordinates.")
    axes = SPATIAL_DIMS[:ndim]
    coords: dict[str, LazyVariable] = {}
    if grid is not None and "t" in grid:
        coords["time"] = LazyVariable(("time",), _time_coord(path, read_coordinate(path, grid, "t"), shape[0]))
    else:
        coords["time"] = LazyVariable(("time",), np.arange(shape[0], dtype=np.float64))
    for i, a in enumerate(axes):
        if grid is not None and a in grid:
            values = read_coordinate(path, grid, a)
            if values.shape != (shape[1 + i],):
                raise InconsistentShapeError(f"{path}: grid/{a} has shape {values.shape}, but the data has {shape[1 + i]} points along {a}.")
        else:
            values = np.arange(shape[1 + i], dtype=np.float64)
        coords[a] = LazyVariable((a,), values)
    coords["trajectory"] = LazyVariable(("trajectory",), np.array([int(s) for s in seeds]))
    variables: dict[str, LazyVariable] = {}
    dims = ("trajectory", "time", *axes)
    for c, name in enumerate(names):
        parts: list[FieldArray] = []
        for s in seeds:
            template = [*range(1 + ndim), (c,)]
            label = f"{path}: field {name!r} (group {s})"
            parts.append(_Leading(H5Slab(manager, f"{s}/data", shape[:-1], first.dtype, template, label, check)))
        variables[name] = LazyVariable(dims, StackedArray(parts, f"{path}: field {name!r}"))
    return FileContent(variables, coords, _attrs(path, f, ndim, opts))


class _Leading(FieldArray):
    """Adds a leading axis of length one (one seed group = one trajectory)."""

    def __init__(self, inner: FieldArray) -> None:
        self.inner = inner
        self.shape = (1, *inner.shape)
        self.dtype = inner.dtype
        self.label = inner.label
        self.check_finite = False

    def _read(self, key: Any) -> np.ndarray:
        data = self.inner.read(key[1:])
        return data if isinstance(key[0], (int, np.integer)) else data[None][key[0]]


def _flat_fields(
    path: str, manager: Any, f: h5py.File, mapping: dict[str, str], check: bool, dims: tuple[str, ...]
) -> dict[str, LazyVariable]:
    """Flat datasets [N, T, X, ...] (optionally with trailing components) as variables."""
    variables: dict[str, LazyVariable] = {}
    ref_shape: tuple[int, ...] | None = None
    ref_name = ""
    for key, name in mapping.items():
        if key not in f:
            continue
        dset = dataset(path, f, key)
        if name.endswith("[]"):  # vector stored with a trailing component axis
            base = name[:-2]
            lead = dset.shape[:-1]
            ncomp = dset.shape[-1]
            for c in range(ncomp):
                cname = f"{base}_{SPATIAL_DIMS[c]}" if ncomp > 1 else base
                template = [*range(len(lead)), (c,)]
                variables[cname] = LazyVariable(dims, H5Slab(manager, key, lead, dset.dtype, template, f"{path}: field {cname!r}", check))
            shape = tuple(lead)
        else:
            shape = dset.shape
            variables[name] = LazyVariable(dims, H5Slab(manager, key, shape, dset.dtype, list(range(len(shape))), f"{path}: field {name!r}", check))
        if ref_shape is None:
            ref_shape, ref_name = tuple(shape), key
        elif tuple(shape) != ref_shape:
            raise InconsistentShapeError(f"{path}: dataset {key!r} has shape {tuple(shape)}, but {ref_name!r} has {ref_shape}.")
    return variables


def _flat_coords(path: str, f: h5py.File, shape: tuple[int, ...], ndim: int) -> dict[str, LazyVariable]:
    coords: dict[str, LazyVariable] = {}
    n_time = shape[1]
    if "t-coordinate" in f:
        coords["time"] = LazyVariable(("time",), _time_coord(path, read_coordinate(path, f, "t-coordinate"), n_time))
    elif "t" in f:
        coords["time"] = LazyVariable(("time",), _time_coord(path, read_coordinate(path, f, "t"), n_time))
    else:
        coords["time"] = LazyVariable(("time",), np.arange(n_time, dtype=np.float64))
    for i, a in enumerate(SPATIAL_DIMS[:ndim]):
        n = shape[2 + i]
        key = f"{a}-coordinate"
        if key in f:
            values = read_coordinate(path, f, key)
            if values.shape != (n,):
                raise InconsistentShapeError(f"{path}: {key} has shape {values.shape}, but the data has {n} points along {a}.")
        else:
            values = (np.arange(n) + 0.5) / n  # PDEBench's unit-square cell centres
        coords[a] = LazyVariable((a,), values)
    return coords


def _read_cfd(path: str, manager: Any, f: h5py.File, opts: dict[str, Any], check: bool) -> FileContent:
    shape = dataset(path, f, "density").shape
    ndim = len(shape) - 2
    if ndim < 1 or ndim > 3:
        raise InconsistentShapeError(f"{path}: density has shape {shape}; expected (samples, time, x[, y[, z]]).")
    dims = ("trajectory", "time", *SPATIAL_DIMS[:ndim])
    variables = _flat_fields(path, manager, f, CFD_FIELDS, check, dims)
    coords = _flat_coords(path, f, shape, ndim)
    return FileContent(variables, coords, _attrs(path, f, ndim, opts))


def _read_ns_incom(path: str, manager: Any, f: h5py.File, opts: dict[str, Any], check: bool) -> FileContent:
    shape = dataset(path, f, "velocity").shape  # (N, T, X, Y, 2)
    if len(shape) != 5:
        raise InconsistentShapeError(f"{path}: velocity has shape {shape}; expected (samples, time, x, y, 2).")
    dims = ("trajectory", "time", "x", "y")
    variables = _flat_fields(path, manager, f, {"velocity": "velocity[]", "particles": "particles[]"}, check, dims)
    if "force" in f:
        fshape = dataset(path, f, "force").shape
        for c in range(fshape[-1]):
            name = f"force_{SPATIAL_DIMS[c]}"
            variables[name] = LazyVariable(
                ("trajectory", "x", "y"), H5Slab(manager, "force", fshape[:-1], f["force"].dtype, [0, 1, 2, (c,)], f"{path}: field {name!r}", check)
            )
    coords = _flat_coords(path, f, shape[:-1], 2)
    return FileContent(variables, coords, _attrs(path, f, 2, opts))


def _read_tensor(path: str, manager: Any, f: h5py.File, opts: dict[str, Any], check: bool) -> FileContent:
    shape = dataset(path, f, "tensor").shape  # (N, T, X[, Y[, Z]])
    ndim = len(shape) - 2
    if ndim < 1 or ndim > 3:
        raise InconsistentShapeError(f"{path}: tensor has shape {shape}; expected (samples, time, x[, y[, z]]).")
    names = opts.get("field_names") or ["u"]
    if len(names) != 1:
        raise UnknownFieldError(f"{path}: the `tensor` layout holds one field, but field_names has {len(names)}.")
    _check_name(path, names[0])
    dims = ("trajectory", "time", *SPATIAL_DIMS[:ndim])
    variables = _flat_fields(path, manager, f, {"tensor": names[0]}, check, dims)
    if "nu" in f:  # Darcy flow: a coefficient field per sample, constant in time
        nshape = dataset(path, f, "nu").shape
        if tuple(nshape) != (shape[0], *shape[2:]):
            raise InconsistentShapeError(f"{path}: nu has shape {nshape}; expected {(shape[0], *shape[2:])}.")
        variables["nu"] = LazyVariable(
            ("trajectory", *SPATIAL_DIMS[:ndim]), H5Slab(manager, "nu", nshape, f["nu"].dtype, list(range(len(nshape))), f"{path}: field 'nu'", check)
        )
    coords = _flat_coords(path, f, shape, ndim)
    return FileContent(variables, coords, _attrs(path, f, ndim, opts))


READERS = {"seed_groups": _read_seed_groups, "cfd": _read_cfd, "ns_incom": _read_ns_incom, "tensor": _read_tensor}


def read_pdebench(path: str, manager: Any, f: h5py.File, layout: str, opts: dict[str, Any], check_finite: bool = True) -> FileContent:
    """Describe a PDEBench file lazily in the physviz schema."""
    content = READERS[layout](path, manager, f, opts, check_finite)
    content.attrs["source"] = {"format": f"{FORMAT}:{layout}", "path": path}
    return content
