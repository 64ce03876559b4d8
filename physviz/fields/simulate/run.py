"""Run a built-in simulator: batches of seeded trajectories into an xarray Dataset, or Well splits."""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from physviz.errors import OptionError, ParameterError

# system name -> "module:Solver class"
SYSTEMS: dict[str, str] = {
    "navier_stokes": "physviz.fields.simulate.navier_stokes:NavierStokes2D",
    "shallow_water": "physviz.fields.simulate.shallow_water:ShallowWater2D",
    "fitzhugh_nagumo": "physviz.fields.simulate.reaction_diffusion:FitzHughNagumo2D",
    "gray_scott": "physviz.fields.simulate.reaction_diffusion:GrayScott2D",
    "gray_scott_3d": "physviz.fields.simulate.reaction_diffusion:GrayScott3D",
    "euler": "physviz.fields.simulate.euler:CompressibleFlow2D",
}

# system -> the names, in its solver's module, of its regimes and of their aliases ("" where it has none)
REGIME_DECLARATIONS: dict[str, tuple[str, str]] = {
    "navier_stokes": ("REGIMES", ""),
    "shallow_water": ("REGIMES", ""),
    "gray_scott": ("GRAY_SCOTT_REGIMES", "GRAY_SCOTT_ALIASES"),
    "gray_scott_3d": ("GRAY_SCOTT_REGIMES", "GRAY_SCOTT_ALIASES"),
    "euler": ("REGIMES", ""),
}


def solver_class(system: str) -> Any:
    """The Solver class of a system name."""
    if system not in SYSTEMS:
        raise ParameterError(f"Unknown system {system!r}; built-in systems: {', '.join(sorted(SYSTEMS))}.")
    module, cls = SYSTEMS[system].split(":")
    return getattr(importlib.import_module(module), cls)


def regimes(system: str) -> tuple[list[str], dict[str, str]]:
    """A system's regime names and its aliases (alias -> regime); empty for a system without regimes."""
    cls = solver_class(system)
    if system not in REGIME_DECLARATIONS:
        return [], {}
    names, aliases = REGIME_DECLARATIONS[system]
    module = importlib.import_module(cls.__module__)
    return list(getattr(module, names)), dict(getattr(module, aliases)) if aliases else {}


class _BatchProgress:
    """A progress bar counted in trajectory frames, advanced once per frame of a whole batch."""

    def __init__(self, bar: Any, batch: int) -> None:
        self.bar, self.batch = bar, batch

    def update(self, n: int = 1) -> None:
        """n frames of every trajectory in the batch are done."""
        self.bar.update(n * self.batch)


def make_solver(system: str, **params: Any) -> Any:
    """A configured solver of a system (parameters validated)."""
    cls = solver_class(system)
    return cls(cls.config_cls.from_params(**{k: v for k, v in params.items() if v is not None}))


def _trajectory_generator(seed: int, index: int) -> Any:
    import torch

    gen = torch.Generator()
    gen.manual_seed(int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] & 0x7FFF_FFFF_FFFF_FFFF))
    return gen


def simulate(
    system: str,
    trajectories: int = 4,
    *,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1),
    overwrite: bool = False,
    **params: Any,
) -> Any:
    """Simulate `trajectories` seeded runs of a built-in system as an xarray Dataset.

    params go to the system's config (resolution, steps, dt_save, cfl, dt, dtype,
    device, and the system's own, e.g. viscosity or regime). The initial condition
    and random parameters of trajectory i depend only on (seed, i); where a solver's
    CFL step depends on the state, a batch shares its smallest step, so batch size
    changes results by time-stepping error only. With `out`, also write Well
    train/valid/test splits and stats.yaml there (see `write_splits`: a folder that
    already holds this dataset is refused unless overwrite=True, one that holds
    another dataset always; both are checked before simulating).
    """
    import torch
    import xarray as xr
    from tqdm.auto import tqdm

    if trajectories < 1:
        raise ParameterError(f"trajectories={trajectories} must be at least 1.")
    solver = make_solver(system, **params)
    if out is not None:
        split_counts(trajectories, splits)
        check_out(out, solver.dataset_name(), overwrite)
    batch = trajectories if batch_size is None else batch_size
    if batch < 1:
        raise ParameterError(f"batch_size={batch_size} must be at least 1.")
    cfg = solver.config
    fields: dict[str, list[np.ndarray]] = {}
    random_params: dict[str, list[float]] = {}
    total_steps = 0
    bar = tqdm(total=trajectories * cfg.steps, desc=f"simulate {solver.dataset_name()}", unit="frame", disable=not progress)
    with bar:
        for start in range(0, trajectories, batch):
            idx = range(start, min(start + batch, trajectories))
            states, plist = [], []
            for i in idx:
                s, p = solver.initial_condition(_trajectory_generator(seed, i))
                states.append(s)
                plist.append(p)
            state = torch.stack(states).to(device=solver.device, dtype=solver.dtype)
            batch_params = {k: torch.tensor([p[k] for p in plist], dtype=solver.dtype, device=solver.device) for k in plist[0]}
            solver.begin_batch(batch_params)
            from physviz.fields.simulate.base import integrate

            outputs, times, n = integrate(solver, state, _BatchProgress(bar, len(idx)))
            total_steps += n
            for k, v in outputs.items():
                fields.setdefault(k, []).append(v)
            for k in plist[0]:
                random_params.setdefault(k, []).extend(float(p[k]) for p in plist)
    coords = solver.coords()
    spatial = tuple(coords)
    dims = ("trajectory", "time", *spatial)
    data_vars: dict[str, Any] = {k: (dims, np.concatenate(v)) for k, v in fields.items()}
    for k, v in random_params.items():
        data_vars[k] = (("trajectory",), np.asarray(v))
    ds = xr.Dataset(
        data_vars,
        coords={"time": times, **{k: v for k, v in coords.items()}},
        attrs={
            "dataset_name": solver.dataset_name(),
            "boundary_conditions": solver.boundary_conditions(),
            "simulation_parameters": {**solver.parameters(), "seed": int(seed), "dt_save": float(solver.dt_save)},
            "source": {"format": "physviz.simulate", "path": "", "system": system, "solver_steps": int(total_steps)},
        },
    )
    if out is not None:
        write_splits(ds, out, splits, overwrite=overwrite)
    return ds


def split_counts(n: int, splits: tuple[float, float, float]) -> tuple[int, int, int]:
    """Trajectories per split, each non-empty split getting at least one when possible."""
    if len(splits) != 3 or not all(np.isfinite(s) and s >= 0 for s in splits) or not sum(splits) > 0:
        raise ParameterError(f"splits={splits} must be three non-negative fractions (train, valid, test).")
    fr = np.asarray(splits, dtype=float) / sum(splits)
    counts = np.floor(fr * n).astype(int)
    for i in np.argsort(-(fr * n - counts)):
        if counts.sum() >= n:
            break
        counts[i] += 1
    for i in (1, 2):  # valid/test get one trajectory when asked for and train keeps one
        if fr[i] > 0 and counts[i] == 0 and counts[0] > 1:
            counts[i] += 1
            counts[0] -= 1
    return int(counts[0]), int(counts[1]), int(counts[2])


def _dataset_files(out: Path) -> list[Path]:
    """The HDF5 files of a Well folder's splits."""
    from physviz.fields.detect import HDF5_SUFFIXES

    files = []
    for split in ("train", "valid", "test"):
        folder = out / "data" / split
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if p.suffix in HDF5_SUFFIXES and not p.name.startswith("."))
    return files


def check_out(out: str | os.PathLike[str], name: str, overwrite: bool = False) -> None:
    """Refuse an output folder that holds another dataset, or (unless `overwrite`) this one; nothing is written.

    A Well folder holds one dataset: a second one beside it would make the folder unreadable
    (open_fields refuses files of different datasets), so that is refused even with overwrite.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError(f"{out}: exists and is not a folder; give out (-o) a folder for the Well splits.")
    for split in ("train", "valid", "test"):
        for path in (out / "data", out / "data" / split):
            if path.exists() and not path.is_dir():
                raise OptionError(f"{path}: exists and is not a folder, where the {split} split goes; move it or choose another out folder.")
        target = out / "data" / split / f"{name}.hdf5"
        if target.exists() and not target.is_file():
            raise OptionError(f"{target}: exists and is not a file; move it or choose another out folder.")
    files = _dataset_files(out)
    others = sorted({p.stem for p in files} - {name})
    if others:
        raise OptionError(
            f"{out} already holds dataset {others[0]!r} ({files[0].relative_to(out)}); a Well folder holds one dataset: "
            f"write {name!r} to another folder."
        )
    if files and not overwrite:
        shown = ", ".join(str(p.relative_to(out)) for p in files)
        raise OptionError(
            f"{out} already holds dataset {name!r} ({shown}); pass overwrite=True (physviz simulate --overwrite) "
            "to replace it, or choose another folder."
        )


def write_splits(
    ds: Any,
    out: str | os.PathLike[str],
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1),
    *,
    overwrite: bool = False,
) -> Path:
    """Write a simulated Dataset as Well train/valid/test files plus stats.yaml (from train).

    A folder that already holds this dataset is refused unless overwrite=True, which replaces
    its files (a split this run leaves empty is removed, so no stale file stays). A folder that
    holds another dataset is always refused. Each file is written atomically.
    """
    from physviz.fields.stats import write_stats
    from physviz.fields.well_writer import to_well

    out = Path(out)
    name = ds.attrs["dataset_name"]
    check_out(out, name, overwrite)
    n = ds.sizes["trajectory"]
    counts = split_counts(n, splits)
    start = 0
    train_file = None
    for split, count in zip(("train", "valid", "test"), counts):
        target = out / "data" / split / f"{name}.hdf5"
        if count == 0:
            target.unlink(missing_ok=True)  # only reached with overwrite: check_out refused existing files
            continue
        part = ds.isel(trajectory=slice(start, start + count))
        path = to_well(part, target, stats=False, dtype=None)
        if split == "train":
            train_file = path
        start += count
    if train_file is not None:
        write_stats([train_file], out / "stats.yaml")
    return out
