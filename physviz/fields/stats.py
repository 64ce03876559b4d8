"""Normalization statistics in The Well's `stats.yaml` format."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from physviz.fields.atomic import write_text_atomic
from physviz.fields.detect import SPLITS, hdf5_files
from physviz.fields.well_writer import group_tensor_fields


class _Moments:
    """Running count, sum and sum of squares per channel."""

    def __init__(self) -> None:
        self.n = 0
        self.s = 0.0
        self.ss = 0.0

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        self.n += x.size
        self.s += float(x.sum())
        self.ss += float(np.square(x).sum())

    def result(self) -> tuple[float, float, float]:
        mean = self.s / max(self.n, 1)
        var = max(self.ss / max(self.n, 1) - mean * mean, 0.0)
        return mean, float(np.sqrt(var)), float(np.sqrt(self.ss / max(self.n, 1)))


def compute_stats(files: Iterable[str | os.PathLike[str]]) -> dict[str, dict[str, Any]]:
    """mean/std/rms and their time-delta versions per core field, over all files."""
    from physviz.fields.open import open_fields

    moments: dict[str, dict[str, _Moments]] = {}
    deltas: dict[str, dict[str, _Moments]] = {}
    layout: dict[str, Any] = {}
    for file in files:
        with open_fields(file) as ds:
            spatial = [d for d in ("x", "y", "z") if d in ds.dims]
            fields = [n for n in ds.data_vars if any(d in ds[n].dims for d in spatial)]
            for t in group_tensor_fields([str(n) for n in fields], spatial):
                layout[t.name] = (t.order, len(spatial))
                for c in t.channels:
                    var = ds[c]
                    per = [{}] if "trajectory" not in var.dims else [{"trajectory": i} for i in range(var.sizes["trajectory"])]
                    for sel in per:
                        x = np.asarray(var.isel(sel).values)
                        moments.setdefault(t.name, {}).setdefault(c, _Moments()).add(x)
                        if "time" in var.dims and var.sizes["time"] > 1:
                            axis = var.isel(sel).dims.index("time")
                            deltas.setdefault(t.name, {}).setdefault(c, _Moments()).add(np.diff(x, axis=axis))

    def shaped(values: list[float], order: int, d: int) -> Any:
        if order == 0:
            return values[0]
        if order == 1:
            return values
        return [values[i * d : (i + 1) * d] for i in range(d)]

    out: dict[str, dict[str, Any]] = {k: {} for k in ("mean", "std", "rms", "mean_delta", "std_delta", "rms_delta")}
    for name, chans in moments.items():
        order, d = layout[name]
        res = [m.result() for m in chans.values()]
        out["mean"][name] = shaped([r[0] for r in res], order, d)
        out["std"][name] = shaped([r[1] for r in res], order, d)
        out["rms"][name] = shaped([r[2] for r in res], order, d)
        if name in deltas:
            dres = [m.result() for m in deltas[name].values()]
            out["mean_delta"][name] = shaped([r[0] for r in dres], order, d)
            out["std_delta"][name] = shaped([r[1] for r in dres], order, d)
            out["rms_delta"][name] = shaped([r[2] for r in dres], order, d)
    return out


def stats_location(path: str | os.PathLike[str]) -> tuple[Path, list[Path]]:
    """Where a file's stats.yaml goes, and which files it covers (the train split)."""
    path = Path(path)
    parent = path.parent
    if parent.name in SPLITS and parent.parent.name == "data":
        root = parent.parent.parent
        train = parent.parent / "train"
        files = hdf5_files(train) if train.is_dir() and hdf5_files(train) else hdf5_files(parent)
        return root / "stats.yaml", files
    return parent / "stats.yaml", hdf5_files(parent)


def write_stats(files: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str]) -> Path:
    """Compute statistics over `files` and write them atomically as YAML to `out`."""
    stats = compute_stats(list(files))
    write_text_atomic(out, yaml.safe_dump(stats, sort_keys=False))
    return Path(out)


def write_stats_for(path: str | os.PathLike[str]) -> Path:
    """Refresh the stats.yaml that covers a Well file (its dataset's train split)."""
    out, files = stats_location(path)
    return write_stats(files, out)
