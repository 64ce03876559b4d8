"""Windows of (context frames, next frame) read lazily from Well HDF5 files or an xarray Dataset.

A `WellSource` indexes the files of one dataset split (metadata only) and reads, per
window, just the frames of that window with h5py hyperslabs: ``field[traj, t0:t1:stride]``.
An `XarraySource` does the same on an in-memory (or lazily opened) xarray Dataset, for
in-notebook fine-tuning. Both return numpy arrays: ``x`` (T, C, *spatial) and ``y`` (C, *spatial).
No torch here.
"""
from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physviz.errors import PhysvizError
from physviz.fields.schema import SPATIAL_DIMS, component_names, periodic_flags
from physviz.fields.well import split_files
from physviz.train.config import DatasetSpec, TrainConfigError


# -- locating files ------------------------------------------------------------------
def stats_for(root: Path, files: list[Path]) -> dict[str, Any] | None:
    """The stats.yaml of a dataset (root or the files' folder), or None."""
    import yaml

    for cand in (root / "stats.yaml", *(f.parent / "stats.yaml" for f in files[:1])):
        if cand.is_file():
            try:
                data = yaml.safe_load(cand.read_text())
            except yaml.YAMLError:
                return None
            return data if isinstance(data, dict) else None
    return None


# -- per-file metadata -----------------------------------------------------------------------
@dataclass
class ChannelRead:
    """Where one channel lives in a Well file and how it is laid out."""

    dataset: str  # HDF5 path of the field
    base: str  # core field name (stats.yaml key)
    order: int
    comp: tuple[int, ...]  # component index (tensor fields)
    sample_varying: bool
    time_varying: bool
    stored_spatial: tuple[int, ...]  # stored spatial shape (1 where not dim_varying)


@dataclass
class FileInfo:
    """Metadata of one Well file: trajectories, steps, grid, channels, boundary conditions."""

    path: str
    dataset_name: str
    n_traj: int
    n_time: int
    spatial: tuple[int, ...]
    channels: dict[str, ChannelRead]
    bcs: dict[str, Any]


def read_file_info(path: str | os.PathLike[str]) -> FileInfo:
    """Read a Well file's metadata (no field data); raise TrainConfigError if it is not a Well file."""
    import h5py

    from physviz.fields.h5util import as_str
    from physviz.fields.well import boundary_conditions, is_well, read_header

    path = str(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise TrainConfigError(f"Data file {path!r} cannot be opened as HDF5 ({exc}).") from None
    with f:
        if not is_well(f):
            raise TrainConfigError(
                f"Data file {path!r} is not in The Well's layout (no dimensions/ and t0_fields/ groups); "
                "convert it with physviz.to_well."
            )
        try:
            head = read_header(path, f)
        except PhysvizError as exc:
            raise TrainConfigError(f"Data file {exc}") from None
        ndim = len(head.spatial)
        spatial = tuple(head.sizes)
        channels: dict[str, ChannelRead] = {}
        for wf in head.fields:
            dset = wf.dataset
            mid = tuple(int(s) for s in dset.shape[wf.lead: dset.ndim - wf.order])
            if len(mid) == sum(wf.dim_varying) and len(mid) != ndim:  # non-varying axes omitted
                it = iter(mid)
                mid = tuple(next(it) if v else 1 for v in wf.dim_varying)
            if len(mid) != ndim or any(m not in (1, s) for m, s in zip(mid, spatial)):
                raise TrainConfigError(
                    f"Data file {path!r}: field {wf.name!r} has shape {tuple(dset.shape)}, which does not fit the grid {spatial}."
                )
            for ch, comp in zip(component_names(wf.name, wf.order, head.names),
                                itertools.product(range(ndim), repeat=wf.order)):
                channels[ch] = ChannelRead(dset.name, wf.name, wf.order, tuple(comp), wf.sample_varying,
                                           wf.time_varying, mid)
        try:
            bcs = boundary_conditions(path, f, head.spatial, head.names)
        except Exception as exc:  # malformed masks
            raise TrainConfigError(f"Data file {path!r}: its boundary_conditions cannot be read ({exc}).") from None
        return FileInfo(path, as_str(f.attrs.get("dataset_name", "")), int(head.n_trajectories or 1), head.n_time,
                        spatial, channels, bcs)


# -- the common interface ---------------------------------------------------------------------
@dataclass
class SourceInfo:
    """What the loop needs to know about a source."""

    name: str
    channels: list[str]
    spatial: tuple[int, ...]
    periodic: tuple[int, ...]
    n_steps_input: int
    n_windows: int
    std: list[float] | None = None  # per-channel scale for the loss (stats.yaml std)
    family: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    boundary_conditions: dict[str, Any] | None = None  # axis -> 'periodic'|'wall'|'open' or [lower, upper]

    @property
    def n_spatial_dims(self) -> int:
        return len(self.spatial)

    def tokens_per_sample(self, patch: int) -> int:
        """Tokens of one window: frames x patches (a 2D window in a 3D model is one patch thick)."""
        return self.n_steps_input * math.prod(max(1, -(-s // patch)) for s in self.spatial)


class WellSource:
    """Windows over the Well files of one dataset split, read frame-by-frame with h5py."""

    def __init__(self, files: list[Path], infos: list[FileInfo], channels: list[str], n_steps_input: int,
                 dt_stride: int, name: str, std: list[float] | None = None, family: str | None = None,
                 n_out: int = 1) -> None:
        self.files = [str(f) for f in files]
        self.infos = infos
        self.channels = list(channels)
        self.n_in = int(n_steps_input)
        self.n_out = int(n_out)
        self.stride = int(dt_stride)
        span = (self.n_in + self.n_out - 1) * self.stride  # frames after the first one of a window
        self.per_traj = [max(0, i.n_time - span) for i in infos]
        counts = [i.n_traj * w for i, w in zip(infos, self.per_traj)]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        first = infos[0]
        self.info = SourceInfo(name, self.channels, first.spatial, periodic_flags(first.bcs, SPATIAL_DIMS[:len(first.spatial)]),
                               self.n_in, int(self.offsets[-1]), std, family)
        self.info.boundary_conditions = dict(first.bcs or {})
        self._handles: dict[int, Any] = {}

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"] = {}  # h5py handles do not cross processes; each worker opens its own
        return state

    def _file(self, k: int) -> Any:
        h = self._handles.get(k)
        if h is None:
            import h5py

            h = self._handles[k] = h5py.File(self.files[k], "r")
        return h

    def locate(self, i: int) -> tuple[int, int, int]:
        """(file, trajectory, first frame) of window i."""
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} outside 0..{len(self) - 1}")
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        local = i - int(self.offsets[k])
        traj, t0 = divmod(local, self.per_traj[k])
        return k, traj, t0

    def window(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """x (T, C, *spatial) and y (C, *spatial) of window i (y (n_out, C, *spatial) if n_out > 1), reading only its frames."""
        k, traj, t0 = self.locate(i)
        f, info = self._file(k), self.infos[k]
        n_frames = self.n_in + self.n_out
        tsl = slice(t0, t0 + (n_frames - 1) * self.stride + 1, self.stride)
        cache: dict[str, np.ndarray] = {}
        out = np.empty((n_frames, len(self.channels), *info.spatial), dtype=np.float32)
        for c, ch in enumerate(self.channels):
            r = info.channels[ch]
            arr = cache.get(r.dataset)
            if arr is None:
                sel: tuple[Any, ...] = ((traj,) if r.sample_varying else ()) + ((tsl,) if r.time_varying else ())
                arr = np.asarray(f[r.dataset][sel])
                if not r.time_varying:
                    arr = arr[None]
                cache[r.dataset] = arr
            comp = arr[(Ellipsis, *r.comp)] if r.comp else arr
            comp = comp.reshape((comp.shape[0], *r.stored_spatial))
            out[:, c] = comp  # broadcasts constant-in-time or non-varying axes
        return out[: self.n_in], (out[self.n_in] if self.n_out == 1 else out[self.n_in:])

    def where(self, i: int, frame: int) -> str:
        """Words for frame `frame` of window i: trajectory, time index and file."""
        k, traj, t0 = self.locate(i)
        return f"trajectory {traj}, time {t0 + frame * self.stride} of {self.files[k]}"

    def what(self) -> str:
        """Words for this source in an error."""
        return f"The training data {self.info.name!r}"


class XarraySource:
    """Windows over an xarray Dataset in the physviz schema (dims trajectory?, time, x, y, z)."""

    def __init__(self, ds: Any, channels: list[str] | None, n_steps_input: int, dt_stride: int = 1,
                 name: str | None = None, with_std: bool = True, family: str | None = None, n_out: int = 1,
                 role: str = "training") -> None:
        from physviz.errors import SchemaError
        from physviz.fields.schema import validate_dataset

        self.role = role
        report = validate_dataset(ds, f"the {role} Dataset")
        spatial = report.spatial_dims
        timed = [f for f in report.fields if "time" in ds[f].dims]
        chans = list(channels) if channels is not None else timed
        missing = [c for c in chans if c not in ds.data_vars]
        if missing:
            raise SchemaError(f"The {role} Dataset has no field(s) {missing}; its fields are {report.fields}.")
        notime = [c for c in chans if "time" not in ds[c].dims]
        if notime:
            raise SchemaError(f"Field(s) {notime} of the {role} Dataset have no time dim; train on time-varying fields.")
        self.ds = ds
        self.channels = chans
        self.n_in = int(n_steps_input)
        self.n_out = int(n_out)
        self.stride = int(dt_stride)
        self.n_traj = int(ds.sizes.get("trajectory", 1))
        n_time = int(ds.sizes["time"])
        self.per_traj = max(0, n_time - (self.n_in + self.n_out - 1) * self.stride)
        if self.per_traj == 0:
            targets = "a target" if self.n_out == 1 else f"{self.n_out} rollout targets"
            raise SchemaError(
                f"The {role} Dataset has {n_time} time steps, too few for {self.n_in} input frames "
                f"(stride {self.stride}) plus {targets}; lower n_steps_input or rollout.steps."
            )
        shape = tuple(int(ds.sizes[d]) for d in spatial)
        std = None
        if with_std:
            std = [float(np.nanstd(np.asarray(ds[c].values))) or 1.0 for c in chans]
        periodic = periodic_flags(report.boundary_conditions, spatial)
        self.info = SourceInfo(name or str(ds.attrs.get("dataset_name") or "dataset"), chans, shape, periodic,
                               self.n_in, self.n_traj * self.per_traj, std, family)
        self.info.boundary_conditions = dict(report.boundary_conditions or {})
        self._arrays: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return self.info.n_windows

    def _data(self) -> list[np.ndarray]:
        if self._arrays is None:
            arrays = []
            for c in self.channels:
                v = self.ds[c]
                v = v.transpose(*(d for d in ("trajectory", "time", *SPATIAL_DIMS) if d in v.dims))
                a = np.asarray(v.values, dtype=np.float32)
                arrays.append(a if "trajectory" in v.dims else a[None])
            self._arrays = arrays
        return self._arrays

    def window(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """x (T, C, *spatial) and y (C, *spatial) of window i (y (n_out, C, *spatial) if n_out > 1)."""
        traj, t0 = divmod(int(i), self.per_traj)
        sl = slice(t0, t0 + (self.n_in + self.n_out - 1) * self.stride + 1, self.stride)
        frames = np.stack([a[traj, sl] for a in self._data()], axis=1)
        return frames[: self.n_in], (frames[self.n_in] if self.n_out == 1 else frames[self.n_in:])

    def where(self, i: int, frame: int) -> str:
        """Words for frame `frame` of window i: trajectory and time index."""
        traj, t0 = divmod(int(i), self.per_traj)
        return f"trajectory {traj}, time {t0 + frame * self.stride}"

    def what(self) -> str:
        """Words for this source in an error."""
        return f"The {self.role} Dataset"


def checked_window(src: Any, i: int) -> tuple[np.ndarray, np.ndarray]:
    """``src.window(i)``, refusing a window that holds NaN/inf with where it is (field, trajectory, time, file)."""
    x, y = src.window(i)
    if np.isfinite(x).all() and np.isfinite(y).all():
        return x, y
    from physviz.errors import NonFiniteFieldError

    frames = np.concatenate([x, y if y.ndim == x.ndim else y[None]])  # (frames, C, *spatial)
    bad = ~np.isfinite(frames.reshape(frames.shape[0], frames.shape[1], -1))
    k, c = (int(v) for v in np.argwhere(bad.any(-1))[0])
    kind = "NaN" if np.isnan(frames[k, c]).any() else "inf"
    where = src.where(i, k) if hasattr(src, "where") else f"window {i}"
    what = src.what() if hasattr(src, "what") else "The training data"
    raise NonFiniteFieldError(
        f"{what} holds {kind} in field {src.channels[c]!r} at {where}; the model cannot learn from it. "
        "Clean or drop those frames, or leave the field out (fields: [...])."
    )


# -- building and checking from a DatasetSpec ---------------------------------------------------
@dataclass
class DatasetCheck:
    """What `inspect_dataset` found."""

    files: list[Path]
    infos: list[FileInfo]
    channels: list[str]
    root: Path
    n_windows: int
    valid_files: list[Path]
    valid_infos: list[FileInfo]

    @property
    def n_spatial_dims(self) -> int:
        return len(self.infos[0].spatial)


def _check_split(files: list[Path], label: str, spec: DatasetSpec, split: str) -> list[FileInfo]:
    infos = [read_file_info(f) for f in files]
    first = infos[0]
    for info in infos[1:]:
        if info.spatial != first.spatial:
            raise TrainConfigError(
                f"{label} ({spec.path}): files of split {split!r} disagree in grid: {first.path} is {first.spatial}, "
                f"{info.path} is {info.spatial}; split them into separate datasets."
            )
    return infos


def inspect_dataset(spec: DatasetSpec, label: str, default_n_in: int, n_out: int = 1) -> DatasetCheck:
    """Check one dataset entry on disk (paths, split files, fields, window count); raise TrainConfigError.

    ``n_out`` is the number of target frames per training window (``rollout.steps``).
    """
    path = Path(spec.path).expanduser()
    if not path.exists():
        raise TrainConfigError(f"{label}.path {str(path)!r} does not exist; give a Well dataset folder or HDF5 file.")
    files, root = split_files(path, spec.split)
    if not files:
        raise TrainConfigError(
            f"{label}.path {str(path)!r} has no HDF5 files for split {spec.split!r} "
            f"(looked in data/{spec.split}/, {spec.split}/ and the folder itself)."
        )
    infos = _check_split(files, label, spec, spec.split)
    available = [c for c in infos[0].channels if infos[0].channels[c].time_varying]
    chans = list(spec.fields) if spec.fields is not None else available
    for info in infos:
        missing = [c for c in chans if c not in info.channels]
        if missing:
            raise TrainConfigError(
                f"{label}.fields {missing} are not in {info.path}; its fields are {', '.join(info.channels)}."
            )
    n_in = spec.n_steps_input or default_n_in
    span = n_in * spec.dt_stride
    train_span = (n_in + n_out - 1) * spec.dt_stride
    n_windows = sum(i.n_traj * max(0, i.n_time - train_span) for i in infos)
    if n_windows == 0:
        targets = "a target frame" if n_out == 1 else f"rollout.steps={n_out} target frames"
        raise TrainConfigError(
            f"{label}: trajectories in {str(path)!r} have {infos[0].n_time} time steps, too few for "
            f"n_steps_input={n_in} (dt_stride {spec.dt_stride}) plus {targets}; lower n_steps_input"
            + (" or rollout.steps." if n_out > 1 else ".")
        )
    vfiles: list[Path] = []
    vinfos: list[FileInfo] = []
    if spec.valid_split:
        vfiles, _ = split_files(path, spec.valid_split)
        if vfiles:
            vinfos = _check_split(vfiles, label, spec, spec.valid_split)
            bad = [i for i in vinfos if i.spatial != infos[0].spatial or any(c not in i.channels for c in chans)]
            if bad:
                raise TrainConfigError(
                    f"{label}: validation file {bad[0].path} does not match the training files (grid or fields)."
                )
            vinfos = [i for i in vinfos if i.n_time > span]
            vfiles = [Path(i.path) for i in vinfos]
    return DatasetCheck(files, infos, chans, root, n_windows, vfiles, vinfos)


def channel_std(stats: dict[str, Any] | None, infos: list[FileInfo], channels: list[str]) -> list[float] | None:
    """Per-channel std from a stats.yaml (None if any channel is missing)."""
    if not stats or not isinstance(stats.get("std"), dict):
        return None
    std = stats["std"]
    out = []
    for ch in channels:
        r = infos[0].channels[ch]
        v: Any = std.get(r.base)
        try:
            for j in r.comp:
                v = v[j]
            val = float(v)
        except (TypeError, IndexError, KeyError, ValueError):
            return None
        out.append(val if val > 0 and math.isfinite(val) else 1.0)
    return out


def build_sources(spec: DatasetSpec, name: str, default_n_in: int, label: str,
                  with_std: bool, n_out: int = 1) -> tuple[WellSource, WellSource | None]:
    """The training (and validation, if the split exists) sources of one dataset entry; training windows hold `n_out` targets."""
    check = inspect_dataset(spec, label, default_n_in, n_out)
    n_in = spec.n_steps_input or default_n_in
    std = channel_std(stats_for(check.root, check.files), check.infos, check.channels) if with_std else None
    train = WellSource(check.files, check.infos, check.channels, n_in, spec.dt_stride, name, std, spec.family, n_out)
    valid = None
    if check.valid_files:
        valid = WellSource(check.valid_files, check.valid_infos, check.channels, n_in, spec.dt_stride, name, std, spec.family)
    return train, valid
