"""Shared machinery of the built-in simulators: configs, CFL time stepping, saving frames, errors."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch

from physviz.errors import ParameterError, SimulationError


@dataclass
class SimConfig:
    """Settings every simulator shares; systems subclass it with their own parameters.

    steps: saved frames including the initial one. dt_save: time between saved
    frames (None: the system's default). cfl: Courant number for the automatic
    step. dt: a fixed solver step instead (refused if it breaks the CFL limit).
    warmup: time integrated before the first saved frame.
    """

    resolution: int = 128
    steps: int = 20
    dt_save: float | None = None
    cfl: float | None = None
    dt: float | None = None
    warmup: float = 0.0
    dtype: str = "float32"
    device: str = "auto"
    max_substeps: int = 1_000_000

    def validate(self) -> None:
        """Raise ParameterError naming the first bad setting."""
        if self.resolution < 8:
            raise ParameterError(f"resolution={self.resolution} is too small; use at least 8.")
        if self.steps < 1:
            raise ParameterError(f"steps={self.steps} must be at least 1 (the initial frame).")
        if self.dt_save is not None and not self.dt_save > 0:
            raise ParameterError(f"dt_save={self.dt_save} must be positive.")
        if self.cfl is not None and not 0 < self.cfl <= 1:
            raise ParameterError(f"cfl={self.cfl} must be in (0, 1].")
        if self.dt is not None and not self.dt > 0:
            raise ParameterError(f"dt={self.dt} must be positive.")
        if not self.warmup >= 0 or not math.isfinite(self.warmup):
            raise ParameterError(f"warmup={self.warmup} must be a finite number >= 0.")
        if not self.max_substeps >= 1:
            raise ParameterError(f"max_substeps={self.max_substeps} must be at least 1.")
        if self.dtype not in ("float32", "float64"):
            raise ParameterError(f"dtype={self.dtype!r} must be 'float32' or 'float64'.")

    @classmethod
    def from_params(cls, **params: Any) -> "SimConfig":
        """Build a config, naming unknown parameters instead of a TypeError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ParameterError(f"{cls.__name__} has no parameter(s) {unknown}; known: {sorted(known)}.")
        return cls(**params)


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ParameterError(f"device={name!r} is not a torch device ({exc}).") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device={name!r} asked for, but no CUDA device is available here.")
    return device


class Solver(ABC):
    """One PDE system: initial conditions, a stable step size, one time step, output fields."""

    name: ClassVar[str]
    config_cls: ClassVar[type[SimConfig]] = SimConfig
    default_dt_save: ClassVar[float] = 0.1
    default_cfl: ClassVar[float] = 0.5
    ndim: ClassVar[int] = 2
    supported_resolutions: ClassVar[tuple[int, int] | None] = None  # (min, max), and a multiple rule below
    resolution_multiple: ClassVar[int] = 1

    def __init__(self, config: SimConfig) -> None:
        config.validate()
        self.config = config
        self.device = resolve_device(config.device)
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        lo_hi = self.supported_resolutions
        n = config.resolution
        if (lo_hi and not lo_hi[0] <= n <= lo_hi[1]) or n % self.resolution_multiple:
            rule = f"between {lo_hi[0]} and {lo_hi[1]}" if lo_hi else "any size"
            raise ParameterError(
                f"{self.name}: resolution {n} is not supported (use {rule}"
                f"{f', a multiple of {self.resolution_multiple}' if self.resolution_multiple > 1 else ''})."
            )
        self.check_params()
        self.cfl = config.cfl if config.cfl is not None else self.default_cfl
        self.dt_save = config.dt_save if config.dt_save is not None else self.default_dt_save

    def check_params(self) -> None:
        """Raise ParameterError for bad system parameters (override)."""

    @abstractmethod
    def coords(self) -> dict[str, np.ndarray]:
        """Spatial coordinates, x, y (, z), as 1D arrays of cell centres."""

    @abstractmethod
    def boundary_conditions(self) -> dict[str, Any]:
        """Per-axis boundary condition in the schema's words."""

    @abstractmethod
    def initial_condition(self, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """One trajectory's state (C, *spatial) on CPU and its random parameters."""

    @abstractmethod
    def max_dt(self, state: torch.Tensor) -> float:
        """The largest stable step for the batch (B, C, *spatial) at the configured CFL."""

    @abstractmethod
    def step(self, state: torch.Tensor, dt: float) -> torch.Tensor:
        """Advance the batch by dt."""

    @abstractmethod
    def observe(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """Output fields by canonical name, each (B, *spatial)."""

    def parameters(self) -> dict[str, Any]:
        """Constant simulation parameters written to attrs (the config without run settings)."""
        run = {f.name for f in fields(SimConfig)}
        return {k: v for k, v in asdict(self.config).items() if k not in run}

    def dataset_name(self) -> str:
        """Name written to files (system plus regime where there is one)."""
        regime = getattr(self.config, "regime", None)
        return f"{self.name}_{regime}" if regime else self.name

    def begin_batch(self, params: dict[str, torch.Tensor]) -> None:
        """Receive the batch's random parameters (B,) before stepping (override if used)."""


def _check_finite(name: str, state: torch.Tensor, n_step: int, t: float, frame: int) -> None:
    flat = state.reshape(state.shape[0], -1)
    bad = (~torch.isfinite(flat)).any(dim=1)
    if bool(bad.any()):
        which = torch.nonzero(bad).flatten().tolist()
        raise SimulationError(
            f"{name} went unstable at solver step {n_step} (t={t:.6g}, before saved frame {frame}): "
            f"NaN/inf in batch trajectories {which}; lower cfl or dt, or change the parameters."
        )


def integrate(
    solver: Solver,
    state: torch.Tensor,
    progress: Any = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, int]:
    """Step a batch to each saved time; return frames per field (B, T, *spatial), times and step count."""
    cfg = solver.config
    n_frames = cfg.steps
    dt_save = solver.dt_save
    outputs: dict[str, np.ndarray] = {}

    def record(i: int) -> None:
        for k, v in solver.observe(state).items():
            arr = v.detach().to("cpu", torch.float64 if cfg.dtype == "float64" else torch.float32).numpy()
            if k not in outputs:
                outputs[k] = np.empty((arr.shape[0], n_frames, *arr.shape[1:]), dtype=arr.dtype)
            outputs[k][:, i] = arr

    t = -float(cfg.warmup) if cfg.warmup else 0.0
    n_step = 0
    for i in range(n_frames):
        target = i * dt_save
        while t < target - 1e-12 * max(1.0, abs(target)):
            limit = solver.max_dt(state)
            if not math.isfinite(limit) or limit <= 0:
                _check_finite(solver.name, state, n_step, t, i)
                raise SimulationError(
                    f"{solver.name}: the stable step became {limit} at solver step {n_step} (t={t:.6g}); the run cannot advance."
                )
            if cfg.dt is not None:
                if cfg.dt > limit * (1 + 1e-9):
                    raise ParameterError(
                        f"{solver.name}: dt={cfg.dt:g} violates the CFL condition at solver step {n_step} "
                        f"(t={t:.6g}): the stable step there is {limit:.4g} at cfl={solver.cfl}."
                    )
                dt = cfg.dt
            else:
                dt = limit
            dt = min(dt, target - t)
            state = solver.step(state, dt)
            t += dt
            n_step += 1
            if n_step % 50 == 0:
                _check_finite(solver.name, state, n_step, t, i)
            if n_step > cfg.max_substeps:
                raise SimulationError(f"{solver.name}: more than {cfg.max_substeps} solver steps before frame {i}; dt is collapsing.")
        _check_finite(solver.name, state, n_step, t, i)
        record(i)
        if progress is not None:
            progress.update(1)
    times = np.arange(n_frames) * dt_save
    return outputs, times, n_step
