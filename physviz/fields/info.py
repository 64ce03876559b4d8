"""`describe`: a plain summary of what a field file holds (for `physviz info`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def describe(path: str | os.PathLike[str], **options: Any) -> dict[str, Any]:
    """Format, dims, fields, boundary conditions, parameters and size of a file, reading metadata only."""
    from physviz.fields.open import open_fields

    p = Path(path)
    with open_fields(p, **options) as ds:
        fields = {
            str(k): {"dims": list(v.dims), "shape": list(v.shape), "dtype": str(v.dtype)} for k, v in ds.data_vars.items()
        }
        coords = {}
        for k, c in ds.coords.items():
            values = c.values
            entry: dict[str, Any] = {"size": int(c.size)}
            if c.size and values.dtype.kind in "fiu":
                entry.update(min=float(values.min()), max=float(values.max()))
            coords[str(k)] = entry
        source = ds.attrs.get("source", {})
        return {
            "path": str(p),
            "format": source.get("format", "unknown"),
            "dataset_name": ds.attrs.get("dataset_name", ""),
            "dims": {str(k): int(v) for k, v in ds.sizes.items()},
            "coords": coords,
            "fields": fields,
            "boundary_conditions": ds.attrs.get("boundary_conditions", {}),
            "simulation_parameters": ds.attrs.get("simulation_parameters", {}),
            "files": len(source.get("files", [])) or 1,
            "size_bytes": _size_of(p),
        }
