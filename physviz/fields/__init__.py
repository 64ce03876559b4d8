"""Fields as xarray: the schema, readers and writers (The Well, PDEBench, NetCDF/Zarr)."""
from __future__ import annotations

from typing import Any

_LAZY = {
    "open_fields": "physviz.fields.open",
    "to_well": "physviz.fields.well_writer",
    "write_stats": "physviz.fields.stats",
    "compute_stats": "physviz.fields.stats",
    "validate_dataset": "physviz.fields.schema",
    "NameMap": "physviz.fields.name_map",
    "describe": "physviz.fields.info",
    "taylor_green": "physviz.fields.samples",
    "sample_dataset": "physviz.fields.samples",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    """Import on first use, so `import physviz.fields` does not pull in xarray."""
    if name not in _LAZY:
        raise AttributeError(f"module 'physviz.fields' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
