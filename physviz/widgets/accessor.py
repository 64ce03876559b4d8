"""The `ds.physviz` accessor (hvplot style): `ds.physviz.explore()`, `pred.physviz.scrub(truth)`, `pred.physviz.spectrum(truth)`.

Registering it imports xarray only; Panel and HoloViews load when a view is first made.
"""
from __future__ import annotations

from typing import Any

import xarray as xr


class PhysvizAccessor:
    """Views of this Dataset (or DataArray): explore it, or compare it as a prediction with the truth."""

    def __init__(self, obj: xr.Dataset | xr.DataArray) -> None:
        self._obj = obj

    def explore(self, **kw: Any) -> Any:
        """A FieldExplorer of this dataset."""
        from physviz.widgets.explorer import FieldExplorer

        return FieldExplorer(self._obj, **kw)

    def scrub(self, truth: Any, **kw: Any) -> Any:
        """A RolloutScrubber of this prediction against `truth`."""
        from physviz.widgets.scrubber import RolloutScrubber

        return RolloutScrubber(truth, self._obj, **kw)

    def spectrum(self, truth: Any, **kw: Any) -> Any:
        """A SpectrumComparer of this prediction against `truth`."""
        from physviz.widgets.spectrum import SpectrumComparer

        return SpectrumComparer(truth, self._obj, **kw)


def register() -> None:
    """Register `.physviz` on xarray Datasets and DataArrays (once)."""
    if "physviz" not in xr.Dataset.__dict__:
        xr.register_dataset_accessor("physviz")(PhysvizAccessor)
    if "physviz" not in xr.DataArray.__dict__:
        xr.register_dataarray_accessor("physviz")(PhysvizAccessor)


register()
