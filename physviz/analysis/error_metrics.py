"""Error metrics of a prediction against the truth, with The Well's definitions (per field and time step).

Every metric reduces over the spatial dims only (x, y, z by default) and keeps every other dim
(trajectory, time, ...). Inputs are DataArrays or Datasets aligned by coordinates as `pred - truth`
would be: spatial grids must match, other dims are inner-joined. A DataArray gives a DataArray; a
Dataset gives a Dataset with one variable per field; `metrics()` gives a Dataset with one variable per
metric (with a `field` dim for Dataset inputs). Sums run in float64 whatever the input dtype.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from functools import cached_property

import numpy as np
import xarray as xr

from physviz.analysis.fourier import Binning, binned_power, binning, check_edges
from physviz.analysis.inputs import (
    Data,
    align_pair,
    as_frames,
    check_data,
    checked_dims,
    label,
    outer_coords,
    raise_if_nonfinite,
    select_fields,
)
from physviz.errors import OptionError

EPS = 1e-7
_CHUNK = 1 << 16  # values per float64 chunk of the moment sums

DEFINITIONS = {
    "mse": "mean(res**2)",
    "rmse": "sqrt(mean(res**2))",
    "nmse": "mean(res**2) / (mean(truth**2) + eps)",
    "nrmse": "sqrt(mean(res**2) / (mean(truth**2) + eps))",
    "vmse": "mean(res**2) / (std(truth, ddof=1)**2 + eps)",
    "vrmse": "sqrt(mean(res**2) / (std(truth, ddof=1)**2 + eps))",
    "mpp_nrmse": "sqrt(mean(res**2) / (eps + mean(truth**2))) (MPP's validation NRMSE; equals nrmse)",
    "binned_spectral_mse": "sum over the |k| bin of |FFT(res)|**2 / N**2 (bins sum to mse)",
    "binned_spectral_nmse": "binned_spectral_mse / (same sum for the truth + eps)",
}
METRIC_NAMES = tuple(DEFINITIONS)
DEFAULT_NAMES = ("vrmse", "nrmse", "rmse", "mse", "binned_spectral_mse", "binned_spectral_nmse")
SPECTRAL = ("binned_spectral_mse", "binned_spectral_nmse")


def well_spectral_edges(shape: tuple[int, ...]) -> tuple[float, ...]:
    """The Well's 3 default |k| bins (index units): logspace(2*pi/max(n), pi*sqrt(ndim)) with 4 edges, first set to 0."""
    e = np.logspace(np.log10(2 * np.pi / max(shape)), np.log10(np.pi * np.sqrt(len(shape)) + 1e-6), 4)
    e[0] = 0.0
    return tuple(float(v) for v in e)


class _Pair:
    """One field of pred and truth as frames (B, *spatial), with each float64 reduction computed once."""

    def __init__(self, pred: np.ndarray, truth: np.ndarray, edges: tuple[float, ...] | None) -> None:
        self.pred, self.truth, self.edges = pred, truth, edges
        self.shape = truth.shape
        self.size = int(np.prod(truth.shape[1:]))

    @cached_property
    def moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sum of res**2, sum of truth**2 and sum of (truth - mean)**2 per frame, in float64 chunks that stay in cache."""
        b, m = self.shape[0], self.size
        pred, truth = self.pred.reshape(b, m), self.truth.reshape(b, m)
        out = np.empty((3, b))
        rows = max(1, _CHUNK // max(m, 1))
        for start in range(0, b, rows):
            s = slice(start, start + rows)
            t = truth[s].astype(np.float64)
            r = pred[s] - t
            out[0, s] = np.einsum("ij,ij->i", r, r)
            out[1, s] = np.einsum("ij,ij->i", t, t)
            t -= t.mean(axis=1, keepdims=True)
            out[2, s] = np.einsum("ij,ij->i", t, t)
        return out[0], out[1], out[2]

    @property
    def mse(self) -> np.ndarray:
        return self.moments[0] / self.size

    @property
    def mean_sq(self) -> np.ndarray:
        return self.moments[1] / self.size

    @property
    def var(self) -> np.ndarray:
        return self.moments[2] / (self.size - 1)

    @cached_property
    def bins(self) -> Binning:
        shape = self.shape[1:]
        return binning(shape, tuple(float(n) for n in shape), self.edges or well_spectral_edges(shape))

    @cached_property
    def spectral_res(self) -> np.ndarray:
        return binned_power(np.subtract(self.pred, self.truth, dtype=np.float64), len(self.shape) - 1, self.bins)

    @cached_property
    def spectral_truth(self) -> np.ndarray:
        return binned_power(self.truth.astype(np.float64, copy=False), len(self.shape) - 1, self.bins)


_FORMULAS: dict[str, Callable[[_Pair, float], np.ndarray]] = {
    "mse": lambda p, eps: p.mse,
    "rmse": lambda p, eps: np.sqrt(p.mse),
    "nmse": lambda p, eps: p.mse / (p.mean_sq + eps),
    "nrmse": lambda p, eps: np.sqrt(p.mse / (p.mean_sq + eps)),
    "vmse": lambda p, eps: p.mse / (p.var + eps),
    "vrmse": lambda p, eps: np.sqrt(p.mse / (p.var + eps)),
    "mpp_nrmse": lambda p, eps: np.sqrt(p.mse / (eps + p.mean_sq)),
    "binned_spectral_mse": lambda p, eps: p.spectral_res,
    "binned_spectral_nmse": lambda p, eps: p.spectral_res / (p.spectral_truth + eps),
}


def vrmse_array(pred: np.ndarray, truth: np.ndarray, n_spatial: int, eps: float = EPS) -> np.ndarray:
    """VRMSE over the last `n_spatial` axes of arrays (..., *spatial), one value per leading index (float64).

    The formula of `vrmse` on DataArrays: sqrt(mean(res**2) / (var(truth, ddof=1) + eps)).
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape or not 1 <= n_spatial <= truth.ndim:
        raise OptionError(f"vrmse_array takes pred and truth of one shape with 1 to {truth.ndim} spatial axes; "
                          f"got {pred.shape} and {truth.shape} with n_spatial={n_spatial}.")
    lead = truth.shape[: truth.ndim - n_spatial]
    spatial = truth.shape[truth.ndim - n_spatial:]
    pair = _Pair(pred.reshape(-1, *spatial), truth.reshape(-1, *spatial), None)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return _FORMULAS["vrmse"](pair, eps).reshape(lead)


def _check_names(names: str | Sequence[str]) -> tuple[str, ...]:
    """Metric names as a tuple; OptionError for an unknown one."""
    chosen = (names,) if isinstance(names, str) else tuple(names)
    if not chosen:
        raise OptionError(f"names= is empty; choose from {METRIC_NAMES}.")
    for name in chosen:
        if name not in _FORMULAS:
            raise OptionError(f"unknown metric {name!r}; choose from {METRIC_NAMES}.")
    return chosen


def _field_metrics(
    pred: xr.DataArray, truth: xr.DataArray, dims: tuple[str, ...], names: tuple[str, ...], eps: float,
    edges: tuple[float, ...] | None, what: str,
) -> dict[str, xr.DataArray]:
    """The metrics of one field, each a DataArray over the non-spatial dims (plus `wavenumber_bin`)."""
    p, lead, lead_shape = as_frames(pred.transpose(*truth.dims), dims, keep_float=True)
    t, _, _ = as_frames(truth, dims, keep_float=True)
    pair = _Pair(p, t, edges)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        values = {name: _FORMULAS[name](pair, eps) for name in names}
    if not all(np.isfinite(v).all() for v in values.values()):
        raise_if_nonfinite(pred, f"pred {what}")
        raise_if_nonfinite(truth, f"truth {what}")
    coords = outer_coords(truth, dims)
    out = {}
    for name, v in values.items():
        attrs = {"metric": name, "definition": DEFINITIONS[name], "eps": eps, "reduced_dims": list(dims)}
        if name in SPECTRAL:
            b = pair.bins
            out[name] = xr.DataArray(
                v.reshape(lead_shape + (b.n_bins,)), dims=[*lead, "wavenumber_bin"], name=truth.name, attrs=attrs,
                coords={
                    **coords, "wavenumber_bin": np.arange(b.n_bins),
                    "wavenumber_lower": ("wavenumber_bin", b.lower, {"units": "radians per grid cell"}),
                    "wavenumber_upper": ("wavenumber_bin", b.upper, {"units": "radians per grid cell"}),
                },
            )
        else:
            out[name] = xr.DataArray(v.reshape(lead_shape), dims=lead, coords=coords, name=truth.name, attrs=attrs)
    return out


def _evaluate(
    pred: Data, truth: Data, names: str | Sequence[str], dims: str | Sequence[str] | None,
    fields: str | Iterable[Hashable] | None, eps: float, bins: Sequence[float] | None,
) -> dict[str, Data]:
    """Each metric of `names`: a DataArray (DataArray inputs) or a Dataset per field (Dataset inputs)."""
    names = _check_names(names)
    check_data(pred, "pred")
    dims = checked_dims(truth, "truth", dims, fields)
    edges = check_edges(bins)
    if isinstance(edges, int):
        raise OptionError("bins= for binned spectral metrics takes bin edges (radians per grid cell), not a count.")
    chosen = select_fields(truth, fields, dims) if isinstance(truth, xr.Dataset) else None
    pred, truth = align_pair(pred, truth, dims, chosen)
    if isinstance(truth, xr.DataArray):
        return _field_metrics(pred, truth, dims, names, eps, edges, label(truth))
    per_field = {f: _field_metrics(pred[f], truth[f], dims, names, eps, edges, f"field {f!r}") for f in chosen}
    return {name: xr.Dataset({f: per_field[f][name] for f in chosen}, attrs={"metric": name, "definition": DEFINITIONS[name]})
            for name in names}


def metrics(
    pred: Data, truth: Data, names: str | Sequence[str] = DEFAULT_NAMES, dims: str | Sequence[str] | None = None,
    fields: str | Iterable[Hashable] | None = None, eps: float = EPS, spectral_bins: Sequence[float] | None = None,
) -> xr.Dataset:
    """Several metrics at once: a Dataset with one variable per metric name, with a `field` dim for Dataset inputs."""
    results = _evaluate(pred, truth, names, dims, fields, eps, spectral_bins)
    out = {}
    for name, r in results.items():
        if isinstance(r, xr.Dataset):
            r = r.to_dataarray(dim="field")
        out[name] = r.rename(name).assign_attrs(metric=name, definition=DEFINITIONS[name], eps=eps)
    return xr.Dataset(out)


def _single(name: str) -> Callable[..., Data]:
    """The public function of one metric."""

    def metric(
        pred: Data, truth: Data, dims: str | Sequence[str] | None = None,
        fields: str | Iterable[Hashable] | None = None, eps: float = EPS,
    ) -> Data:
        return _evaluate(pred, truth, (name,), dims, fields, eps, None)[name]

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = f"{name.upper()} per field and per non-spatial index: {DEFINITIONS[name]}."
    return metric


def _spectral(name: str) -> Callable[..., Data]:
    """The public function of one binned spectral metric (extra `bins` edges option)."""

    def metric(
        pred: Data, truth: Data, dims: str | Sequence[str] | None = None,
        fields: str | Iterable[Hashable] | None = None, eps: float = EPS, bins: Sequence[float] | None = None,
    ) -> Data:
        return _evaluate(pred, truth, (name,), dims, fields, eps, bins)[name]

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = (
        f"{name} over |k| bins (dim `wavenumber_bin`; The Well's 3 log bins in radians per grid cell unless "
        f"`bins` gives edges): {DEFINITIONS[name]}."
    )
    return metric


mse = _single("mse")
rmse = _single("rmse")
nmse = _single("nmse")
nrmse = _single("nrmse")
vmse = _single("vmse")
vrmse = _single("vrmse")
mpp_nrmse = _single("mpp_nrmse")
binned_spectral_mse = _spectral("binned_spectral_mse")
binned_spectral_nmse = _spectral("binned_spectral_nmse")
