"""Incompressible 2D Navier-Stokes on a periodic square: pseudo-spectral vorticity form, integrating-factor RK4."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from physviz.errors import ParameterError
from physviz.fields.simulate.base import SimConfig, Solver

REGIMES = ("decaying", "kolmogorov", "taylor_green")
KOLMOGOROV_WARMUP = 15.0


@dataclass
class NavierStokesConfig(SimConfig):
    """Parameters of 2D incompressible Navier-Stokes (wavenumbers count waves per box side).

    decaying: random vorticity, energy spectrum k^4 exp(-2 (k/k0)^2) peaked at
    peak_wavenumber, scaled to rms_velocity (rms of |u|). kolmogorov: body force
    forcing_amplitude * sin(2 pi n y / L) along x with n = forcing_wavenumber, linear
    drag, started from rest plus noise of rms velocity initial_noise. taylor_green:
    vorticity 2 k a sin(kx) sin(ky) with k = taylor_green_wavenumber, a = taylor_green_amplitude.
    drag: linear friction rate (None: 0.1 for kolmogorov, 0 otherwise). warmup
    (None: 15 time units for kolmogorov, past the spin-up from rest and the
    instability of the laminar flow, so saved frames are statistically steady; 0 otherwise).
    """

    warmup: float | None = None  # type: ignore[assignment]
    regime: str = "decaying"
    viscosity: float = 1e-3
    domain_length: float = 2 * math.pi
    drag: float | None = None
    peak_wavenumber: float = 4.0
    rms_velocity: float = 1.0
    forcing_amplitude: float = 1.0
    forcing_wavenumber: int = 4
    initial_noise: float = 0.01
    taylor_green_wavenumber: int = 1
    taylor_green_amplitude: float = 1.0

    def __post_init__(self) -> None:
        """Resolve the regime's default drag and warmup."""
        if self.drag is None:
            self.drag = 0.1 if self.regime == "kolmogorov" else 0.0
        if self.warmup is None:
            self.warmup = KOLMOGOROV_WARMUP if self.regime == "kolmogorov" else 0.0


Grid = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _wavenumbers(n: int, length: float, dtype: torch.dtype, device: torch.device) -> Grid:
    """Physical wavenumbers kx (n, 1), ky (1, n//2+1) of an rfft2 grid, and the 2/3-rule mask."""
    mx = torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64)
    my = torch.fft.rfftfreq(n, 1.0 / n, dtype=torch.float64)
    mask = (mx.abs()[:, None] < n / 3) & (my.abs()[None, :] < n / 3)
    scale = 2 * math.pi / length
    kx = (mx * scale)[:, None].to(device=device, dtype=dtype)
    ky = (my * scale)[None, :].to(device=device, dtype=dtype)
    return kx, ky, mask.to(device)


def _spectral_ops(n: int, length: float, dtype: torch.dtype, device: torch.device) -> Grid:
    """Multipliers taking omega_hat to the (u, v) hats (2, n, m), |k|^2 and the mask.

    u = dpsi/dy, v = -dpsi/dx with psi_hat = omega_hat / |k|^2 (mean mode zero),
    truncated to the 2/3-rule modes.
    """
    kx, ky, mask = _wavenumbers(n, length, dtype, device)
    k2 = kx * kx + ky * ky
    inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, torch.ones_like(k2)), torch.zeros_like(k2))
    m = mask.to(dtype)
    ops = torch.stack([1j * ky * inv_k2 * m, -1j * kx * inv_k2 * m])
    return ops, k2, mask


class NavierStokes2D(Solver):
    """2D incompressible Navier-Stokes for vorticity on [0, L)^2, periodic, 2/3-rule dealiased."""

    name = "navier_stokes"
    config_cls = NavierStokesConfig
    default_dt_save = 0.2
    default_cfl = 0.5
    ndim = 2
    supported_resolutions = (16, 8192)
    resolution_multiple = 2

    config: NavierStokesConfig

    def __init__(self, config: NavierStokesConfig) -> None:
        super().__init__(config)
        c = self.config
        n = c.resolution
        self.n = n
        self.dx = c.domain_length / n
        self._cdtype = torch.complex128 if self.dtype == torch.float64 else torch.complex64
        ops, k2, mask = _spectral_ops(n, c.domain_length, self.dtype, self.device)
        self._ops = ops.to(self._cdtype)  # (2, n, m): omega_hat -> u_hat, v_hat
        self._linear = -(c.viscosity * k2) - float(c.drag)  # (n, m) exact linear decay rates
        kx, ky, _ = _wavenumbers(n, c.domain_length, self.dtype, self.device)
        m = mask.to(self.dtype)
        # -(u . grad) omega = -[(d_xx - d_yy)(uv) + d_xy(v^2 - u^2)] (Basdevant form: two products, two FFTs each way)
        nl = torch.stack([(kx * kx - ky * ky) * m, (kx * ky) * m])  # (2, n, m) on FT(uv), FT(v^2 - u^2)
        self._nl = nl.to(self._cdtype)  # complex, so products need no promotion copies
        self._forcing_hat: torch.Tensor | None = None
        if c.regime == "kolmogorov":
            kf = 2 * math.pi * c.forcing_wavenumber / c.domain_length
            y = torch.as_tensor(self._centres(), dtype=torch.float64)
            f = (-c.forcing_amplitude * kf * torch.cos(kf * y))[None, :].expand(n, n)  # curl of (A sin(kf y), 0)
            self._forcing_hat = (torch.fft.rfft2(f) * mask.cpu()).to(device=self.device, dtype=self._cdtype)
        self._cache: tuple[torch.Tensor, int, torch.Tensor, torch.Tensor | None, float | None] | None = None

    def check_params(self) -> None:
        """Raise ParameterError naming the first bad physical parameter."""
        c = self.config
        cut = c.resolution / 3
        if c.regime not in REGIMES:
            raise ParameterError(f"regime={c.regime!r} is unknown; use one of {', '.join(REGIMES)}.")
        if not (math.isfinite(c.viscosity) and c.viscosity >= 0):
            raise ParameterError(f"viscosity={c.viscosity} must be a finite number >= 0.")
        if not (math.isfinite(c.domain_length) and c.domain_length > 0):
            raise ParameterError(f"domain_length={c.domain_length} must be a positive number.")
        if not (math.isfinite(c.drag) and c.drag >= 0):
            raise ParameterError(f"drag={c.drag} must be a finite number >= 0.")
        if c.regime in ("decaying", "kolmogorov") and not 0 < c.peak_wavenumber < cut:
            raise ParameterError(
                f"peak_wavenumber={c.peak_wavenumber} must be in (0, {cut:.4g}), "
                "below the dealiasing cutoff resolution/3."
            )
        if not (math.isfinite(c.rms_velocity) and c.rms_velocity > 0):
            raise ParameterError(f"rms_velocity={c.rms_velocity} must be a positive number.")
        if not (math.isfinite(c.initial_noise) and c.initial_noise >= 0):
            raise ParameterError(f"initial_noise={c.initial_noise} must be a finite number >= 0.")
        if not math.isfinite(c.forcing_amplitude):
            raise ParameterError(f"forcing_amplitude={c.forcing_amplitude} must be a finite number.")
        if not math.isfinite(c.taylor_green_amplitude):
            raise ParameterError(f"taylor_green_amplitude={c.taylor_green_amplitude} must be a finite number.")
        for key, regime in (("forcing_wavenumber", "kolmogorov"), ("taylor_green_wavenumber", "taylor_green")):
            k = getattr(c, key)
            if int(k) != k or k < 1 or (c.regime == regime and not k < cut):
                raise ParameterError(
                    f"{key}={k} must be a whole number of waves per box, from 1 to below resolution/3 ({cut:.4g})."
                )

    def _centres(self) -> np.ndarray:
        """Cell-centre coordinates of one axis."""
        return (np.arange(self.n) + 0.5) * self.dx

    def coords(self) -> dict[str, np.ndarray]:
        """x and y cell centres in [0, L)."""
        x = self._centres()
        return {"x": x, "y": x.copy()}

    def boundary_conditions(self) -> dict[str, Any]:
        """Periodic on both axes."""
        return {"x": "periodic", "y": "periodic"}

    def _random_vorticity(self, gen: torch.Generator, urms: float) -> torch.Tensor:
        """Random isotropic vorticity (n, n), energy spectrum peaked at peak_wavenumber, rms |u| = urms."""
        c = self.config
        n = self.n
        noise = torch.randn(n, n, generator=gen, dtype=torch.float64)
        ops, k2, mask = _spectral_ops(n, c.domain_length, torch.float64, torch.device("cpu"))
        kmode = k2.sqrt() * (c.domain_length / (2 * math.pi))
        amp = kmode.pow(2.5) * torch.exp(-((kmode / c.peak_wavenumber) ** 2)) * mask  # |w_hat|^2 ~ k E(k)
        w_hat = torch.fft.rfft2(noise) * amp
        vel = torch.fft.irfft2(w_hat[None] * ops, s=(n, n))
        rms = float(vel.square().sum(0).mean().sqrt())
        return torch.fft.irfft2(w_hat, s=(n, n)) * (urms / rms if rms > 0 else 0.0)

    def initial_condition(self, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """Vorticity (1, n, n) in float64 for the regime; no random per-trajectory parameters."""
        c = self.config
        if c.regime == "taylor_green":
            k = 2 * math.pi * c.taylor_green_wavenumber / c.domain_length
            x = torch.as_tensor(self._centres(), dtype=torch.float64)
            s = torch.sin(k * x)
            w = 2 * k * c.taylor_green_amplitude * s[:, None] * s[None, :]
        elif c.regime == "decaying":
            w = self._random_vorticity(gen, c.rms_velocity)
        else:
            w = self._random_vorticity(gen, c.initial_noise)
            if c.initial_noise == 0:
                w = torch.zeros_like(w)
        return w[None], {}

    def _hat(self, state: torch.Tensor) -> torch.Tensor:
        """omega_hat (B, n, m) of a state, reusing the one the last step produced."""
        cache = self._cache
        if cache is not None and cache[0] is state and cache[1] == state._version:
            return cache[2]
        self._cache = None
        return torch.fft.rfft2(state[:, 0])

    def _velocity(self, w_hat: torch.Tensor) -> torch.Tensor:
        """u, v in physical space, (B, 2, n, n)."""
        return torch.fft.irfft2(w_hat.unsqueeze(1) * self._ops, s=(self.n, self.n))

    def _rhs(self, w_hat: torch.Tensor, vel: torch.Tensor | None = None) -> torch.Tensor:
        """Dealiased -(u . grad) omega plus forcing, in spectral space."""
        if vel is None:
            vel = self._velocity(w_hat)
        u, v = vel[:, 0], vel[:, 1]
        prod = torch.empty_like(vel)
        torch.mul(u, v, out=prod[:, 0])
        torch.mul(v - u, v + u, out=prod[:, 1])
        p_hat = torch.fft.rfft2(prod)
        out = p_hat[:, 0] * self._nl[0]
        out.addcmul_(p_hat[:, 1], self._nl[1])
        return out if self._forcing_hat is None else out.add_(self._forcing_hat)

    def _first_stage(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """omega_hat, the first RK stage and max(|u| + |v|) of a state (cached per state)."""
        w_hat = self._hat(state)
        cache = self._cache
        if cache is not None and cache[3] is not None and cache[4] is not None:
            return w_hat, cache[3], cache[4]
        vel = self._velocity(w_hat)
        speed = float((vel[:, 0].abs() + vel[:, 1].abs()).amax())
        k1 = self._rhs(w_hat, vel)
        self._cache = (state, state._version, w_hat, k1, speed)
        return w_hat, k1, speed

    def max_dt(self, state: torch.Tensor) -> float:
        """cfl * dx / max(|u| + |v|), at most dt_save (the viscous term is integrated exactly)."""
        _, _, speed = self._first_stage(state)
        if not math.isfinite(speed):
            return math.nan
        return self.dt_save if speed == 0 else min(self.cfl * self.dx / speed, self.dt_save)

    def step(self, state: torch.Tensor, dt: float) -> torch.Tensor:
        """One integrating-factor RK4 step (viscosity and drag exact, advection and forcing RK4)."""
        w, k1, _ = self._first_stage(state)
        eh = torch.exp(self._linear * (0.5 * dt)).to(self._cdtype)  # exp(L dt/2); L = -nu k^2 - drag
        h = 0.5 * dt
        k2 = self._rhs(torch.add(w, k1, alpha=h).mul_(eh))
        ew = eh * w
        k3 = self._rhs(torch.add(ew, k2, alpha=h))
        k4 = self._rhs(torch.add(ew, k3, alpha=dt).mul_(eh))
        # e w + dt/6 (e k1 + 2 eh (k2 + k3) + k4), with e = eh^2
        new = torch.add(w, k1, alpha=dt / 6).mul_(eh).add_(k2, alpha=dt / 3).add_(k3, alpha=dt / 3)
        new.mul_(eh).add_(k4, alpha=dt / 6)
        out = torch.fft.irfft2(new, s=(self.n, self.n)).unsqueeze(1)
        self._cache = (out, out._version, new, None, None)
        return out

    def observe(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """vorticity, velocity_x, velocity_y, each (B, n, n)."""
        w_hat = self._hat(state)
        vel = self._velocity(w_hat)
        return {"vorticity": state[:, 0], "velocity_x": vel[:, 0], "velocity_y": vel[:, 1]}
