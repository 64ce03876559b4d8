"""Checks every opened file passes: numeric fields, non-empty axes, finite ordered coordinates of sane size."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from physviz.errors import SchemaError
from physviz.fields.lazy import FileContent
from physviz.fields.schema import DIM_ORDER, SPATIAL_DIMS, check_field_name

# More points than this along one coordinate is no real grid (a damaged or hostile header): 2**27 float64 is 1 GiB.
MAX_COORDINATE_POINTS = 1 << 27
NUMERIC_KINDS = "biuf"


def check_coordinate_size(where: str, shape: tuple[int, ...]) -> None:
    """Refuse a coordinate declared with more points than any real grid has, before it is read."""
    n = int(np.prod(shape, dtype=np.float64)) if shape else 1
    if n > MAX_COORDINATE_POINTS:
        raise SchemaError(
            f"{where} declares {n} points (shape {tuple(shape)}), more than the {MAX_COORDINATE_POINTS} a coordinate "
            "may have; the file's header is damaged or not a field file."
        )


def check_dtype(where: str, name: str, dtype: np.dtype) -> None:
    """Refuse a complex or non-numeric field, saying how to store it instead."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise SchemaError(
            f"{where}: field {name!r} is complex ({dtype}); physviz fields are real: store its real and imaginary "
            f"parts as two fields (e.g. {name}_real, {name}_imag), or leave it out with fields=[...]."
        )
    if dtype.kind not in NUMERIC_KINDS:
        raise SchemaError(
            f"{where}: field {name!r} holds {dtype} values, not numbers; convert it to numbers or leave it out with fields=[...]."
        )


def _check_coordinate(where: str, name: str, dims: tuple[str, ...], values: Any) -> None:
    """Finite values; time strictly increasing, a spatial axis strictly increasing or decreasing."""
    axis = dims[-1] if dims else ""
    if axis not in ("time", *SPATIAL_DIMS):
        return
    values = np.asarray(values)
    if values.dtype.kind not in "iuf":
        raise SchemaError(
            f"{where}: coordinate {axis!r} holds {values.dtype} values, not numbers; a grid's points must be numbers."
        )
    if values.size == 0:
        return
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise SchemaError(f"{where}: coordinate {axis!r} holds NaN or infinite values; fix the file's {name!r} values.")
    if values.shape[-1] < 2:
        return
    step = np.diff(values.astype(np.float64), axis=-1)
    if axis == "time":
        if not (step > 0).all():
            bad = tuple(int(b) for b in np.argwhere(~(step > 0))[0])
            before, after = float(values[bad]), float(values[(*bad[:-1], bad[-1] + 1)])
            raise SchemaError(
                f"{where}: coordinate 'time' is not strictly increasing ({after:g} follows {before:g} at entry {bad[-1] + 1}); "
                "sort the frames or fix the time values."
            )
    elif not ((step > 0).all() or (step < 0).all()):
        raise SchemaError(
            f"{where}: coordinate {axis!r} is not strictly increasing or decreasing; a grid's points must be in order."
        )


def check_content(content: FileContent, where: str) -> None:
    """Refuse non-numeric or complex fields, axes of length zero and bad coordinates, naming the field or axis."""
    params = content.attrs.get("simulation_parameters")
    if params is not None and not isinstance(params, Mapping):
        raise SchemaError(f"{where}: attribute simulation_parameters is {params!r}, not a map of names to values.")
    for name, v in content.variables.items():
        try:
            check_field_name(name)
        except SchemaError as exc:
            raise SchemaError(f"{where}: {exc}") from None
        check_dtype(where, name, np.dtype(v.data.dtype))
        for dim, size in zip(v.dims, np.shape(v.data) if isinstance(v.data, np.ndarray) else v.data.shape):
            if size == 0 and dim in DIM_ORDER:
                raise SchemaError(f"{where}: axis {dim!r} of field {name!r} has length 0; the file holds no data along it.")
    for name, c in content.coords.items():
        for dim, size in zip(c.dims, np.shape(c.data)):
            if size == 0 and dim in DIM_ORDER:
                raise SchemaError(f"{where}: axis {dim!r} has length 0; the file holds no data along it.")
        _check_coordinate(where, name, tuple(c.dims), c.data)
