"""Fields as xarray: the schema, readers and writers (The Well, PDEBench, NetCDF/Zarr)."""
from __future__ import annotations

from physviz._lazy import lazy_attributes

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


__getattr__, __dir__ = lazy_attributes("physviz.fields", globals(), _LAZY)
