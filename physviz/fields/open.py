"""`open_fields`: open any supported file or directory lazily as a physviz Dataset."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from physviz.errors import (
    CorruptFileError,
    InconsistentShapeError,
    OptionError,
    UnknownFieldError,
    UnknownLayoutError,
)
from physviz.fields import detect
from physviz.fields.lazy import (
    NONFINITE_POLICIES,
    FieldArray,
    FileContent,
    LazyVariable,
    NumpyArray,
    RepeatedArray,
    StackedArray,
    open_h5_manager,
)


def _is_netcdf4(f: Any) -> bool:
    """True for a NetCDF4 file (HDF5 with netCDF's markers)."""
    if "_NCProperties" in f.attrs:
        return True
    for key in f:
        cls = f[key].attrs.get("CLASS")
        if cls is not None and (cls == b"DIMENSION_SCALE" or cls == "DIMENSION_SCALE"):
            return True
    return False


def _read_hdf5(path: str, opts: dict[str, Any], check: bool) -> FileContent:
    from physviz.fields.h5util import ALLOW_EXTERNAL

    allow = bool(opts.get("allow_external", False))
    token = ALLOW_EXTERNAL.set(allow)
    try:
        return _read_hdf5_layout(path, opts, check, allow)
    finally:
        ALLOW_EXTERNAL.reset(token)


def _read_hdf5_layout(path: str, opts: dict[str, Any], check: bool, allow: bool) -> FileContent:
    from physviz.fields.generic import read_generic
    from physviz.fields.h5util import check_external
    from physviz.fields.pdebench import layout_of, read_pdebench
    from physviz.fields.well import is_well, read_well

    manager = open_h5_manager(path)
    try:
        f = manager.acquire()
    except OSError as exc:
        manager.close()
        raise CorruptFileError(f"{path}: HDF5 could not open it ({exc}); the file is truncated or damaged.") from exc
    try:
        check_external(path, f, allow)
        if is_well(f):
            content = read_well(path, manager, f, check)
        elif (layout := layout_of(f)) is not None:
            content = read_pdebench(path, manager, f, layout, opts, check)
        elif _is_netcdf4(f):
            check_external(path, f, allow, storage=True)
            manager.close()
            return read_generic(path, "h5netcdf", opts, check)
        else:
            keys = sorted(f.keys())[:12]
            raise UnknownLayoutError(
                f"{path}: an HDF5 file of unknown layout (top-level keys {keys}); physviz reads The Well "
                "(t0_fields, dimensions, ...), PDEBench (0000/data, density/Vx, velocity/particles, tensor) and NetCDF4."
            )
    except BaseException:
        manager.close()
        raise
    content.closers.append(manager.close)
    return content


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and (np.array_equal(a, b) or (a.dtype.kind in "fc" and np.allclose(a, b)))


def _as_field_array(v: LazyVariable, label: str) -> FieldArray:
    return v.data if isinstance(v.data, FieldArray) else NumpyArray(np.asarray(v.data), label)


def combine(contents: Sequence[FileContent], files: Sequence[str], where: str) -> FileContent:
    """Stack file contents along `trajectory`, checking that grids and fields agree."""
    first, name0 = contents[0], files[0]
    for content, name in zip(contents[1:], files[1:]):
        if set(content.variables) != set(first.variables):
            missing = sorted(set(first.variables) ^ set(content.variables))
            raise InconsistentShapeError(f"{where}: {name} and {name0} hold different fields (differing: {missing}).")
        for c, v in first.coords.items():
            other = content.coords.get(c)
            if c == "trajectory":
                continue
            if other is None or not _same(np.asarray(v.data), np.asarray(other.data)):
                raise InconsistentShapeError(f"{where}: coordinate {c!r} of {name} differs from that of {name0}.")
        ds_names = {str(first.attrs.get("dataset_name")), str(content.attrs.get("dataset_name"))}
        if len(ds_names) > 1:
            raise InconsistentShapeError(f"{where}: {name} and {name0} belong to different datasets {sorted(ds_names)}.")
    variables: dict[str, LazyVariable] = {}
    for key, v0 in first.variables.items():
        dims = {c.variables[key].dims for c in contents}
        if len(dims) > 1 and not all(d in (v0.dims, ("trajectory", *v0.dims[1:])) for d in dims):
            raise InconsistentShapeError(f"{where}: field {key!r} has different dims across files: {sorted(dims)}.")
        parts: list[FieldArray] = []
        for content, name in zip(contents, files):
            v = content.variables[key]
            arr = _as_field_array(v, f"{name}: field {key!r}")
            if "trajectory" not in v.dims:
                n = _n_trajectories(content)
                arr = RepeatedArray(arr, n)
            parts.append(arr)
        shapes = {p.shape[1:] for p in parts}
        if len(shapes) > 1:
            raise InconsistentShapeError(f"{where}: field {key!r} has shapes {sorted(shapes)} in different files.")
        out_dims = v0.dims if "trajectory" in v0.dims else ("trajectory", *v0.dims)
        variables[key] = LazyVariable(out_dims, StackedArray(parts, f"{where}: field {key!r}"), v0.attrs)
    coords = {k: v for k, v in first.coords.items() if k != "trajectory"}
    attrs = dict(first.attrs)
    attrs["source"] = {**attrs.get("source", {}), "path": where, "files": list(files)}
    closers = [c for content in contents for c in content.closers]
    return FileContent(variables, coords, attrs, closers)


def _n_trajectories(content: FileContent) -> int:
    for v in content.variables.values():
        if "trajectory" in v.dims:
            return int(np.shape(v.data)[v.dims.index("trajectory")]) if not isinstance(v.data, FieldArray) else v.data.shape[v.dims.index("trajectory")]
    return 1


def read_content(path: str | os.PathLike[str], opts: Mapping[str, Any]) -> FileContent:
    """Read a file or directory into a lazy FileContent (the backend's core)."""
    opts = dict(opts)
    if isinstance(opts.get("field_names"), str):
        opts["field_names"] = [opts["field_names"]]
    nonfinite = opts.get("nonfinite", "raise")
    if nonfinite not in NONFINITE_POLICIES:
        raise OptionError(f"nonfinite={nonfinite!r} is not one of {NONFINITE_POLICIES}.")
    check = nonfinite == "raise"
    p = os.fspath(path)
    kind = detect.kind_of(p)
    if kind == "hdf5":
        content = _read_hdf5(p, opts, check)
    elif kind in ("netcdf3", "zarr"):
        from physviz.fields.generic import read_generic

        if kind == "netcdf3":
            from physviz.fields.netcdf3 import check_complete

            check_complete(p)

        content = read_generic(p, "zarr" if kind == "zarr" else None, opts, check)
    else:
        folder = Path(p)
        if kind == "well_dataset":
            split = opts.get("split", "train")
            if split not in detect.SPLITS:
                raise OptionError(f"split={split!r} is not one of {detect.SPLITS}.")
            folder = folder / "data" / split
            if not folder.is_dir():
                raise UnknownLayoutError(f"{p}: there is no data/{split} split in this dataset directory.")
        files = [str(c) for c in detect.hdf5_files(folder)]
        if not files:
            raise UnknownLayoutError(f"{folder}: no .hdf5/.h5 files in this directory.")
        contents: list[FileContent] = []
        try:
            for file in files:
                contents.append(read_content(file, {**opts, "fields": None}))
            content = combine(contents, files, str(folder)) if len(contents) > 1 else contents[0]
        except BaseException:
            for c in contents:
                c.close()
            raise
    return select_fields(content, opts.get("fields"), p)


def select_fields(content: FileContent, fields: Sequence[str] | str | None, where: str) -> FileContent:
    """Keep only the requested fields, naming any that do not exist."""
    if fields is None:
        return content
    wanted = [fields] if isinstance(fields, str) else list(fields)
    missing = [f for f in wanted if f not in content.variables]
    if missing:
        content.close()
        raise UnknownFieldError(
            f"{where}: no field named {', '.join(repr(m) for m in missing)}; available: {', '.join(sorted(content.variables))}."
        )
    content.variables = {k: content.variables[k] for k in wanted}
    return content


def open_fields(
    path: str | os.PathLike[str],
    *,
    fields: Sequence[str] | str | None = None,
    split: str = "train",
    nonfinite: str = "raise",
    names: Any = None,
    field_names: Sequence[str] | None = None,
    boundary_conditions: Any = None,
    allow_external: bool = False,
    missing_chunks: str = "raise",
) -> Any:
    """Open a Well/PDEBench HDF5 file, NetCDF/Zarr store or directory as a lazy xarray Dataset.

    fields: keep only these data variables. split: which split of a Well dataset
    directory. nonfinite: 'raise' (a NaN/inf read raises NonFiniteFieldError) or
    'allow'. names: extra renames for generic files ({'fields': {...}, 'dims': {...}}
    or a plain field map). field_names: channel names for PDEBench per-seed data.
    boundary_conditions: override ('periodic', or a map of axis to condition).
    allow_external: read HDF5 data stored in other files (external links, external
    storage, virtual datasets); off by default, since such a file can point at any
    file on the machine (e.g. /etc/passwd). missing_chunks: 'raise' (a Zarr array
    whose chunk files are missing is refused at open, naming them) or 'fill' (read
    them as the array's fill value, as Zarr does).

    Refused at open, with one PhysvizError naming the file and field: truncated or
    damaged files, complex or non-numeric fields, axes of length zero, coordinates
    that are not finite, out of order or absurdly large.
    """
    import xarray as xr

    from physviz.fields.backend import PhysvizBackendEntrypoint

    return xr.open_dataset(
        os.fspath(path),
        engine=PhysvizBackendEntrypoint,
        fields=fields,
        split=split,
        nonfinite=nonfinite,
        names=names,
        field_names=field_names,
        boundary_conditions=boundary_conditions,
        allow_external=allow_external,
        missing_chunks=missing_chunks,
    )
