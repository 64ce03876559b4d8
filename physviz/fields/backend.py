"""The xarray backend entry point: `xr.open_dataset(path, engine="physviz")`."""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from xarray.backends import BackendEntrypoint


class PhysvizBackendEntrypoint(BackendEntrypoint):
    """Opens The Well and PDEBench HDF5 files (and NetCDF/Zarr) in the physviz schema, lazily."""

    description = "The Well / PDEBench HDF5 fields in the physviz schema (lazy, via h5py)"
    url = "https://github.com/physviz/physviz"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "fields",
        "split",
        "nonfinite",
        "names",
        "field_names",
        "boundary_conditions",
        "allow_external",
        "missing_chunks",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        fields: Any = None,
        split: str = "train",
        nonfinite: str = "raise",
        names: Any = None,
        field_names: Any = None,
        boundary_conditions: Any = None,
        allow_external: bool = False,
        missing_chunks: str = "raise",
    ) -> Any:
        """Read metadata now; field data is read when indexed."""
        from physviz.errors import OptionError
        from physviz.fields.checks import check_content
        from physviz.fields.open import read_content

        if not isinstance(allow_external, bool):
            raise OptionError(f"allow_external={allow_external!r} must be True or False.")
        opts = {
            "fields": fields,
            "split": split,
            "nonfinite": nonfinite,
            "names": names,
            "field_names": field_names,
            "boundary_conditions": boundary_conditions,
            "allow_external": allow_external,
            "missing_chunks": missing_chunks,
        }
        content = read_content(os.fspath(filename_or_obj), opts)
        if drop_variables:
            drop = {drop_variables} if isinstance(drop_variables, str) else set(drop_variables)
            content.variables = {k: v for k, v in content.variables.items() if k not in drop}
        try:
            check_content(content, os.fspath(filename_or_obj))
        except BaseException:
            content.close()
            raise
        return content.to_dataset()

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """True for .hdf5/.h5 files in a layout physviz reads."""
        try:
            path = os.fspath(filename_or_obj)
        except TypeError:
            return False
        if not path.endswith((".hdf5", ".h5")) or not os.path.isfile(path):
            return False
        try:
            import h5py

            from physviz.fields.pdebench import layout_of
            from physviz.fields.well import is_well

            with h5py.File(path, "r") as f:
                return is_well(f) or layout_of(f) is not None
        except Exception:
            return False
