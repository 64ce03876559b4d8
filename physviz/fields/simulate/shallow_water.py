"""2D shallow-water equations: well-balanced, positivity-preserving second-order finite volumes.

State per trajectory: (h, hu, hv, b) on an N x N cell-centred grid (x along dim -2,
y along dim -1); the bathymetry b is carried as a fourth channel and never changes.
Space: MUSCL reconstruction (generalized minmod) of h, u, v and the surface h + b,
the hydrostatic reconstruction of Audusse et al. (2004, SIAM J. Sci. Comput. 25)
with an HLL (or Rusanov) flux and the matching centred bathymetry source, so a
lake at rest is kept at rest and h stays >= 0 for cfl <= 1/2. Time: SSP-RK2 (Heun).
The step is dt = cfl * dx / (max(|u| + c) + max(|v| + c)), c = sqrt(g h).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from physviz.errors import ParameterError
from physviz.fields.simulate.base import SimConfig, Solver

REGIMES = ("dam_break", "lake_at_rest", "perturbation")
BOUNDARIES = ("open", "wall", "periodic")
FLUXES = ("hll", "rusanov")


@dataclass
class ShallowWaterConfig(SimConfig):
    """Shallow-water settings; ranges are sampled per trajectory (PDEBench radial dam break by default).

    dam_break: depth dam_height in [dam_height_min, dam_height_max] inside a centred
    circle of radius in [dam_radius_min, dam_radius_max], dam_outside elsewhere, flat bed.
    lake_at_rest: surface at lake_level over a random smooth bed (bump_count Gaussian
    bumps scaled so max |b| = bathymetry_amplitude). perturbation: the same lake plus a
    Gaussian hump of height in [1/2, 1] x perturbation_amplitude at a random place.
    """

    regime: str = "dam_break"
    boundary: str = "open"
    gravity: float = 1.0
    half_width: float = 2.5
    dam_radius_min: float = 0.3
    dam_radius_max: float = 0.7
    dam_height_min: float = 1.5
    dam_height_max: float = 2.5
    dam_outside: float = 1.0
    lake_level: float = 1.0
    bathymetry_amplitude: float = 0.5
    bump_count: int = 4
    bump_width_min: float = 0.3
    bump_width_max: float = 0.8
    perturbation_amplitude: float = 0.1
    perturbation_width: float = 0.2
    flux: str = "hll"
    limiter_theta: float = 1.3
    dry_tolerance: float = 1e-6


def _minmod(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """minmod(a, b): the smaller in magnitude when signs agree, else 0 (exactly odd and symmetric)."""
    return torch.clamp(a, b.clamp(max=0), b.clamp(min=0))


def _half_slope(dm: torch.Tensor, dp: torch.Tensor, theta: float) -> torch.Tensor:
    """Half the generalized-minmod slope, minmod(theta dm, (dm + dp)/2, theta dp) / 2; 0 at extrema.

    Face values q +- this stay between the neighbouring cell averages for theta <= 2.
    """
    return _minmod((dm + dp).mul_(0.25), _minmod(dm, dp).mul_(0.5 * theta))


def _ghost_index(n: int, bc: str) -> torch.Tensor:
    """Interior cell feeding each of the n + 4 padded cells (two ghosts per side)."""
    i = torch.arange(-2, n + 2)
    if bc == "periodic":
        return i % n
    if bc == "open":
        return i.clamp(0, n - 1)
    return torch.where(i < 0, -i - 1, torch.where(i >= n, 2 * n - 1 - i, i))  # wall: mirror


class ShallowWater2D(Solver):
    """2D shallow water (h, hu, hv) over a bathymetry b, outputs height and velocity."""

    name: ClassVar[str] = "shallow_water"
    config_cls: ClassVar[type[SimConfig]] = ShallowWaterConfig
    default_dt_save: ClassVar[float] = 0.03
    default_cfl: ClassVar[float] = 0.45
    ndim: ClassVar[int] = 2

    config: ShallowWaterConfig

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config)
        cfg = self.config
        n = cfg.resolution
        self.dx = 2.0 * cfg.half_width / n
        self.g = float(cfg.gravity)
        self.eps = float(cfg.dry_tolerance)
        self._idx = _ghost_index(n, cfg.boundary).to(self.device)
        self._wall = cfg.boundary == "wall"

    def check_params(self) -> None:
        """Refuse unknown regimes/boundaries and non-physical values, naming the parameter."""
        c: ShallowWaterConfig = self.config  # type: ignore[assignment]
        if c.regime not in REGIMES:
            raise ParameterError(f"regime={c.regime!r} is not a shallow_water regime; use one of {', '.join(REGIMES)}.")
        if c.boundary not in BOUNDARIES:
            raise ParameterError(f"boundary={c.boundary!r} is not a boundary condition; use one of {', '.join(BOUNDARIES)}.")
        if c.flux not in FLUXES:
            raise ParameterError(f"flux={c.flux!r} is not a numerical flux; use one of {', '.join(FLUXES)}.")
        if not (math.isfinite(c.gravity) and c.gravity > 0):
            raise ParameterError(f"gravity={c.gravity} must be a positive finite number.")
        if not (math.isfinite(c.half_width) and c.half_width > 0):
            raise ParameterError(f"half_width={c.half_width} must be positive (the domain is [-half_width, half_width]^2).")
        if not 0 < c.dam_radius_min <= c.dam_radius_max < c.half_width:
            raise ParameterError(
                f"dam_radius_min={c.dam_radius_min}, dam_radius_max={c.dam_radius_max} must satisfy "
                f"0 < dam_radius_min <= dam_radius_max < half_width={c.half_width}."
            )
        if not 0 < c.dam_height_min <= c.dam_height_max < math.inf:
            raise ParameterError(
                f"dam_height_min={c.dam_height_min}, dam_height_max={c.dam_height_max} must be positive heights "
                "with dam_height_min <= dam_height_max."
            )
        if not 0 <= c.dam_outside < math.inf:
            raise ParameterError(f"dam_outside={c.dam_outside} must be a height >= 0 (0 is a dry bed).")
        if not 0 < c.lake_level < math.inf:
            raise ParameterError(f"lake_level={c.lake_level} must be a positive height.")
        if not 0 <= c.bathymetry_amplitude < c.lake_level:
            raise ParameterError(
                f"bathymetry_amplitude={c.bathymetry_amplitude} must be in [0, lake_level={c.lake_level}) "
                "so the lake has positive depth everywhere."
            )
        if int(c.bump_count) != c.bump_count or c.bump_count < 1:
            raise ParameterError(f"bump_count={c.bump_count} must be an integer >= 1.")
        if not 0 < c.bump_width_min <= c.bump_width_max < math.inf:
            raise ParameterError(
                f"bump_width_min={c.bump_width_min}, bump_width_max={c.bump_width_max} must be positive with min <= max."
            )
        if not 0 <= c.perturbation_amplitude < math.inf:
            raise ParameterError(f"perturbation_amplitude={c.perturbation_amplitude} must be a height >= 0.")
        if not 0 < c.perturbation_width < math.inf:
            raise ParameterError(f"perturbation_width={c.perturbation_width} must be positive.")
        if not 1 <= c.limiter_theta <= 2:
            raise ParameterError(f"limiter_theta={c.limiter_theta} must be in [1, 2] (1: minmod, 2: MC).")
        if not 0 < c.dry_tolerance < 1:
            raise ParameterError(f"dry_tolerance={c.dry_tolerance} must be in (0, 1).")

    # ---- grid, boundary conditions, initial conditions -------------------------------------

    def coords(self) -> dict[str, np.ndarray]:
        """Cell centres of [-half_width, half_width] in x and y."""
        n, L = self.config.resolution, self.config.half_width
        x = -L + (np.arange(n) + 0.5) * (2.0 * L / n)
        return {"x": x, "y": x.copy()}

    def boundary_conditions(self) -> dict[str, Any]:
        """The configured condition on both axes."""
        return {"x": self.config.boundary, "y": self.config.boundary}

    def _mesh(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell-centre coordinates X, Y as (N, N) float64 tensors (x along dim 0)."""
        x = torch.from_numpy(self.coords()["x"])
        return torch.meshgrid(x, x, indexing="ij")

    def _bathymetry(self, gen: torch.Generator, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """Random smooth bed: Gaussian bumps of random sign, scaled to max |b| = bathymetry_amplitude."""
        c = self.config
        k = int(c.bump_count)
        u = torch.rand(k, 4, generator=gen, dtype=torch.float64)
        cx = (2 * u[:, 0] - 1) * 0.7 * c.half_width
        cy = (2 * u[:, 1] - 1) * 0.7 * c.half_width
        w = c.bump_width_min + (c.bump_width_max - c.bump_width_min) * u[:, 2]
        amp = 2 * u[:, 3] - 1
        r2 = (X[None] - cx[:, None, None]) ** 2 + (Y[None] - cy[:, None, None]) ** 2
        bed = (amp[:, None, None] * torch.exp(-r2 / (2 * w[:, None, None] ** 2))).sum(0)
        peak = float(bed.abs().max())
        return bed * (c.bathymetry_amplitude / peak) if peak > 0 else bed

    def initial_condition(self, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """One trajectory's (h, hu, hv, b) and its random parameters."""
        c = self.config
        X, Y = self._mesh()
        params: dict[str, float] = {}
        if c.regime == "dam_break":
            u = torch.rand(2, generator=gen, dtype=torch.float64)
            r = c.dam_radius_min + (c.dam_radius_max - c.dam_radius_min) * float(u[0])
            h_in = c.dam_height_min + (c.dam_height_max - c.dam_height_min) * float(u[1])
            h = torch.where(X**2 + Y**2 < r * r, h_in, float(c.dam_outside))
            b = torch.zeros_like(h)
            params = {"dam_radius": r, "dam_height": h_in}
        else:
            b = self._bathymetry(gen, X, Y)
            h = c.lake_level - b
            if c.regime == "perturbation":
                u = torch.rand(3, generator=gen, dtype=torch.float64)
                px = float((2 * u[0] - 1) * 0.5 * c.half_width)
                py = float((2 * u[1] - 1) * 0.5 * c.half_width)
                a = float(c.perturbation_amplitude * (0.5 + 0.5 * u[2]))
                h = h + a * torch.exp(-((X - px) ** 2 + (Y - py) ** 2) / (2 * c.perturbation_width**2))
                params = {"perturbation_x": px, "perturbation_y": py, "perturbation_amplitude": a}
        zero = torch.zeros_like(h)
        return torch.stack([h, zero, zero.clone(), b]), params

    # ---- numerics ---------------------------------------------------------------------------

    def _inv_depth(self, h: torch.Tensor) -> torch.Tensor:
        """1/h for wet cells, smoothly going to 0 below dry_tolerance (Kurganov-Petrova desingularization)."""
        h2 = h * h
        return 2.0 * h / (h2 + h2.clamp(min=self.eps * self.eps))

    def _sweep(self, q: torch.Tensor, normal: int, flat: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rates times dx of (h, h u_n, h u_t) from fluxes along dim -2 of padded primitives.

        q is (B, C, N+4, N) with channels (h, u, v[, eta = h + b]); `normal` is the channel
        of the velocity normal to the faces. flat skips the bathymetry terms (b == 0).
        """
        g, theta = self.g, self.config.limiter_theta
        n = q.shape[-2] - 4
        d = q.diff(dim=-2)  # n + 3 differences
        half = _half_slope(d[..., :-1, :], d[..., 1:, :], theta)  # padded cells 1 .. n+2
        qc = q[..., 1:-1, :]
        east = (qc + half)[..., :-1, :]  # left state of faces 0..n (face k: cells k-1 | k)
        west = (qc - half)[..., 1:, :]  # right state of faces 0..n
        tang = 3 - normal
        hL, hR = east[:, 0].clamp(min=0), west[:, 0].clamp(min=0)
        uL, uR = east[:, normal], west[:, normal]
        tL, tR = east[:, tang], west[:, tang]
        if flat:
            hLs, hRs = hL, hR
        else:  # hydrostatic reconstruction (Audusse et al. 2004) with b = eta - h at the faces
            db = (west[:, 3] - west[:, 0]) - (east[:, 3] - east[:, 0])
            hLs = (hL - db.clamp(min=0)).clamp(min=0)
            hRs = (hR + db.clamp(max=0)).clamp(min=0)
        qL, qR = hLs * uL, hRs * uR
        pL, pR = (0.5 * g) * hLs.square(), (0.5 * g) * hRs.square()
        cL, cR = (g * hLs).sqrt(), (g * hRs).sqrt()
        # Both fluxes read F = f_L w_L - f_R w_R + (U_R - U_L) w_c, so per component
        # F_h = mL - mR, F_t = tL mL - tR mR, F_n = uL mL - uR mR + P.
        if self.config.flux == "hll":
            sL = torch.minimum(uL - cL, uR - cR).clamp_(max=0)
            sR = torch.maximum(uL + cL, uR + cR).clamp_(min=0)
            inv = (sR - sL).clamp_(min=torch.finfo(q.dtype).tiny).reciprocal_()
            wa, wb, wc = sR * inv, sL * inv, (sL * sR).mul_(inv)  # products kept mirror-symmetric
            mL = torch.addcmul(qL * wa, hLs, wc, value=-1)
            mR = torch.addcmul(qR * wb, hRs, wc, value=-1)
            P = pL * wa - pR * wb
        else:  # Rusanov
            a = torch.maximum(uL.abs() + cL, uR.abs() + cR)
            mL = torch.addcmul(0.5 * qL, a, hLs, value=0.5)
            mR = torch.addcmul(-0.5 * qR, a, hRs, value=0.5)
            P = 0.5 * (pL + pR)
        Fh = mL - mR
        Ft = tL * mL - tR * mR  # no fused multiply-add here: keeps x -> -x symmetry exact
        Fn = (uL * mL - uR * mR).add_(P)
        r_h = Fh[..., :-1, :] - Fh[..., 1:, :]
        r_t = Ft[..., :-1, :] - Ft[..., 1:, :]
        if flat:
            r_n = Fn[..., :-1, :] - Fn[..., 1:, :]
        else:
            # The left cell sees Fn + g/2 (hL^2 - hL*^2), the right cell Fn + g/2 (hR^2 - hR*^2),
            # and each cell the centred source g/2 (h_W + h_E)(b_W - b_E) = g h (s_h - s_eta).
            mom_minus = Fn + (0.5 * g) * (hL.square() - hLs.square())
            mom_plus = Fn + (0.5 * g) * (hR.square() - hRs.square())
            s_in = half[..., 1:-1, :]
            r_n = mom_plus[..., :-1, :] - mom_minus[..., 1:, :]
            r_n += (2 * g) * q[:, 0, 2:-2] * (s_in[:, 0] - s_in[:, 3])
        return r_h, r_n, r_t

    def _rates(
        self, h: torch.Tensor, hu: torch.Tensor, hv: torch.Tensor, b: torch.Tensor, flat: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """dx times d/dt of (h, hu, hv) for (B, N, N) fields."""
        inv = self._inv_depth(h)
        w = torch.stack([h, hu * inv, hv * inv] if flat else [h, hu * inv, hv * inv, h + b], 1)
        wx = w.index_select(-2, self._idx)  # (B, C, N+4, N), padded along x
        wy = w.transpose(-1, -2).index_select(-2, self._idx)  # (B, C, N+4, N), padded along y, y first
        if self._wall:  # the normal velocity changes sign in the ghost cells
            for q, c in ((wx, 1), (wy, 2)):
                q[:, c, :2] *= -1
                q[:, c, -2:] *= -1
        xh, xu, xv = self._sweep(wx, 1, flat)
        yh, yv, yu = self._sweep(wy, 2, flat)
        return xh.add_(yh.transpose(-1, -2)), xu.add_(yu.transpose(-1, -2)), xv.add_(yv.transpose(-1, -2))

    def max_dt(self, state: torch.Tensor) -> float:
        """cfl * dx / (max(|u| + c) + max(|v| + c)); cfl <= 1/2 keeps h >= 0."""
        h = state[:, 0]
        inv = self._inv_depth(h)
        c = (self.g * h.clamp(min=0)).sqrt()
        ax = ((state[:, 1] * inv).abs() + c).amax()
        ay = ((state[:, 2] * inv).abs() + c).amax()
        speed = float(ax + ay)
        return self.cfl * self.dx / max(speed, 1e-12)

    def step(self, state: torch.Tensor, dt: float) -> torch.Tensor:
        """One SSP-RK2 (Heun) step; b is carried unchanged, near-dry momentum is desingularized."""
        h, hu, hv, b = state.unbind(1)
        flat = not bool(b.any())
        k = dt / self.dx
        rh, ru, rv = self._rates(h, hu, hv, b, flat)
        h1 = torch.add(h, rh, alpha=k).clamp_(min=0)
        hu1 = torch.add(hu, ru, alpha=k)
        hv1 = torch.add(hv, rv, alpha=k)
        rh, ru, rv = self._rates(h1, hu1, hv1, b, flat)
        out = torch.empty_like(state)
        h2 = out[:, 0]
        torch.add(h + h1, rh, alpha=k, out=h2).mul_(0.5).clamp_(min=0)
        hu2 = torch.add(hu + hu1, ru, alpha=k).mul_(0.5)
        hv2 = torch.add(hv + hv1, rv, alpha=k).mul_(0.5)
        dry = h2 < self.eps
        damp = h2 * self._inv_depth(h2)
        torch.where(dry, hu2 * damp, hu2, out=out[:, 1])
        torch.where(dry, hv2 * damp, hv2, out=out[:, 2])
        out[:, 3] = b
        return out

    def observe(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """Depth h and velocity (u, v), zero in dry cells."""
        h = state[:, 0]
        inv = self._inv_depth(h)
        return {"height": h, "velocity_x": state[:, 1] * inv, "velocity_y": state[:, 2] * inv}
