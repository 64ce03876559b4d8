"""2D compressible Euler / Navier-Stokes: unsplit MUSCL-Hancock finite volumes with the HLLC Riemann solver."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from physviz.errors import ParameterError, SimulationError
from physviz.fields.simulate.base import SimConfig, Solver

REGIMES = ("low_mach", "high_mach", "riemann", "sod")
LIMITERS = ("minmod", "van_leer")
BOUNDARIES = ("periodic", "open")
REGIME_MACH = {"low_mach": 0.1, "high_mach": 1.0}
REGIME_DT_SAVE = {"low_mach": 0.05, "high_mach": 0.05, "riemann": 0.01, "sod": 0.01}

# Four-quadrant 2D Riemann problems of Lax & Liu (SIAM J. Sci. Comput. 19, 1998, 319-340), also
# Schulz-Rinne, Collins & Glaz (1993) and Kurganov & Tadmor (2002); gamma = 1.4, jump lines x = y = 0.5.
# Each entry: quadrant (1: x>.5,y>.5; 2: x<.5,y>.5; 3: x<.5,y<.5; 4: x>.5,y<.5) -> (rho, u, v, p).
RIEMANN_CONFIGS: dict[int, tuple[tuple[float, float, float, float], ...]] = {
    3: ((1.5, 0.0, 0.0, 1.5), (0.5323, 1.206, 0.0, 0.3), (0.138, 1.206, 1.206, 0.029), (0.5323, 0.0, 1.206, 0.3)),
    4: ((1.1, 0.0, 0.0, 1.1), (0.5065, 0.8939, 0.0, 0.35), (1.1, 0.8939, 0.8939, 1.1), (0.5065, 0.0, 0.8939, 0.35)),
    6: ((1.0, 0.75, -0.5, 1.0), (2.0, 0.75, 0.5, 1.0), (1.0, -0.75, 0.5, 1.0), (3.0, -0.75, -0.5, 1.0)),
    12: ((0.5313, 0.0, 0.0, 0.4), (1.0, 0.7276, 0.0, 1.0), (0.8, 0.0, 0.0, 1.0), (1.0, 0.0, 0.7276, 1.0)),
}
SOD_LEFT = (1.0, 0.0, 1.0)  # (rho, u, p) for x < 0.5
SOD_RIGHT = (0.125, 0.0, 0.1)


@dataclass
class CompressibleFlowConfig(SimConfig):
    """Compressible flow on the unit square (cells square, h = 1/resolution; ny cells along y).

    regime: low_mach | high_mach (PDEBench-like random periodic fields at rms Mach ~0.1 / ~1,
    drawn within +-mach_spread of `mach`), riemann (four-quadrant problem `riemann_config`,
    random among 3, 4, 6, 12 when None), sod (Sod's shock tube along x).
    gamma: ratio of specific heats (None: 5/3 for the random regimes, 1.4 for riemann and sod).
    eta, zeta: shear and bulk viscosity (0: Euler). boundary: periodic | open (None: the regime's).
    rho0, p0: background density and pressure; perturbation: relative amplitude of their
    random fluctuations, in [0, 1); max_wavenumber: highest Fourier mode of the random fields.
    """

    regime: str = "high_mach"
    gamma: float | None = None
    eta: float = 0.0
    zeta: float = 0.0
    limiter: str = "van_leer"
    boundary: str | None = None
    ny: int | None = None
    rho0: float = 1.0
    p0: float = 1.0
    perturbation: float = 0.2
    mach: float | None = None
    mach_spread: float = 0.2
    max_wavenumber: int = 4
    riemann_config: int | None = None
    compile: bool = False


def _limit(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    """Limited slope from backward and forward differences (minmod or van Leer)."""
    if kind == "minmod":
        return torch.minimum(a, b).clamp(min=0.0) + torch.maximum(a, b).clamp(max=0.0)
    aa, bb = a.abs(), b.abs()
    return (a * bb + aa * b) / (aa + bb + 1e-30)  # 2ab/(a+b) where ab > 0, else 0


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt of a positive tensor as x * rsqrt(x): torch's CPU sqrt opens a thread pool even for tiny tensors."""
    return x * torch.rsqrt(x)


def _pad(w: torch.Tensor, periodic: bool) -> torch.Tensor:
    """Two ghost cells per side of (B, C, nx, ny): periodic copies or zero-gradient (transmissive) ones."""
    if periodic:
        return F.pad(w, (2, 2, 2, 2), mode="circular")
    b, c, nx, ny = w.shape
    w = torch.cat((w[:, :, :1].expand(b, c, 2, ny), w, w[:, :, -1:].expand(b, c, 2, ny)), 2)
    return torch.cat((w[..., :1].expand(b, c, nx + 4, 2), w, w[..., -1:].expand(b, c, nx + 4, 2)), 3)


def _hllc(
    rl: torch.Tensor, nl: torch.Tensor, tl: torch.Tensor, pl: torch.Tensor,
    rr: torch.Tensor, nr: torch.Tensor, tr: torch.Tensor, pr: torch.Tensor, gamma: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """HLLC flux (mass, normal momentum, tangential momentum, energy) between left and right primitive states."""
    cl = _sqrt(gamma * pl / rl)
    cr = _sqrt(gamma * pr / rr)
    sl = torch.minimum(nl - cl, nr - cr)  # Davis wave-speed estimates
    sr = torch.maximum(nl + cl, nr + cr)
    dl = rl * (sl - nl)
    dr = rr * (sr - nr)
    ss = (pr - pl + nl * dl - nr * dr) / (dl - dr)  # contact speed
    left = ss >= 0  # the flux is taken from the upwind side of the contact
    rho = torch.where(left, rl, rr)
    un = torch.where(left, nl, nr)
    ut = torch.where(left, tl, tr)
    p = torch.where(left, pl, pr)
    sk = torch.where(left, sl, sr)
    s0 = torch.where(left, sl.clamp(max=0.0), sr.clamp(min=0.0))
    mn = rho * un
    e = p / (gamma - 1.0) + 0.5 * (mn * un + rho * ut * ut)
    chi = (sk - un) / (sk - ss)  # rho* / rho
    chi1 = chi - 1.0
    f_mass = mn + s0 * rho * chi1
    f_mn = mn * un + p + s0 * rho * (chi * ss - un)
    f_mt = ut * f_mass
    f_e = un * (e + p) + s0 * (chi1 * e + chi * (ss - un) * (rho * ss + p / (sk - un)))
    return f_mass, f_mn, f_mt, f_e


def _smooth_field(gen: torch.Generator, x: torch.Tensor, y: torch.Tensor, lx: float, ly: float, kmax: int) -> torch.Tensor:
    """A random periodic sum of Fourier modes (integer wavenumbers up to kmax, decaying amplitudes), zero mean."""
    k = torch.arange(-kmax, kmax + 1, dtype=torch.float64)
    kx, ky = torch.meshgrid(k, k, indexing="ij")
    kx, ky = kx.flatten(), ky.flatten()
    keep = (kx.abs() + ky.abs() > 0) & ((kx > 0) | ((kx == 0) & (ky > 0)))  # one of each +-k pair
    kx, ky = kx[keep], ky[keep]
    amp = torch.randn(kx.shape, generator=gen, dtype=torch.float64) / (1.0 + kx**2 + ky**2)
    phase = 2 * math.pi * torch.rand(kx.shape, generator=gen, dtype=torch.float64)
    ax = 2 * math.pi * kx[:, None] * x[None, :] / lx + phase[:, None]  # (modes, nx)
    ay = 2 * math.pi * ky[:, None] * y[None, :] / ly  # (modes, ny)
    # sin(ax + ay) = sin ax cos ay + cos ax sin ay, summed over modes as two matrix products
    return (amp[:, None] * torch.sin(ax)).T @ torch.cos(ay) + (amp[:, None] * torch.cos(ax)).T @ torch.sin(ay)


def _positive(face: torch.Tensor, centre: torch.Tensor, lazy: bool) -> torch.Tensor:
    """First order (the cell value) where a reconstructed density or pressure is not positive."""
    if lazy and float(face[:, 0::3].amin()) > 0:  # eager: skip the mask when all is well
        return face
    bad = (face[:, 0] <= 0) | (face[:, 3] <= 0)
    return torch.where(bad[:, None], centre, face)


def _viscous_flux(
    un: torch.Tensor, ut: torch.Tensor, axis: int, h: float, eta: float, zeta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Viscous stresses tau_nn, tau_nt and energy flux u.tau on the faces normal to `axis` (2: x, 3: y).

    un, ut: normal and tangential velocity (B, nx+2, ny+2) with one ghost layer; central
    differences give face-normal derivatives, tangential ones are averaged from the two cells.
    """
    a = axis - 1  # dims of the (B, X, Y) tensors: normal a, other o
    o = 3 - a
    n, m = un.shape[a], un.shape[o]
    un_i, ut_i = un.narrow(o, 1, m - 2), ut.narrow(o, 1, m - 2)
    un_hi, un_lo = un_i.narrow(a, 1, n - 1), un_i.narrow(a, 0, n - 1)
    ut_hi, ut_lo = ut_i.narrow(a, 1, n - 1), ut_i.narrow(a, 0, n - 1)
    dn_un = (un_hi - un_lo) / h
    dn_ut = (ut_hi - ut_lo) / h
    dt_un_c = un.narrow(o, 2, m - 2) - un.narrow(o, 0, m - 2)
    dt_ut_c = ut.narrow(o, 2, m - 2) - ut.narrow(o, 0, m - 2)
    dt_un = (dt_un_c.narrow(a, 1, n - 1) + dt_un_c.narrow(a, 0, n - 1)) / (4 * h)
    dt_ut = (dt_ut_c.narrow(a, 1, n - 1) + dt_ut_c.narrow(a, 0, n - 1)) / (4 * h)
    div = dn_un + dt_ut
    tau_nn = (2.0 * eta) * dn_un + (zeta - 2.0 / 3.0 * eta) * div
    tau_nt = eta * (dt_un + dn_ut)
    work = 0.5 * ((un_hi + un_lo) * tau_nn + (ut_hi + ut_lo) * tau_nt)
    return tau_nn, tau_nt, work


def muscl_hancock_step(
    state: torch.Tensor,
    dt: float | torch.Tensor,
    *,
    h: float,
    gamma: float,
    limiter: str = "van_leer",
    periodic: bool = True,
    eta: float = 0.0,
    zeta: float = 0.0,
    lazy: bool = True,
) -> torch.Tensor:
    """Advance conserved (B, 4, nx, ny) by dt on square cells of size h: limited primitive slopes,
    half-step primitive predictor, HLLC fluxes (+ viscous fluxes), conservative update."""
    g = gamma
    rho, mx, my, e = state.unbind(1)
    u = mx / rho
    v = my / rho
    p = (g - 1.0) * (e - 0.5 * (mx * u + my * v))
    w = _pad(torch.stack((rho, u, v, p), 1), periodic)
    # limited slopes on the core (nx+2, ny+2): interior cells plus one ghost layer
    dx_w = w[:, :, 1:, 1:-1] - w[:, :, :-1, 1:-1]
    dy_w = w[:, :, 1:-1, 1:] - w[:, :, 1:-1, :-1]
    sx = _limit(dx_w[:, :, :-1], dx_w[:, :, 1:], limiter)
    sy = _limit(dy_w[:, :, :, :-1], dy_w[:, :, :, 1:], limiter)
    wc = w[:, :, 1:-1, 1:-1]
    rho, u, v, p = wc.unbind(1)
    drx, dux, dvx, dpx = sx.unbind(1)
    dry, duy, dvy, dpy = sy.unbind(1)
    k = 0.5 * dt / h
    inv = 1.0 / rho
    gp = g * p
    # half-step predictor; x and y parts are summed last so the scheme is exactly x<->y symmetric
    wh = torch.stack(
        (
            rho - k * ((u * drx + rho * dux) + (v * dry + rho * dvy)),
            u - k * ((u * dux + dpx * inv) + v * duy),
            v - k * (u * dvx + (v * dvy + dpy * inv)),
            p - k * ((u * dpx + gp * dux) + (v * dpy + gp * dvy)),
        ),
        1,
    )
    sx *= 0.5
    sy *= 0.5
    # face states: x faces (nx+1, ny), y faces (nx, ny+1)
    xl = _positive((wh + sx)[:, :, :-1, 1:-1], wc[:, :, :-1, 1:-1], lazy)
    xr = _positive((wh - sx)[:, :, 1:, 1:-1], wc[:, :, 1:, 1:-1], lazy)
    yl = _positive((wh + sy)[:, :, 1:-1, :-1], wc[:, :, 1:-1, :-1], lazy)
    yr = _positive((wh - sy)[:, :, 1:-1, 1:], wc[:, :, 1:-1, 1:], lazy)
    fxm, fxu, fxv, fxe = _hllc(*xl.unbind(1), *xr.unbind(1), g)
    rl, ul, vl, pl = yl.unbind(1)
    rr, ur, vr, pr = yr.unbind(1)
    fym, fyv, fyu, fye = _hllc(rl, vl, ul, pl, rr, vr, ur, pr, g)  # normal velocity v, tangential u
    if eta > 0 or zeta > 0:
        uh, vh = wh[:, 1], wh[:, 2]
        t_nn, t_nt, t_e = _viscous_flux(uh, vh, 2, h, eta, zeta)
        fxu, fxv, fxe = fxu - t_nn, fxv - t_nt, fxe - t_e
        t_nn, t_nt, t_e = _viscous_flux(vh, uh, 3, h, eta, zeta)
        fyv, fyu, fye = fyv - t_nn, fyu - t_nt, fye - t_e
    fx = torch.stack((fxm, fxu, fxv, fxe), 1)
    fy = torch.stack((fym, fyu, fyv, fye), 1)
    div = (fx[:, :, 1:] - fx[:, :, :-1]) + (fy[:, :, :, 1:] - fy[:, :, :, :-1])
    return state - (dt / h) * div


_COMPILED: list[Any] = []


def _compiled_step() -> Any:
    """muscl_hancock_step through torch.compile (built once per process; guards recompile on new shapes)."""
    if not _COMPILED:
        _COMPILED.append(torch.compile(muscl_hancock_step, dynamic=False))
    return _COMPILED[0]


class CompressibleFlow2D(Solver):
    """Compressible Euler (or Navier-Stokes with eta, zeta) for an ideal gas; state (rho, rho u, rho v, E)."""

    name: ClassVar[str] = "euler"
    config_cls: ClassVar[type[SimConfig]] = CompressibleFlowConfig
    default_dt_save: ClassVar[float] = 0.05
    default_cfl: ClassVar[float] = 0.4
    ndim: ClassVar[int] = 2
    supported_resolutions: ClassVar[tuple[int, int] | None] = (16, 4096)

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config)
        cfg: CompressibleFlowConfig = self.config  # type: ignore[assignment]
        random = cfg.regime in REGIME_MACH
        self.gamma = float(cfg.gamma) if cfg.gamma is not None else (5.0 / 3.0 if random else 1.4)
        self.bc = cfg.boundary or ("periodic" if random else "open")
        self.nx = cfg.resolution
        self.ny = cfg.ny if cfg.ny is not None else cfg.resolution
        self.h = 1.0 / cfg.resolution
        self.viscous = cfg.eta > 0 or cfg.zeta > 0
        if cfg.dt_save is None:
            self.dt_save = REGIME_DT_SAVE[cfg.regime]
        self._compiled: Any = None

    def check_params(self) -> None:
        """Raise ParameterError naming the first bad parameter."""
        c: CompressibleFlowConfig = self.config  # type: ignore[assignment]
        if c.regime not in REGIMES:
            raise ParameterError(f"euler: regime={c.regime!r} is unknown; use one of {', '.join(REGIMES)}.")
        if c.gamma is not None and not (c.gamma > 1 and math.isfinite(c.gamma)):
            raise ParameterError(f"euler: gamma={c.gamma} must be a finite ratio of specific heats > 1 (e.g. 1.4 or 5/3).")
        for name in ("eta", "zeta"):
            v = getattr(c, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ParameterError(f"euler: {name}={v} must be a finite viscosity >= 0.")
        if c.limiter not in LIMITERS:
            raise ParameterError(f"euler: limiter={c.limiter!r} is unknown; use one of {', '.join(LIMITERS)}.")
        if c.boundary is not None and c.boundary not in BOUNDARIES:
            raise ParameterError(f"euler: boundary={c.boundary!r} is unknown; use 'periodic' or 'open'.")
        if c.ny is not None and not (isinstance(c.ny, int) and 2 <= c.ny <= 4096):
            raise ParameterError(f"euler: ny={c.ny} must be an integer between 2 and 4096 (None: square grid).")
        for name in ("rho0", "p0"):
            v = getattr(c, name)
            if not (v > 0 and math.isfinite(v)):
                raise ParameterError(f"euler: {name}={v} must be a finite positive {'density' if name == 'rho0' else 'pressure'}.")
        if not 0 <= c.perturbation < 1:
            raise ParameterError(f"euler: perturbation={c.perturbation} must be in [0, 1) so density and pressure stay positive.")
        if c.mach is not None and not (c.mach > 0 and math.isfinite(c.mach)):
            raise ParameterError(f"euler: mach={c.mach} must be a finite positive rms Mach number.")
        if not 0 <= c.mach_spread < 1:
            raise ParameterError(f"euler: mach_spread={c.mach_spread} must be in [0, 1).")
        if not (isinstance(c.max_wavenumber, int) and 1 <= c.max_wavenumber <= max(1, c.resolution // 4)):
            raise ParameterError(f"euler: max_wavenumber={c.max_wavenumber} must be an integer in [1, resolution/4].")
        if c.riemann_config is not None and c.riemann_config not in RIEMANN_CONFIGS:
            raise ParameterError(
                f"euler: riemann_config={c.riemann_config} is not available; use one of {sorted(RIEMANN_CONFIGS)} or None (random)."
            )

    def parameters(self) -> dict[str, Any]:
        """Constant parameters with the regime defaults filled in (None and other regimes' settings left out)."""
        params = super().parameters()
        params.update(gamma=self.gamma, boundary=self.bc, ny=self.ny)
        unused = {"compile"}
        if self.config.regime not in REGIME_MACH:  # type: ignore[attr-defined]
            unused |= {"rho0", "p0", "perturbation", "mach", "mach_spread", "max_wavenumber"}
        return {k: v for k, v in params.items() if v is not None and k not in unused}

    def coords(self) -> dict[str, np.ndarray]:
        """Cell centres: x in [0, 1], y in [0, ny/resolution]."""
        return {"x": (np.arange(self.nx) + 0.5) * self.h, "y": (np.arange(self.ny) + 0.5) * self.h}

    def boundary_conditions(self) -> dict[str, Any]:
        """The same condition on both axes."""
        return {"x": self.bc, "y": self.bc}

    # ---- initial conditions -------------------------------------------------
    def _conserved(self, rho: torch.Tensor, u: torch.Tensor, v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Conserved state (4, nx, ny) from primitive fields."""
        e = p / (self.gamma - 1.0) + 0.5 * rho * (u * u + v * v)
        return torch.stack((rho, rho * u, rho * v, e))

    def initial_condition(self, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """Random smooth fields (low/high Mach), a four-quadrant Riemann problem, or Sod's tube."""
        c: CompressibleFlowConfig = self.config  # type: ignore[assignment]
        xy = self.coords()
        x = torch.from_numpy(xy["x"])
        y = torch.from_numpy(xy["y"])
        shape = (self.nx, self.ny)
        if c.regime == "sod":
            left = (x < 0.5)[:, None].expand(shape)
            rho = torch.where(left, SOD_LEFT[0], SOD_RIGHT[0]).double()
            p = torch.where(left, SOD_LEFT[2], SOD_RIGHT[2]).double()
            zero = torch.zeros(shape, dtype=torch.float64)
            return self._conserved(rho, zero, zero, p), {}
        if c.regime == "riemann":
            if c.riemann_config is None:
                keys = sorted(RIEMANN_CONFIGS)
                number = keys[int(torch.randint(len(keys), (1,), generator=gen))]
            else:
                number = c.riemann_config
            states = torch.tensor(RIEMANN_CONFIGS[number], dtype=torch.float64)  # (4 quadrants, 4)
            right = (x > 0.5)[:, None].expand(shape)
            top = (y > 0.5)[None, :].expand(shape)
            quad = torch.where(top, torch.where(right, 0, 1), torch.where(right, 3, 2))
            prim = states[quad]  # (nx, ny, 4)
            return self._conserved(*prim.permute(2, 0, 1)), {"riemann_config": float(number)}
        lx, ly = self.nx * self.h, self.ny * self.h
        kmax = c.max_wavenumber

        def unit() -> torch.Tensor:
            f = _smooth_field(gen, x, y, lx, ly, kmax)
            return f / f.abs().max().clamp(min=1e-300)

        amp_rho, amp_p = (c.perturbation * torch.rand(2, generator=gen, dtype=torch.float64)).tolist()
        rho = c.rho0 * (1.0 + amp_rho * unit())
        p = c.p0 * (1.0 + amp_p * unit())
        u, v = unit(), unit()
        centre = c.mach if c.mach is not None else REGIME_MACH[c.regime]
        mach = centre * (1.0 + c.mach_spread * (2.0 * float(torch.rand((), generator=gen, dtype=torch.float64)) - 1.0))
        sound2 = self.gamma * p / rho
        scale = mach / torch.sqrt(((u * u + v * v) / sound2).mean())
        u, v = u * scale, v * scale
        return self._conserved(rho, u, v, p), {"mach": mach, "density_amplitude": amp_rho, "pressure_amplitude": amp_p}

    # ---- time stepping ------------------------------------------------------
    def _primitive(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rho, u, v, p) of a batch (B, 4, nx, ny)."""
        rho, mx, my, e = state.unbind(1)
        u = mx / rho
        v = my / rho
        p = (self.gamma - 1.0) * (e - 0.5 * (mx * u + my * v))
        return rho, u, v, p

    def _check_positive(self, rho: torch.Tensor, p: torch.Tensor) -> None:
        """SimulationError when any density or pressure is <= 0."""
        rmin, pmin = float(rho.min()), float(p.min())
        bad = [f"minimum {k} {v:.4g}" for k, v in (("density", rmin), ("pressure", pmin)) if v <= 0]
        if bad:
            raise SimulationError(
                f"euler: non-physical state, {' and '.join(bad)} (density and pressure must stay > 0); "
                "lower cfl, use limiter='minmod', or soften the initial condition."
            )

    def max_dt(self, state: torch.Tensor) -> float:
        """cfl * h / max(|u| + c, |v| + c), and the explicit viscous limit when viscous."""
        rho, u, v, p = self._primitive(state)
        self._check_positive(rho, p)
        c = _sqrt(self.gamma * p / rho)
        speed = float(torch.maximum(u.abs(), v.abs()).add_(c).max())
        dt = self.cfl * self.h / speed if speed > 0 else math.inf
        if self.viscous:
            cfg: CompressibleFlowConfig = self.config  # type: ignore[assignment]
            diff = (8.0 / 3.0 * cfg.eta + 2.0 * cfg.zeta) / float(rho.min())
            dt = min(dt, self.cfl * self.h * self.h / (2.0 * diff))
        return dt

    def step(self, state: torch.Tensor, dt: float) -> torch.Tensor:
        """One MUSCL-Hancock step: limited primitive slopes, half-step predictor, HLLC fluxes, conservative update."""
        c: CompressibleFlowConfig = self.config  # type: ignore[assignment]
        kw = dict(h=self.h, gamma=self.gamma, limiter=c.limiter, periodic=self.bc == "periodic", eta=c.eta, zeta=c.zeta)
        if c.compile:
            if self._compiled is None:
                self._compiled = _compiled_step()
            return self._compiled(state, torch.tensor(dt, dtype=torch.float64), lazy=False, **kw)
        return muscl_hancock_step(state, dt, **kw)

    def observe(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """density, pressure, velocity_x, velocity_y (refusing a state with rho <= 0 or p <= 0)."""
        rho, u, v, p = self._primitive(state)
        self._check_positive(rho, p)
        return {"density": rho, "pressure": p, "velocity_x": u, "velocity_y": v}
