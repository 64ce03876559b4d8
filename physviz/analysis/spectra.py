"""Isotropic and per-axis power spectra of fields, batched over every non-spatial dim."""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import xarray as xr

from physviz.analysis.fourier import axis_power, binned_power, binning, check_edges
from physviz.analysis.inputs import Data, as_frames, checked_dims, label, outer_coords, raise_if_nonfinite, select_fields, spacing
from physviz.errors import OptionError

NORMALIZATION = "sum over wavenumber bins equals mean(u**2) over the domain (Parseval)"
WAVENUMBER = "k = 2*pi/wavelength, in radians per unit of the spatial coordinates"


def power_spectrum(
    data: Data,
    dims: str | Sequence[str] | None = None,
    bins: int | Sequence[float] | None = None,
    per_axis: bool = False,
    fields: str | Iterable[Hashable] | None = None,
) -> Data:
    """Power spectrum E(k) of a field (DataArray) or of each field of a Dataset, over the spatial `dims`.

    Conventions: E in a bin is the energy of the Fourier modes whose |k| falls in it (a sum, not a
    density), normalised so that E summed over bins equals mean(u**2) over the grid; k is in physical
    units, k_i = 2*pi*m/L_i with L_i = n_i * dx_i from the coordinate spacing (index units without a
    coordinate). `dims` defaults to the x, y, z present; every other dim (trajectory, time, ...) is kept.
    `bins=None` uses shells of width dk = 2*pi/max(L) centred on m*dk (coordinate `wavenumber` = m*dk);
    an int gives that many equal bins from 0 to max|k|; a sequence gives bin edges (modes outside are
    left out, so Parseval then holds only over the range). Coords `wavenumber_lower/upper` and `n_modes`
    describe the bins. `per_axis=True` gives 1D spectra along each axis instead: a Dataset with one
    variable per axis ('x', 'y', ...) over dim `k_x`, `k_y`, ..., each summing to mean(u**2); for a
    Dataset input those variables gain a `field` dim. A Dataset gives a Dataset with a spectrum per
    field (all fields over the spatial dims, or those named in `fields`).
    """
    dims = checked_dims(data, "data", dims, fields)
    if per_axis and bins is not None:
        raise OptionError("bins= does not apply with per_axis=True (1D spectra use every rfft wavenumber).")
    edges = check_edges(bins)
    if isinstance(data, xr.DataArray):
        return _one(data, dims, edges, per_axis)
    names = select_fields(data, fields, dims)
    spectra = {name: _one(data[name], dims, edges, per_axis) for name in names}
    if not per_axis:
        return xr.Dataset(spectra, attrs={**data.attrs, "normalization": NORMALIZATION})
    by_axis = {}
    for d in dims:
        arrays = xr.broadcast(*(spectra[name][d] for name in names))
        by_axis[d] = xr.concat(arrays, dim="field", coords="minimal", compat="override").assign_coords(field=list(names))
    return xr.Dataset(by_axis, attrs={**data.attrs, "normalization": NORMALIZATION})


def _one(da: xr.DataArray, dims: tuple[str, ...], edges: tuple[float, ...] | int | None, per_axis: bool) -> Data:
    """Spectrum of one DataArray (isotropic) or a Dataset of its per-axis spectra."""
    frames, lead, lead_shape = as_frames(da, dims)
    shape = frames.shape[1:]
    lengths = tuple(n * spacing(da, d) for n, d in zip(shape, dims))
    coords = outer_coords(da, dims)
    if per_axis:
        out = {}
        for i, d in enumerate(dims):
            e = axis_power(frames, len(dims), i)
            k = 2 * np.pi / lengths[i] * np.arange(shape[i] // 2 + 1)
            out[d] = xr.DataArray(
                e.reshape(lead_shape + (e.shape[-1],)), dims=[*lead, f"k_{d}"],
                coords={**coords, f"k_{d}": (f"k_{d}", k, {"long_name": f"wavenumber along {d}", "convention": WAVENUMBER})},
                attrs={"long_name": f"1D power spectrum along {d}", "normalization": NORMALIZATION},
            )
        result: Data = xr.Dataset(out, attrs={"normalization": NORMALIZATION})
        if not all(np.isfinite(v.values).all() for v in out.values()):
            raise_if_nonfinite(da, label(da))
        return result
    b = binning(shape, lengths, edges if isinstance(edges, tuple) else None, edges if isinstance(edges, int) else None)
    e = binned_power(frames, len(dims), b)
    if not np.isfinite(e).all():
        raise_if_nonfinite(da, label(da))
    k = "wavenumber"
    return xr.DataArray(
        e.reshape(lead_shape + (b.n_bins,)), dims=[*lead, k], name=da.name,
        coords={
            **coords,
            k: (k, b.centre, {"long_name": "isotropic wavenumber |k| (bin centre)", "convention": WAVENUMBER}),
            "wavenumber_lower": (k, b.lower), "wavenumber_upper": (k, b.upper), "n_modes": (k, b.counts),
        },
        attrs={"long_name": "isotropic power spectrum", "normalization": NORMALIZATION},
    )
