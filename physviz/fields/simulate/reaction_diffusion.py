"""Two-species reaction-diffusion: FitzHugh-Nagumo (PDEBench) and Gray-Scott 2D/3D (The Well).

Finite differences on cell centres with classical RK4 in time: FitzHugh-Nagumo uses the
2nd-order stencil with no-flux walls (PDEBench's finite volumes are 2nd order); periodic
Gray-Scott uses the 4th-order stencil, which at 128^2 reproduces a pseudo-spectral run's
patterns where the 2nd-order one pins fronts to the grid (bubbles, worms regimes).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from physviz.errors import ParameterError
from physviz.fields.simulate.base import SimConfig, Solver

# Classical RK4 is stable for real negative z = dt * lambda down to about -2.785.
RK4_STABILITY = 2.785

# The Well's gray_scott_reaction_diffusion regimes: (f, k).
GRAY_SCOTT_REGIMES: dict[str, tuple[float, float]] = {
    "gliders": (0.014, 0.054),
    "bubbles": (0.098, 0.057),
    "maze": (0.029, 0.057),
    "worms": (0.058, 0.065),
    "spirals": (0.018, 0.051),
    "spots": (0.03, 0.062),
}
GRAY_SCOTT_ALIASES: dict[str, str] = {"stripes": "maze", "waves": "spirals"}
INITIAL_KINDS = ("mixed", "patches", "fourier")
SPATIAL = ("x", "y", "z")


def _shifted(p: torch.Tensor, ndim: int, ghost: int, axis: int, shift: int) -> torch.Tensor:
    """View of the padded p's interior moved by shift cells along spatial axis (0..ndim-1)."""
    index: list[slice] = []
    for a in range(ndim):
        lo = ghost + (shift if a == axis else 0)
        index.append(slice(lo, p.shape[p.ndim - ndim + a] - 2 * ghost + lo))
    return p[(..., *index)]


def laplacian(u: torch.Tensor, ndim: int, periodic: bool, order: int = 2, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    """scale * dx^2 * (discrete Laplacian) over the last ndim axes of (B, C, *spatial), a new tensor.

    order 2: the (2 ndim + 1)-point stencil; order 4: (-1, 16, -30, 16, -1)/12 along each axis
    (periodic only). periodic: wrap-around neighbours; otherwise no-flux faces of a cell-centred
    grid (ghost cell = its mirror cell, 'replicate' padding), so the stencil sums to zero.
    """
    if ndim not in (2, 3) or u.ndim < ndim + 1:
        raise ValueError(f"laplacian supports 2 or 3 spatial axes, not {ndim}")
    if order == 2:
        p = F.pad(u, (1, 1) * ndim, mode="circular" if periodic else "replicate")
        out = _shifted(p, ndim, 1, 0, -1) + _shifted(p, ndim, 1, 0, 1)
        for a in range(1, ndim):
            out += _shifted(p, ndim, 1, a, -1)
            out += _shifted(p, ndim, 1, a, 1)
        out.add_(u, alpha=-2.0 * ndim)
        return out if isinstance(scale, float) and scale == 1.0 else out.mul_(scale)
    if order != 4 or not periodic:
        raise ValueError("laplacian: order must be 2, or 4 on a periodic grid")
    p = F.pad(u, (2, 2) * ndim, mode="circular")
    out = torch.add(_shifted(p, ndim, 2, 0, -2), _shifted(p, ndim, 2, 0, 2))
    for a in range(ndim):
        if a:
            out += _shifted(p, ndim, 2, a, -2)
            out += _shifted(p, ndim, 2, a, 2)
        out.add_(_shifted(p, ndim, 2, a, -1), alpha=-16.0)
        out.add_(_shifted(p, ndim, 2, a, 1), alpha=-16.0)
    out.add_(u, alpha=30.0 * ndim)  # -(12 dx^2 Laplacian)
    return out.mul_(scale / -12.0)


def laplacian_eigenvalue(modes: tuple[int, ...], n: int, length: float, periodic: bool, order: int = 2) -> float:
    """-(eigenvalue) of the discrete Laplacian for a Fourier (periodic) or cosine (no-flux) mode.

    periodic: mode m is exp(2 pi i m x / L); no-flux: cos(pi m (x - x_0 + dx/2) / L) at cell centres x.
    """
    dx = length / n
    total = 0.0
    for m in modes:
        t = (2 if periodic else 1) * math.pi * m * dx / length
        total += 4.0 * math.sin(t / 2) ** 2 if order == 2 else (30.0 - 32.0 * math.cos(t) + 2.0 * math.cos(2 * t)) / 12.0
    return total / dx**2


def _check_finite_number(name: str, value: Any, lo: float | None = None, hi: float | None = None) -> None:
    """Raise ParameterError unless value is a finite real in [lo, hi]."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and lo is not None and value < lo:
        ok = False
    if ok and hi is not None and value > hi:
        ok = False
    if not ok:
        rng = f" in [{lo:g}, {hi:g}]" if lo is not None and hi is not None else (f" >= {lo:g}" if lo is not None else "")
        raise ParameterError(f"{name}={value!r} must be a finite number{rng}.")


class _ReactionDiffusion(Solver):
    """Two species on [-1, 1]^ndim with constant diffusivities, a stencil Laplacian and classical RK4."""

    length: ClassVar[float] = 2.0
    periodic: ClassVar[bool] = True
    order: ClassVar[int] = 2
    species: ClassVar[tuple[str, str]] = ("A", "B")
    supported_resolutions = (8, 4096)

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config)
        n = self.config.resolution
        self.n = n
        self.dx = self.length / n
        d = self.diffusivities()
        shape = (len(d),) + (1,) * self.ndim
        self._dcoef = torch.tensor([di / self.dx**2 for di in d], dtype=self.dtype, device=self.device).view(shape)
        per_axis = 4.0 if self.order == 2 else 16.0 / 3.0  # largest |eigenvalue| of dx^2 d2/dx2
        lam_diff = max(d) * per_axis * self.ndim / self.dx**2
        self.stable_dt = self.cfl * RK4_STABILITY / (lam_diff + self.reaction_bound())
        # equal steps: a whole number of them per saved frame
        self._max_dt = self.dt_save / math.ceil(self.dt_save / self.stable_dt - 1e-9)

    def diffusivities(self) -> tuple[float, float]:
        """Diffusivity of each species (override)."""
        raise NotImplementedError

    def reaction_bound(self) -> float:
        """Bound on the reaction Jacobian's spectral radius over the states reached (override)."""
        raise NotImplementedError

    def react_(self, y: torch.Tensor, out: torch.Tensor) -> None:
        """Add the reaction terms of state y into out, in place (override)."""
        raise NotImplementedError

    def centres(self) -> np.ndarray:
        """Cell-centre coordinates of one axis in [-1, 1]."""
        return -1.0 + (np.arange(self.n) + 0.5) * self.dx

    def coords(self) -> dict[str, np.ndarray]:
        """Cell centres on each axis."""
        x = self.centres()
        return {name: x.copy() for name in SPATIAL[: self.ndim]}

    def boundary_conditions(self) -> dict[str, Any]:
        """Periodic, or no-flux walls, on every axis."""
        bc = "periodic" if self.periodic else "wall"
        return {name: bc for name in SPATIAL[: self.ndim]}

    def max_dt(self, state: torch.Tensor) -> float:
        """cfl times the RK4 limit for diffusion plus the reaction bound, shortened to divide dt_save (state-independent)."""
        return self._max_dt

    def rhs(self, y: torch.Tensor) -> torch.Tensor:
        """Time derivative of the batch y (B, C, *spatial), a new tensor."""
        out = laplacian(y, self.ndim, self.periodic, self.order, self._dcoef)
        self.react_(y, out)
        return out

    def step(self, state: torch.Tensor, dt: float) -> torch.Tensor:
        """One classical RK4 step."""
        k = self.rhs(state)
        acc = k
        k = self.rhs(torch.add(state, k, alpha=0.5 * dt))
        acc = acc.add_(k, alpha=2.0)
        k = self.rhs(torch.add(state, k, alpha=0.5 * dt))
        acc.add_(k, alpha=2.0)
        k = self.rhs(torch.add(state, k, alpha=dt))
        acc.add_(k)
        return torch.add(state, acc, alpha=dt / 6.0)

    def observe(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each species by output name, (B, *spatial)."""
        return {name: state[:, i] for i, name in enumerate(self.species)}


@dataclass
class FitzHughNagumoConfig(SimConfig):
    """FitzHugh-Nagumo as in PDEBench's 2D diffusion-reaction data.

    u_t = du Lap u + u - u^3 - k - v, v_t = dv Lap v + u - v on [-1, 1]^2 with
    no-flux walls; u and v start as standard-normal noise per cell.
    """

    du: float = 1e-3
    dv: float = 5e-3
    k: float = 5e-3


class FitzHughNagumo2D(_ReactionDiffusion):
    """FitzHugh-Nagumo activator u / inhibitor v in 2D, no-flux boundaries (PDEBench diffusion-reaction)."""

    name = "fitzhugh_nagumo"
    config_cls = FitzHughNagumoConfig
    default_dt_save = 0.05
    default_cfl = 0.5
    ndim = 2
    periodic = False
    species = ("activator", "inhibitor")
    # |u| this large still leaves the cubic term inside RK4's stable range at cfl <= 1;
    # standard-normal starts and the cubic damping keep |u| well below it.
    u_bound: ClassVar[float] = 2.0

    config: FitzHughNagumoConfig

    def check_params(self) -> None:
        """Raise ParameterError for negative or non-finite diffusivities or a non-finite k."""
        c = self.config
        _check_finite_number("du", c.du, 0.0)
        _check_finite_number("dv", c.dv, 0.0)
        _check_finite_number("k", c.k)

    def diffusivities(self) -> tuple[float, float]:
        """du, dv."""
        return (float(self.config.du), float(self.config.dv))

    def reaction_bound(self) -> float:
        """Gershgorin bound of the reaction Jacobian for |u| <= u_bound."""
        return max(abs(1 - 3 * self.u_bound**2) + 1.0, 2.0)

    def initial_condition(self, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """Standard-normal u and v in every cell (2, n, n), as PDEBench draws them."""
        return torch.randn(2, self.n, self.n, generator=gen, dtype=torch.float64), {}

    def react_(self, y: torch.Tensor, out: torch.Tensor) -> None:
        """Add u - u^3 - k - v and u - v."""
        u, v = y[:, 0], y[:, 1]
        cubic = torch.mul(u, u).neg_().add_(1.0).mul_(u)  # u - u^3
        out[:, 0].add_(cubic).sub_(v).sub_(float(self.config.k))
        out[:, 1].add_(u).sub_(v)


@dataclass
class GrayScottConfig(SimConfig):
    """Gray-Scott as in The Well: A_t = dA Lap A - A B^2 + f (1 - A), B_t = dB Lap B + A B^2 - (f + k) B.

    Periodic [-1, 1]^2, dA and dB as in The Well. regime picks The Well's (f, k):
    gliders, bubbles, maze (alias stripes), worms, spirals (alias waves), spots;
    f and/or k given explicitly override the regime's values (the dataset is then
    named '<system>_custom'). initial: 'patches' (B = 0 plus a random number in
    [min_patches, max_patches] of squares or Gaussians of B at random places, half-width
    in [min_patch_size, max_patch_size]), 'fourier' (B = height where a random Fourier
    series of up to fourier_modes waves per box exceeds a random level, smoothed), or
    'mixed' (either, at random per trajectory). Where B is raised, A = 1 - 1.5 B.
    At these dA, dB patterns are ~0.1 wide: 128^2 resolves them; coarser grids pin them
    to the grid (squares) unless dA and dB grow as (128 / resolution)^2.
    """

    regime: str = "spots"
    f: float | None = None
    k: float | None = None
    dA: float = 2e-5
    dB: float = 1e-5
    initial: str = "mixed"
    fourier_modes: int = 6
    min_patches: int = 5
    max_patches: int = 20
    min_patch_size: float = 0.04
    max_patch_size: float = 0.12


@dataclass
class GrayScott3DConfig(GrayScottConfig):
    """Gray-Scott on the periodic cube [-1, 1]^3 (see GrayScottConfig).

    The default diffusivities are 16 times The Well's 2D ones, so that patterns
    (whose size scales as sqrt(d)) span several cells at 32^3-64^3: the dynamics
    equal The Well's in a box of side 0.5. Patch sizes and Fourier modes scale along.
    The default resolution is 32 (32^3 cells).
    """

    resolution: int = 32
    dA: float = 3.2e-4
    dB: float = 1.6e-4
    fourier_modes: int = 3
    min_patches: int = 3
    max_patches: int = 12
    min_patch_size: float = 0.12
    max_patch_size: float = 0.36


class GrayScott2D(_ReactionDiffusion):
    """Gray-Scott reaction-diffusion (species A, B) on the periodic square [-1, 1]^2."""

    name = "gray_scott"
    config_cls = GrayScottConfig
    default_dt_save = 50.0
    default_cfl = 0.7
    ndim = 2
    periodic = True
    order = 4
    species = ("A", "B")

    config: GrayScottConfig

    def __init__(self, config: GrayScottConfig) -> None:
        super().__init__(config)
        self.f, self.k = self.feed_kill
        self._tiny = 10.0 * math.sqrt(torch.finfo(self.dtype).tiny)

    def check_params(self) -> None:
        """Raise ParameterError for an unknown regime, f or k outside [0, 1], negative diffusivity or bad patches."""
        c = self.config
        if c.regime not in GRAY_SCOTT_REGIMES and c.regime not in GRAY_SCOTT_ALIASES:
            names = ", ".join([*GRAY_SCOTT_REGIMES, *GRAY_SCOTT_ALIASES])
            raise ParameterError(f"regime={c.regime!r} is unknown; use one of {names}.")
        for key in ("f", "k"):
            value = getattr(c, key)
            if value is not None:
                _check_finite_number(key, value, 0.0, 1.0)
        _check_finite_number("dA", c.dA, 0.0)
        _check_finite_number("dB", c.dB, 0.0)
        if c.initial not in INITIAL_KINDS:
            raise ParameterError(f"initial={c.initial!r} is unknown; use one of {', '.join(INITIAL_KINDS)}.")
        nyquist = c.resolution // 2
        if not isinstance(c.fourier_modes, int) or isinstance(c.fourier_modes, bool) or not 1 <= c.fourier_modes < nyquist:
            raise ParameterError(
                f"fourier_modes={c.fourier_modes!r} must be a whole number from 1 to {nyquist - 1} (below resolution/2)."
            )
        for key in ("min_patches", "max_patches"):
            value = getattr(c, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ParameterError(f"{key}={value!r} must be a whole number >= 0.")
        if c.max_patches < c.min_patches:
            raise ParameterError(f"max_patches={c.max_patches} must be >= min_patches={c.min_patches}.")
        _check_finite_number("min_patch_size", c.min_patch_size, 0.0, self.length / 2)
        _check_finite_number("max_patch_size", c.max_patch_size, c.min_patch_size, self.length / 2)

    @property
    def feed_kill(self) -> tuple[float, float]:
        """The (f, k) in use: the regime's, overridden by explicit f or k."""
        c = self.config
        f0, k0 = GRAY_SCOTT_REGIMES[GRAY_SCOTT_ALIASES.get(c.regime, c.regime)]
        return (float(c.f) if c.f is not None else f0, float(c.k) if c.k is not None else k0)

    def dataset_name(self) -> str:
        """gray_scott[_3d]_<regime>, or _custom when f or k is set explicitly."""
        c = self.config
        return f"{self.name}_{'custom' if c.f is not None or c.k is not None else c.regime}"

    def parameters(self) -> dict[str, Any]:
        """Config parameters with the effective f and k filled in."""
        run = {f.name for f in fields(SimConfig)}
        params = {k: v for k, v in asdict(self.config).items() if k not in run}
        params["f"], params["k"] = self.feed_kill
        return params

    def diffusivities(self) -> tuple[float, float]:
        """dA, dB."""
        return (float(self.config.dA), float(self.config.dB))

    def reaction_bound(self) -> float:
        """Gershgorin bound of the reaction Jacobian for A, B >= 0, A + B <= 1 (kept by the dynamics)."""
        f, k = self.feed_kill
        return 1.0 + f + k

    def initial_condition(self, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """A = 1 - 1.5 B, B from patches or a Fourier series; shape (2, *spatial), and initial_fourier (1 or 0)."""
        kind = self.config.initial
        if kind == "mixed":
            kind = "fourier" if bool(torch.rand(1, generator=gen) < 0.5) else "patches"
        b = self._fourier(gen) if kind == "fourier" else self._patches(gen)
        return torch.stack([1.0 - 1.5 * b, b]), {"initial_fourier": float(kind == "fourier")}

    def _fourier(self, gen: torch.Generator) -> torch.Tensor:
        """B: a random height in [0.25, 0.45] where a random periodic Fourier series exceeds a random level, else 0, smoothed."""
        c = self.config
        n, d, m = self.n, self.ndim, c.fourier_modes
        waves = torch.arange(-m, m + 1, dtype=torch.float64)
        coef = torch.randn((2 * m + 1,) * d + (2,), generator=gen, dtype=torch.float64)
        level = -0.5 + 1.5 * float(torch.rand(1, generator=gen, dtype=torch.float64))
        height = 0.25 + 0.2 * float(torch.rand(1, generator=gen, dtype=torch.float64))
        grid = torch.meshgrid(*([waves] * d), indexing="ij")
        keep = (sum(g**2 for g in grid) <= m * m).to(torch.float64)
        field = torch.complex(coef[..., 0] * keep, coef[..., 1] * keep)
        x = torch.as_tensor(self.centres(), dtype=torch.float64)
        phase = torch.exp(1j * math.pi * torch.outer(waves, x + 1.0))  # exp(2 pi i w (x + 1) / L), (2m+1, n)
        for _ in range(d):  # contract the leading wave axis; the grid axis goes last
            field = torch.tensordot(field, phase, dims=([0], [0]))
        g = field.real
        g = (g - g.mean()) / g.std().clamp_min(1e-300)
        return height * torch.sigmoid((g - level) * 8.0)

    def _patches(self, gen: torch.Generator) -> torch.Tensor:
        """B: random square or Gaussian patches of height 0.25-0.5 on B = 0, periodic-aware."""
        c = self.config
        n, d = self.n, self.ndim
        x = torch.as_tensor(self.centres(), dtype=torch.float64)
        count = int(torch.randint(c.min_patches, c.max_patches + 1, (1,), generator=gen))
        centres = -1.0 + self.length * torch.rand(count, d, generator=gen, dtype=torch.float64)
        sizes = c.min_patch_size + (c.max_patch_size - c.min_patch_size) * torch.rand(count, generator=gen, dtype=torch.float64)
        square = torch.rand(count, generator=gen, dtype=torch.float64) < 0.5
        level = 0.25 + 0.25 * torch.rand(count, generator=gen, dtype=torch.float64)  # peak B in [0.25, 0.5]
        b = torch.zeros((n,) * d, dtype=torch.float64)
        for i in range(count):
            # signed periodic distance along each axis, shape (n,)
            dist = [torch.remainder(x - centres[i, a] + self.length / 2, self.length) - self.length / 2 for a in range(d)]
            if bool(square[i]):
                inside = [(da.abs() <= sizes[i]).to(torch.float64) for da in dist]
                bump = inside[0]
                for a in range(1, d):
                    bump = bump.unsqueeze(-1) * inside[a].view((1,) * a + (n,))
            else:
                r2 = dist[0] ** 2
                for a in range(1, d):
                    r2 = r2.unsqueeze(-1) + (dist[a] ** 2).view((1,) * a + (n,))
                bump = torch.exp(-0.5 * r2 / sizes[i] ** 2)
            b = torch.maximum(b, level[i] * bump)
        return b

    def react_(self, y: torch.Tensor, out: torch.Tensor) -> None:
        """Add -A B^2 + f (1 - A) and A B^2 - (f + k) B."""
        f, k = self.f, self.k
        a, b = y[:, 0], y[:, 1]
        r = torch.mul(a, b).mul_(b)
        out[:, 0].sub_(r).add_(a, alpha=-f).add_(f)
        out[:, 1].add_(r).add_(b, alpha=-(f + k))

    def step(self, state: torch.Tensor, dt: float) -> torch.Tensor:
        """One RK4 step, then B below sqrt(tiny) set to 0 (B^2 would be subnormal, which is very slow on CPUs)."""
        new = super().step(state, dt)
        b = new[:, 1]
        b.masked_fill_(b.abs() < self._tiny, 0.0)
        return new


class GrayScott3D(GrayScott2D):
    """Gray-Scott reaction-diffusion (species A, B) on the periodic cube [-1, 1]^3."""

    name = "gray_scott_3d"
    config_cls = GrayScott3DConfig
    ndim = 3
    supported_resolutions = (8, 512)
