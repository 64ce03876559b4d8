"""Data side of the views (numpy and xarray only): input checks, frame reads, color limits, downsampling, stats."""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from physviz.errors import OptionError, SchemaError, UnknownFieldError

SPATIAL = ("x", "y", "z")
MAX_PIXELS = 512  # longest side of an image sent to the browser; larger frames are block-averaged


def spatial_dims(obj: xr.Dataset | xr.DataArray) -> list[str]:
    """The spatial dims x, y, z present, in schema order."""
    return [d for d in SPATIAL if d in obj.dims]


def as_dataset(obj: Any, what: str) -> xr.Dataset:
    """A Dataset from a Dataset or a named DataArray; SchemaError otherwise."""
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=obj.name if obj.name is not None else "field")
    if not isinstance(obj, xr.Dataset):
        raise SchemaError(f"{what} must be an xarray Dataset (or DataArray), not {type(obj).__name__}.")
    return obj


def field_names(ds: xr.Dataset) -> list[str]:
    """Fields that can be shown as images: numeric variables over all spatial dims (at least 2 of them)."""
    spatial = spatial_dims(ds)
    return [
        str(n) for n, v in ds.data_vars.items()
        if len(spatial) >= 2 and all(d in v.dims for d in spatial) and v.dtype.kind in "fiub"
    ]


def check_fields(ds: xr.Dataset, what: str) -> list[str]:
    """The image fields of `ds`; SchemaError naming the problem when there are none."""
    spatial = spatial_dims(ds)
    if len(spatial) < 2:
        raise SchemaError(
            f"{what} has spatial dims {spatial}; the views show 2D or 3D fields (dims x, y and optionally z)."
        )
    names = field_names(ds)
    if not names:
        raise SchemaError(f"{what} has no numeric field over {spatial}; its variables are {list(map(str, ds.data_vars))}.")
    for d in ("time", "trajectory", *spatial):
        if d in ds.dims and ds.sizes[d] == 0:
            raise SchemaError(f"{what} is empty: it has no {d!r} entries.")
    return names


def pick_field(names: Sequence[str], field: str | None, what: str) -> str:
    """`field` if it is one of `names`, else the first; UnknownFieldError for a missing one."""
    if field is None:
        return names[0]
    if field not in names:
        raise UnknownFieldError(f"{what} has no field {field!r}; choose one of {list(names)}.")
    return field


def align_rollout(truth: Any, prediction: Any) -> tuple[xr.Dataset, xr.Dataset, list[str]]:
    """Truth and prediction on one grid and their common time steps, with the fields both hold."""
    truth, prediction = as_dataset(truth, "truth"), as_dataset(prediction, "prediction")
    if "time" in prediction.dims and prediction.sizes["time"] == 0:
        raise SchemaError("the rollout is empty: the prediction has no time steps.")
    t_fields = check_fields(truth, "truth")
    p_fields = check_fields(prediction, "the prediction")
    common = [f for f in p_fields if f in t_fields]
    if not common:
        raise UnknownFieldError(
            f"the prediction's fields {p_fields} and the truth's fields {t_fields} have none in common."
        )
    ts, ps = spatial_dims(truth), spatial_dims(prediction)
    if ts != ps:
        raise SchemaError(f"truth has spatial dims {ts} but the prediction has {ps}; they must be on one grid.")
    for d in ts:
        if truth.sizes[d] != prediction.sizes[d]:
            raise SchemaError(
                f"truth has {truth.sizes[d]} points along {d!r} but the prediction has {prediction.sizes[d]}; "
                "they must be on one grid."
            )
        if d in truth.coords and d in prediction.coords:
            a = np.asarray(truth[d].values, np.float64)
            b = np.asarray(prediction[d].values, np.float64)
            scale = max(float(np.max(np.abs(a))), 1e-30)
            if not np.allclose(a, b, rtol=1e-6, atol=1e-6 * scale):
                raise SchemaError(f"truth and prediction have different {d!r} coordinates; they must be on one grid.")
    for f in common:
        if ("time" in truth[f].dims) != ("time" in prediction[f].dims):
            raise SchemaError(f"field {f!r} has a time dim in only one of truth and prediction.")
    if "time" not in truth.dims or "time" not in prediction.dims:
        raise SchemaError("truth and prediction need a 'time' dim to be compared frame by frame.")
    if "trajectory" in prediction.dims and "trajectory" in truth.dims and prediction.sizes["trajectory"] != truth.sizes["trajectory"]:
        raise SchemaError(
            f"truth has {truth.sizes['trajectory']} trajectories but the prediction has {prediction.sizes['trajectory']}."
        )
    if "trajectory" in prediction.dims and "trajectory" not in truth.dims:
        raise SchemaError("the prediction has a 'trajectory' dim but the truth has none; select one with .isel(trajectory=i).")
    prediction = prediction.assign_coords({d: truth[d].variable for d in ts if d in truth.coords})
    if "time" in truth.coords and "time" in prediction.coords:
        t_time = np.asarray(truth["time"].values, np.float64)
        p_time = np.asarray(prediction["time"].values, np.float64)
        idx_t, idx_p = _match_times(t_time, p_time)
        if not len(idx_t):
            raise SchemaError(
                f"the prediction's times ({p_time[0]:.6g} .. {p_time[-1]:.6g}) and the truth's "
                f"({t_time[0]:.6g} .. {t_time[-1]:.6g}) have no step in common, so there is nothing to compare."
            )
        truth, prediction = truth.isel(time=idx_t), prediction.isel(time=idx_p)
    else:
        n = min(truth.sizes["time"], prediction.sizes["time"])
        truth, prediction = truth.isel(time=slice(0, n)), prediction.isel(time=slice(0, n))
    return truth[common], prediction[common], common


def _match_times(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices into `a` and `b` of the times they share (to a relative tolerance)."""
    if not len(a) or not len(b):
        return np.array([], int), np.array([], int)
    tol = 1e-6 * max(float(np.max(np.abs(a))), float(np.max(np.abs(np.diff(a)))) if len(a) > 1 else 1.0, 1e-12)
    pos = np.clip(np.searchsorted(a, b), 1, max(len(a) - 1, 1)) if len(a) > 1 else np.zeros(len(b), int)
    best = pos.copy()
    if len(a) > 1:
        left = pos - 1
        best = np.where(np.abs(a[left] - b) <= np.abs(a[pos] - b), left, pos)
    ok = np.abs(a[best] - b) <= tol
    return best[ok], np.nonzero(ok)[0]


@dataclass
class Slice:
    """How a frame becomes a 2D image: the two image axes and, for 3D, the sliced axis and its index."""

    axes: tuple[str, str]
    axis: str | None = None
    index: int = 0


def image_axes(dims: Sequence[str], axis: str | None) -> tuple[str, str]:
    """The two image axes (horizontal, vertical) left when `axis` is sliced away."""
    spatial = [d for d in SPATIAL if d in dims]
    if len(spatial) == 2:
        return spatial[0], spatial[1]
    if axis not in spatial:
        raise OptionError(f"slice axis {axis!r} is not one of {spatial}.")
    rest = [d for d in spatial if d != axis]
    return rest[0], rest[1]


def read_frame(
    da: xr.DataArray, time: int | None, trajectory: int | None, sl: Slice,
) -> np.ndarray:
    """One 2D frame of `da` as a float array indexed [horizontal, vertical]; reads only that frame."""
    index: dict[Hashable, Any] = {}
    if "trajectory" in da.dims:
        index["trajectory"] = trajectory or 0
    if "time" in da.dims and time is not None:
        index["time"] = time
    if sl.axis is not None and sl.axis in da.dims:
        index[sl.axis] = sl.index
    frame = da.isel(index) if index else da
    values = np.asarray(frame.transpose(*sl.axes).values)
    if values.dtype.kind != "f":
        values = values.astype(np.float32)
    return values


def block_factor(shape: tuple[int, int], max_pixels: int = MAX_PIXELS) -> int:
    """Integer downsampling factor so that the longest side is at most `max_pixels`."""
    return max(1, int(np.ceil(max(shape) / max(1, max_pixels))))


def to_image(frame: np.ndarray, factor: int) -> np.ndarray:
    """A [h, v] frame as a Bokeh image (rows along v, bottom first), float32, block-averaged by `factor`."""
    if factor > 1:
        h, v = (frame.shape[0] // factor) * factor, (frame.shape[1] // factor) * factor
        f = frame[:h, :v]
        if factor <= 4:  # strided sums are ten times faster than a mean over reshaped axes
            out = np.zeros((h // factor, v // factor), np.float32)
            for i in range(factor):
                for j in range(factor):
                    out += f[i::factor, j::factor]
            frame = out * np.float32(1.0 / factor**2)
        else:
            frame = f.reshape(h // factor, factor, v).sum(axis=1).reshape(h // factor, v // factor, factor).sum(axis=2)
            frame = frame / factor**2
    return np.ascontiguousarray(frame.T, dtype=np.float32)


def bounds(da: xr.DataArray, axes: tuple[str, str], shape: tuple[int, int], factor: int) -> tuple[float, float, float, float]:
    """Image bounds (left, bottom, right, top) from cell-centred coordinates, covering the kept cells."""
    out = []
    for d, n in zip(axes, shape):
        kept = (n // factor) * factor if factor > 1 else n
        if d in da.coords and n > 1:
            c = np.asarray(da[d].values, np.float64)
            step = (c[-1] - c[0]) / (n - 1)
            lo, hi = c[0] - step / 2, c[0] + step * (kept - 0.5)
        elif d in da.coords:
            c = float(np.asarray(da[d].values, np.float64)[0])
            lo, hi = c - 0.5, c + 0.5
        else:
            lo, hi = -0.5, kept - 0.5
        out.append((min(lo, hi), max(lo, hi)))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def _sample_indices(n: int, k: int) -> np.ndarray:
    """Up to k indices spread evenly over range(n)."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int)) if n else np.array([], int)


def sample_values(da: xr.DataArray, frames: int = 12, pixels: int = 128) -> np.ndarray:
    """Values of a few frames (evenly spread over time and trajectory), spatially strided, as a flat array."""
    index: dict[Hashable, Any] = {}
    for d, k in (("trajectory", 4), ("time", frames)):
        if d in da.dims:
            index[d] = _sample_indices(da.sizes[d], k)
    for d in SPATIAL:
        if d in da.dims:
            step = max(1, da.sizes[d] // pixels)
            index[d] = slice(None, None, step)
    return np.asarray(da.isel(index).values, dtype=np.float64).ravel()


def robust_limits(values: np.ndarray | Sequence[np.ndarray], q: float = 1.0) -> tuple[float, float]:
    """Color limits from the q-th and (100-q)-th percentiles of the finite values, never empty."""
    if isinstance(values, (list, tuple)):
        values = np.concatenate([np.ravel(v) for v in values]) if values else np.array([])
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.percentile(v, [q, 100 - q]))
    if not hi > lo:
        lo, hi = float(v.min()), float(v.max())
    if not hi > lo:
        pad = max(abs(lo) * 0.05, 1e-12)
        lo, hi = lo - pad, hi + pad
    return lo, hi


def symmetric_limit(values: np.ndarray | Sequence[np.ndarray], q: float = 99.5) -> float:
    """Half-width of a symmetric color range from the q-th percentile of |values|, never zero."""
    if isinstance(values, (list, tuple)):
        values = np.concatenate([np.ravel(v) for v in values]) if values else np.array([])
    v = np.abs(np.asarray(values, np.float64))
    v = v[np.isfinite(v)]
    if not v.size:
        return 1.0
    m = float(np.percentile(v, q))
    if not m > 0:
        m = float(v.max())
    return m if m > 0 else 1e-12


@dataclass
class FrameStats:
    """Statistics of one frame."""

    min: float
    max: float
    mean: float
    std: float
    nonfinite: int

    def markdown(self, name: str = "") -> str:
        """One Markdown line of the statistics."""
        head = f"**{name}** " if name else ""
        bad = f" · non-finite {self.nonfinite}" if self.nonfinite else ""
        return (f"{head}min {self.min:.4g} · max {self.max:.4g} · mean {self.mean:.4g} · std {self.std:.4g}{bad}")


def frame_stats(frame: np.ndarray) -> FrameStats:
    """Min, max, mean, std and count of NaN/inf of a frame (over its finite values)."""
    finite = np.isfinite(frame)
    n_bad = int(frame.size - np.count_nonzero(finite))
    v = frame[finite] if n_bad else frame
    if not v.size:
        return FrameStats(float("nan"), float("nan"), float("nan"), float("nan"), n_bad)
    v = v.ravel()
    mean = float(v.mean(dtype=np.float64))
    if v.dtype == np.float32:  # one pass in BLAS, shifted by the mean so the variance does not cancel
        d = v - np.float32(mean)
        var = float(np.dot(d, d)) / v.size
    else:
        var = float(np.var(v, dtype=np.float64))
    return FrameStats(float(v.min()), float(v.max()), mean, float(np.sqrt(max(var, 0.0))), n_bad)


def time_labels(ds: xr.Dataset) -> list[str]:
    """A label per time step: 't = value units' from the time coordinate and its `units` attr (or the step number)."""
    n = ds.sizes.get("time", 1)
    if "time" in ds.coords:
        units = _units(ds["time"])
        tail = f" {units}" if units else ""
        return [f"t = {float(t):.4g}{tail}" for t in np.asarray(ds["time"].values, np.float64)]
    return [f"step {i}" for i in range(n)]


# -- what a picture says: labels with units, color scales ---------------------------------------------------
SIGNED_NAMES = ("vorticity", "velocity", "momentum")  # fields that take both signs wherever there is flow
SIGNED_FRACTION = 0.1  # both signs "substantial": the smaller side reaches this fraction of the larger


def _units(obj: xr.DataArray) -> str:
    """The `units` attr of a DataArray or coordinate ('' without one, or for '1' and 'dimensionless')."""
    units = str(obj.attrs.get("units", "") or "").strip()
    return "" if units in ("1", "dimensionless") else units


def value_label(da: xr.DataArray) -> str:
    """What a field's colorbar says: its `long_name` (else its name) and `[units]` from the attrs."""
    name = str(da.attrs.get("long_name") or da.name or "value")
    units = _units(da)
    return f"{name} [{units}]" if units else name


def axis_labels(obj: xr.DataArray | xr.Dataset, axes: Sequence[str]) -> tuple[str, ...]:
    """Axis titles of the image axes: the dim name and `[units]` of its coordinate where it has them."""
    out = []
    for d in axes:
        units = _units(obj[d]) if d in obj.coords else ""
        out.append(f"{d} [{units}]" if units else str(d))
    return tuple(out)


@dataclass(frozen=True)
class ColorScale:
    """Color limits of a field (iterates as the pair (lo, hi)), whether it is signed, and the data's range.

    A signed field has limits symmetric about zero and a diverging colormap; values beyond the limits
    (`data_min < lo` or `data_max > hi`) are clipped, which the views show on the colorbar.
    """

    lo: float
    hi: float
    signed: bool = False
    data_min: float = float("nan")
    data_max: float = float("nan")
    label: str = ""

    def __iter__(self) -> Any:
        return iter((self.lo, self.hi))

    def __getitem__(self, i: int) -> float:
        return (self.lo, self.hi)[i]

    def __len__(self) -> int:
        return 2

    @property
    def clipped_low(self) -> bool:
        """Some values lie below the lower limit."""
        return bool(self.data_min < self.lo)

    @property
    def clipped_high(self) -> bool:
        """Some values lie above the upper limit."""
        return bool(self.data_max > self.hi)


def is_signed(lo: float, hi: float, name: str = "") -> bool:
    """Whether a field with robust range [lo, hi] is signed: both signs substantial, or a known signed field crossing 0."""
    if not (lo < 0 < hi):
        return False
    if min(-lo, hi) >= SIGNED_FRACTION * max(-lo, hi):
        return True
    base = str(name).lower()
    return any(base == n or base.startswith(n + "_") for n in SIGNED_NAMES)


def color_scale(values: np.ndarray | Sequence[np.ndarray], name: str = "", label: str = "", q: float = 1.0) -> ColorScale:
    """Robust color limits of `values` (percentiles q, 100-q), symmetric about 0 when the field is signed."""
    if isinstance(values, (list, tuple)):
        values = np.concatenate([np.ravel(v) for v in values]) if values else np.array([])
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    lo, hi = robust_limits(v, q)
    vmin, vmax = (float(v.min()), float(v.max())) if v.size else (lo, hi)
    signed = is_signed(lo, hi, name)
    if signed:
        m = max(-lo, hi)
        lo, hi = -m, m
    return ColorScale(lo, hi, signed, vmin, vmax, label or name)


FIELD_PERCENTILE = 0.2  # a field's color limits leave out this percent of the sampled values on each side


def field_scale(da: xr.DataArray, q: float = FIELD_PERCENTILE) -> ColorScale:
    """The color scale of a field from a sample of its frames (name, units and long name from its attrs)."""
    return color_scale(sample_values(da), str(da.name or ""), value_label(da), q)
