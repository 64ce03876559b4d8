"""The documented name map from other conventions (NetCDF, Zarr) onto the physviz schema."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Variable names seen in the wild -> canonical physviz field names.
DEFAULT_FIELD_NAMES: dict[str, str] = {
    "rho": "density",
    "dens": "density",
    "p": "pressure",
    "pres": "pressure",
    "prs": "pressure",
    "e": "energy",
    "E": "energy",
    "T": "temperature",
    "temp": "temperature",
    "h": "height",
    "depth": "height",
    "zeta": "vorticity",
    "omega": "vorticity",
    "vort": "vorticity",
    "w": "vorticity",
    "u": "velocity_x",
    "v": "velocity_y",
    "Vx": "velocity_x",
    "Vy": "velocity_y",
    "Vz": "velocity_z",
    "vx": "velocity_x",
    "vy": "velocity_y",
    "vz": "velocity_z",
    "ux": "velocity_x",
    "uy": "velocity_y",
    "uz": "velocity_z",
    "b": "buoyancy",
    "c": "concentration",
}

# Dimension names seen in the wild -> schema dims.
DEFAULT_DIM_NAMES: dict[str, str] = {
    "t": "time",
    "Time": "time",
    "times": "time",
    "sample": "trajectory",
    "samples": "trajectory",
    "batch": "trajectory",
    "member": "trajectory",
    "ensemble": "trajectory",
    "traj": "trajectory",
    "X": "x",
    "Y": "y",
    "Z": "z",
    "lon": "x",
    "longitude": "x",
    "lat": "y",
    "latitude": "y",
    "nx": "x",
    "ny": "y",
    "nz": "z",
    "xc": "x",
    "yc": "y",
    "zc": "z",
}


@dataclass(frozen=True)
class NameMap:
    """Renames applied when opening a generic xarray file; extend it per call."""

    fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELD_NAMES))
    dims: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DIM_NAMES))

    def extend(self, fields: Mapping[str, str] | None = None, dims: Mapping[str, str] | None = None) -> "NameMap":
        """A new map with extra (or overriding) field and dimension renames."""
        return NameMap({**self.fields, **(fields or {})}, {**self.dims, **(dims or {})})
