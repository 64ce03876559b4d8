"""The physviz field schema: dimension order, canonical names, attrs, validation."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from physviz.errors import SchemaError

SPATIAL_DIMS = ("x", "y", "z")
DIM_ORDER = ("trajectory", "time", *SPATIAL_DIMS)
BC_TYPES = ("periodic", "wall", "open")

# Scalar fields with canonical names. Vector/tensor fields are split into
# components with _x/_y/_z (or _xx, _xy, ...) suffixes, as The Well names them.
CANONICAL_FIELDS: dict[str, str] = {
    "density": "mass density",
    "pressure": "pressure",
    "energy": "total energy density",
    "internal_energy": "internal energy",
    "temperature": "temperature",
    "height": "fluid column height (shallow water)",
    "vorticity": "vorticity (2D: scalar z component)",
    "velocity": "velocity vector",
    "momentum": "momentum vector",
    "magnetic_field": "magnetic field vector",
    "activator": "activator concentration (reaction-diffusion)",
    "inhibitor": "inhibitor concentration (reaction-diffusion)",
    "concentration": "scalar concentration",
    "buoyancy": "buoyancy",
    "tracer": "passive tracer",
    "particles": "particle density (PDEBench incompressible NS)",
    "force": "forcing field",
    "u": "scalar unknown of a generic PDE",
    "nu": "coefficient field (e.g. Darcy permeability)",
}

_COMPONENT_RE = re.compile(r"^(?P<base>.+)_(?P<comp>[xyz]{1,2})$")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def split_component(name: str) -> tuple[str, str]:
    """Split 'velocity_x' into ('velocity', 'x'); a scalar name gives (name, '')."""
    match = _COMPONENT_RE.match(name)
    if match is None:
        return name, ""
    return match.group("base"), match.group("comp")


def component_names(base: str, order: int, spatial_dims: Iterable[str]) -> list[str]:
    """Channel names of a tensor field of the given order, The Well's way."""
    dims = list(spatial_dims)
    if order == 0:
        return [base]
    if order == 1:
        return [f"{base}_{d}" for d in dims]
    if order == 2:
        return [f"{base}_{a}{b}" for a in dims for b in dims]
    raise ValueError(f"tensor order {order} is not supported (0, 1 or 2)")


def check_field_name(name: str) -> None:
    """Raise SchemaError unless `name` is usable as a field name."""
    if not _NAME_RE.match(name):
        raise SchemaError(
            f"Field name {name!r} is not valid: use letters, digits and underscores, starting with a letter."
        )


def spatial_dims_of(ds_dims: Iterable[str]) -> list[str]:
    """The spatial dims present, in schema order."""
    present = set(ds_dims)
    return [d for d in SPATIAL_DIMS if d in present]


def normalize_bc(value: Any, where: str = "boundary_conditions") -> str | list[str]:
    """Normalize one axis's boundary condition to 'periodic'|'wall'|'open' or [lower, upper]."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise SchemaError(f"{where}: an axis takes one condition or [lower, upper], got {value!r}.")
        lo, hi = (normalize_bc(v, where) for v in value)
        return lo if lo == hi else [lo, hi]  # type: ignore[list-item]
    text = str(value).strip().lower()
    if text not in BC_TYPES:
        raise SchemaError(f"{where}: boundary condition {value!r} is not one of {', '.join(BC_TYPES)}.")
    return text


def periodic_flags(boundary_conditions: Mapping[str, Any] | None, dims: Sequence[str]) -> tuple[int, ...]:
    """1 per axis of `dims` whose condition is "periodic", else 0; an unknown condition is a SchemaError."""
    bcs = boundary_conditions or {}
    flags = []
    for d in dims:
        value = bcs.get(d)
        known = "open" if value is None else normalize_bc(value, f"boundary_conditions[{d!r}]")
        flags.append(int(known == "periodic"))
    return tuple(flags)


def decode_attr(value: Any) -> Any:
    """Turn a JSON-string attr (as NetCDF stores dicts) back into an object."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def attrs_for_netcdf(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attrs with dicts and lists encoded as JSON strings, so NetCDF can store them."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        out[key] = json.dumps(value) if isinstance(value, (dict, list, tuple)) else value
    return out


@dataclass
class SchemaReport:
    """What `validate_dataset` found: field names and their tensor grouping."""

    spatial_dims: list[str]
    fields: list[str]
    scalars: list[str] = field(default_factory=list)
    boundary_conditions: dict[str, str | list[str]] = field(default_factory=dict)


def validate_dataset(ds: Any, where: str = "dataset") -> SchemaReport:
    """Check an xarray Dataset against the schema; raise SchemaError naming the problem."""
    spatial = spatial_dims_of(ds.dims)
    if not spatial:
        raise SchemaError(f"{where} has no spatial dimension: dims are {list(ds.dims)}, expected some of x, y, z.")
    unknown = [d for d in ds.dims if d not in DIM_ORDER]
    if unknown:
        raise SchemaError(
            f"{where} has dimension(s) {unknown} outside the schema {list(DIM_ORDER)}: "
            "rename them (e.g. ds.rename(...)) or select one index (ds.isel(...))."
        )
    if spatial != list(SPATIAL_DIMS[: len(spatial)]):
        raise SchemaError(f"{where} has spatial dims {spatial}: use x, then y, then z.")
    fields: list[str] = []
    scalars: list[str] = []
    for name, var in ds.data_vars.items():
        check_field_name(str(name))
        order = [d for d in DIM_ORDER if d in var.dims]
        if list(var.dims) != order:
            raise SchemaError(f"{where}: field {name!r} has dims {list(var.dims)}; expected the order {order}.")
        if any(d in var.dims for d in spatial):
            if tuple(d for d in var.dims if d in SPATIAL_DIMS) != tuple(spatial):
                raise SchemaError(
                    f"{where}: field {name!r} spans {list(var.dims)} but every field must span all spatial dims {spatial}."
                )
            fields.append(str(name))
        else:
            scalars.append(str(name))
    bcs_attr = decode_attr(ds.attrs.get("boundary_conditions", {})) or {}
    if not isinstance(bcs_attr, Mapping):
        raise SchemaError(f"{where}: attrs['boundary_conditions'] must map axis names to conditions, got {bcs_attr!r}.")
    bcs: dict[str, str | list[str]] = {}
    for axis, value in bcs_attr.items():
        if axis not in spatial:
            raise SchemaError(f"{where}: boundary condition given for axis {axis!r}, which is not one of {spatial}.")
        bcs[axis] = normalize_bc(value, f"{where}: boundary condition of {axis}")
    return SchemaReport(spatial_dims=spatial, fields=fields, scalars=scalars, boundary_conditions=bcs)
