"""2D Navier-Stokes simulator: exact Taylor-Green decay, Kolmogorov forcing, decaying turbulence, errors, seeding."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from physviz.errors import ParameterError, SimulationError
from physviz.fields.simulate import simulate
from physviz.fields.simulate.run import make_solver


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small FFTs run faster on one thread and do not stall when the other core is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _run(regime: str, n: int = 1, **params: Any) -> Any:
    """A float64 run of one regime, no progress bar."""
    params.setdefault("dtype", "float64")
    params.setdefault("seed", 0)
    return simulate("navier_stokes", n, regime=regime, progress=False, **params)


def _wavenumbers(n: int, length: float = 2 * math.pi) -> tuple[np.ndarray, np.ndarray]:
    """kx (n, 1), ky (1, n) of a numpy fft2 grid."""
    k = np.fft.fftfreq(n, 1.0 / n) * 2 * math.pi / length
    return k[:, None], k[None, :]


def _energy(ds: Any) -> np.ndarray:
    """Mean kinetic energy <|u|^2>/2 per trajectory and frame."""
    return 0.5 * (ds.velocity_x.values**2 + ds.velocity_y.values**2).mean(axis=(-2, -1))


def _enstrophy(ds: Any) -> np.ndarray:
    """Mean enstrophy <omega^2>/2 per trajectory and frame."""
    return 0.5 * (ds.vorticity.values**2).mean(axis=(-2, -1))


def _simpson(f: np.ndarray, h: float) -> float:
    """Composite Simpson rule over an even number of intervals."""
    assert (len(f) - 1) % 2 == 0
    return h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())


@pytest.mark.parametrize("viscosity,drag,k", [(0.01, 0.0, 2), (0.05, 0.1, 1)])
def test_taylor_green_decays_at_the_analytic_rate(viscosity, drag, k):
    amplitude = 1.3
    ds = _run("taylor_green", resolution=64, steps=6, dt_save=0.5, viscosity=viscosity, drag=drag,
              taylor_green_wavenumber=k, taylor_green_amplitude=amplitude)
    assert ds.attrs["dataset_name"] == "navier_stokes_taylor_green"
    assert ds.attrs["boundary_conditions"] == {"x": "periodic", "y": "periodic"}
    x = ds.x.values
    assert np.allclose(x, (np.arange(64) + 0.5) * 2 * np.pi / 64)
    X, Y = np.meshgrid(x, ds.y.values, indexing="ij")
    decay = np.exp(-(2 * viscosity * k * k + drag) * ds.time.values)[:, None, None]
    exact = {
        "vorticity": 2 * k * amplitude * np.sin(k * X) * np.sin(k * Y),
        "velocity_x": amplitude * np.sin(k * X) * np.cos(k * Y),
        "velocity_y": -amplitude * np.cos(k * X) * np.sin(k * Y),
    }
    assert decay[-1, 0, 0] < 0.9  # a decay that a wrong rate would miss
    for name, shape in exact.items():
        want = decay * shape[None]
        got = ds[name].values[0]
        err = np.abs(got - want).max(axis=(1, 2)) / np.abs(want).max(axis=(1, 2))
        assert err.max() < 1e-9, (name, err)  # the integrating factor makes this exact to round-off
    kx, ky = _wavenumbers(64)
    u_hat, v_hat = (np.fft.fft2(ds[f].values, axes=(-2, -1)) for f in ("velocity_x", "velocity_y"))
    assert np.abs(kx * u_hat + ky * v_hat).max() < 1e-12 * np.abs(np.hypot(kx, ky) * u_hat).max()


def test_decaying_turbulence_loses_energy_and_enstrophy_and_keeps_its_budget():
    ds = _run("decaying", 2, resolution=64, steps=9, dt_save=0.25, viscosity=2e-3, rms_velocity=0.7, peak_wavenumber=5)
    u, v, w = ds.velocity_x.values, ds.velocity_y.values, ds.vorticity.values
    assert ds.attrs["dataset_name"] == "navier_stokes_decaying"
    # the requested rms velocity, sqrt(<|u|^2>), at t = 0
    rms0 = np.sqrt((u[:, 0] ** 2 + v[:, 0] ** 2).mean(axis=(-2, -1)))
    np.testing.assert_allclose(rms0, 0.7, rtol=1e-10)
    E, Z = _energy(ds), _enstrophy(ds)
    assert (np.diff(E, axis=1) < 0).all() and (np.diff(Z, axis=1) < 0).all()
    # the nonlinear terms conserve energy: dE/dt = -2 nu Z exactly
    for b in range(2):
        lost = E[b, 0] - E[b, -1]
        viscous = 2 * 2e-3 * _simpson(Z[b], 0.25)
        assert abs(lost - viscous) < 2e-4 * lost, (lost, viscous)
    # the enstrophy falls faster than viscosity alone would make it (the cascade is active)
    kx, ky = _wavenumbers(64)
    k2 = kx**2 + ky**2
    w0_hat = np.fft.fft2(w[0, 0])
    z_linear = 0.5 * (np.abs(w0_hat * np.exp(-2e-3 * k2 * 2.0)) ** 2).sum() / 64**4
    assert Z[0, -1] < 0.95 * z_linear
    # divergence-free velocity, spectrally, to round-off
    u_hat, v_hat = np.fft.fft2(u, axes=(-2, -1)), np.fft.fft2(v, axes=(-2, -1))
    div = np.abs(kx * u_hat + ky * v_hat).max()
    assert div < 1e-12 * np.abs(np.sqrt(k2) * u_hat).max()
    # vorticity is the curl of the velocity
    curl = np.fft.ifft2(1j * kx * v_hat - 1j * ky * u_hat, axes=(-2, -1)).real
    assert np.abs(curl - w).max() < 1e-10 * np.abs(w).max()
    # the initial energy spectrum peaks at the requested wavenumber
    e_hat = 0.5 * (np.abs(u_hat[:, 0]) ** 2 + np.abs(v_hat[:, 0]) ** 2).sum(axis=0)
    shells = np.rint(np.sqrt(k2)).astype(int)
    spectrum = np.bincount(shells.ravel(), weights=e_hat.ravel())
    assert abs(int(np.argmax(spectrum)) - 5) <= 1, spectrum[:10]
    # the cascade fills the resolved modes up to the 2/3-rule cutoff and none beyond it
    kmax = np.maximum(np.abs(kx), np.abs(ky))
    e_end = 0.5 * (np.abs(u_hat[:, -1]) ** 2 + np.abs(v_hat[:, -1]) ** 2).sum(axis=0)
    assert e_hat[kmax == 21].sum() < 1e-12 * e_hat.sum() < e_end[kmax == 21].sum()
    assert e_end[kmax >= 64 / 3].sum() < 1e-20 * e_end.sum()


def test_kolmogorov_flow_spins_up_to_the_laminar_profile():
    A, nf, nu, drag = 0.8, 3, 2e-3, 0.2
    ds = _run("kolmogorov", resolution=32, steps=5, dt_save=0.5, warmup=0.0, viscosity=nu, drag=drag,
              forcing_amplitude=A, forcing_wavenumber=nf, initial_noise=1e-3)
    assert ds.attrs["dataset_name"] == "navier_stokes_kolmogorov"
    t = ds.time.values
    y = ds.y.values
    u, v = ds.velocity_x.values[0], ds.velocity_y.values[0]
    a = 2 * (u * np.sin(nf * y)[None, None, :]).mean(axis=(1, 2))  # projection on sin(kf y)
    lam = nu * nf**2 + drag
    laminar = A / lam * (1 - np.exp(-lam * t))
    assert a[0] == pytest.approx(0.0, abs=1e-3)
    assert (a[1:] > 0).all()
    np.testing.assert_allclose(a[1:], laminar[1:], rtol=1e-3)
    # the rest of the flow stays at the noise level
    rest = u - a[:, None, None] * np.sin(nf * y)[None, None, :]
    assert np.abs(rest).max() < 0.02 and np.abs(v).max() < 0.02


def test_kolmogorov_turbulence_energy_input_balances_dissipation():
    A, nu, drag = 1.0, 1e-3, 0.1
    ds = _run("kolmogorov", resolution=32, steps=41, dt_save=0.05, warmup=12.0)
    y = ds.y.values
    u, v = ds.velocity_x.values[0], ds.velocity_y.values[0]
    assert np.sqrt(v**2).mean() > 0.3  # turbulent: the laminar flow has no cross-stream velocity
    E, Z = _energy(ds)[0], _enstrophy(ds)[0]
    injection = A * (u * np.sin(4 * y)[None, None, :]).mean(axis=(1, 2))
    sink = 2 * nu * Z + 2 * drag * E
    gain = _simpson(injection, 0.05)
    loss = _simpson(sink, 0.05)
    assert abs((E[-1] - E[0]) - (gain - loss)) < 5e-4 * loss, (E[-1] - E[0], gain, loss)


def test_bad_parameters_name_the_parameter():
    cases = [
        ({"viscosity": -1e-3}, "viscosity"),
        ({"resolution": 33}, "resolution"),
        ({"resolution": 14}, "resolution"),
        ({"resolution": 4}, "resolution"),
        ({"regime": "laminar"}, "regime"),
        ({"drag": -0.1}, "drag"),
        ({"peak_wavenumber": 0}, "peak_wavenumber"),
        ({"resolution": 32, "peak_wavenumber": 11}, "peak_wavenumber"),
        ({"regime": "kolmogorov", "resolution": 32, "forcing_wavenumber": 11}, "forcing_wavenumber"),
        ({"regime": "kolmogorov", "forcing_wavenumber": 2.5}, "forcing_wavenumber"),
        ({"regime": "taylor_green", "taylor_green_wavenumber": 0}, "taylor_green_wavenumber"),
        ({"rms_velocity": 0.0}, "rms_velocity"),
        ({"domain_length": -1.0}, "domain_length"),
        ({"reynolds": 100}, "reynolds"),
    ]
    for params, needle in cases:
        with pytest.raises(ParameterError, match=needle):
            make_solver("navier_stokes", **params)
    make_solver("navier_stokes", viscosity=0.0, resolution=16)  # the edge of the ranges is allowed


def test_fixed_dt_beyond_the_cfl_limit_is_refused_and_a_safe_one_runs():
    with pytest.raises(ParameterError, match=r"dt=0\.1 violates the CFL condition at solver step 0"):
        _run("decaying", resolution=32, steps=2, dt=0.1)
    ds = _run("decaying", resolution=32, steps=2, dt=0.01, dt_save=0.1)
    assert ds.attrs["source"]["solver_steps"] == 10


def test_an_overflowing_run_raises_simulation_error_naming_the_step():
    # float32 overflows in the nonlinear products of a velocity of 1e25
    with pytest.raises(SimulationError, match="navier_stokes went unstable at solver step 1 "):
        _run("decaying", resolution=16, steps=2, dtype="float32", rms_velocity=1e25)


def test_seeding_trajectories_and_batch_size():
    kw = dict(resolution=32, steps=3, dt_save=0.2)
    a = _run("decaying", 3, seed=5, **kw)
    b = _run("decaying", 3, seed=5, **kw)
    np.testing.assert_array_equal(a.vorticity.values, b.vorticity.values)
    c = _run("decaying", 3, seed=6, **kw)
    assert np.abs(a.vorticity.values[:, 0] - c.vorticity.values[:, 0]).max() > 0.1
    w0 = a.vorticity.values[:, 0]
    assert min(np.abs(w0[i] - w0[j]).max() for i in range(3) for j in range(i)) > 0.1
    # with a fixed step, batch composition cannot matter at all
    fixed = dict(kw, dt=0.01)
    one = _run("decaying", 3, seed=5, batch_size=1, **fixed)
    three = _run("decaying", 3, seed=5, batch_size=3, **fixed)
    np.testing.assert_allclose(one.vorticity.values, three.vorticity.values, rtol=0, atol=1e-12)
    # with the automatic step the batch shares the smallest stable step: equal to time-stepping error
    auto1 = _run("decaying", 3, seed=5, batch_size=1, **kw)
    np.testing.assert_array_equal(auto1.vorticity.values[:, 0], a.vorticity.values[:, 0])
    np.testing.assert_allclose(auto1.vorticity.values, a.vorticity.values, rtol=0, atol=2e-4 * np.abs(w0).max())
    # float32 runs follow the float64 ones
    f32 = _run("decaying", 3, seed=5, dtype="float32", **kw)
    assert f32.vorticity.dtype == np.float32
    np.testing.assert_allclose(f32.vorticity.values, a.vorticity.values, rtol=0, atol=1e-5 * np.abs(w0).max())


def test_cached_first_stage_follows_the_state():
    solver = make_solver("navier_stokes", resolution=32, dtype="float64")
    state = solver.initial_condition(torch.Generator().manual_seed(1))[0][None]
    dt = solver.max_dt(state)
    assert 0 < dt <= solver.dt_save
    fresh = solver.step(state.clone(), dt)
    again = solver.step(state, dt)
    torch.testing.assert_close(again, fresh, rtol=0, atol=1e-12)
    solver.max_dt(state)
    state.mul_(2)  # an in-place change must not reuse the cached stage
    doubled = solver.step(state, dt)
    torch.testing.assert_close(doubled, solver.step(state.clone(), dt), rtol=0, atol=1e-12)
    assert not torch.allclose(doubled, 2 * fresh)  # the advection is quadratic
    quiet = torch.zeros_like(state)
    assert solver.max_dt(quiet) == solver.dt_save  # a fluid at rest still advances
    fields = solver.observe(again)
    assert set(fields) == {"vorticity", "velocity_x", "velocity_y"} and fields["velocity_x"].shape == (1, 32, 32)


def test_regime_defaults():
    kolmogorov = make_solver("navier_stokes", regime="kolmogorov").config
    assert (kolmogorov.drag, kolmogorov.warmup) == (0.1, 15.0)  # saved frames start in the turbulent state
    decaying = make_solver("navier_stokes").config
    assert (decaying.regime, decaying.drag, decaying.warmup, decaying.viscosity) == ("decaying", 0.0, 0.0, 1e-3)
    assert make_solver("navier_stokes", regime="kolmogorov", warmup=0.0, drag=0.3).config.warmup == 0.0


def test_nonlinear_term_is_the_dealiased_advection_and_conserves_energy_and_enstrophy():
    n = 32
    solver = make_solver("navier_stokes", resolution=n, dtype="float64")
    w = solver.initial_condition(torch.Generator().manual_seed(3))[0][0].numpy()
    got = solver._rhs(torch.fft.rfft2(torch.from_numpy(w))[None])[0].numpy()
    # independent advective form -(u d/dx + v d/dy) omega with the 2/3 rule, in numpy
    kx, ky = _wavenumbers(n)
    k2 = kx**2 + ky**2
    keep = (np.abs(kx) < n / 3) & (np.abs(ky) < n / 3)
    w_hat = np.fft.fft2(w) * keep
    psi_hat = np.where(k2 > 0, w_hat / np.where(k2 > 0, k2, 1), 0)
    u, v = (np.fft.ifft2(d * psi_hat).real for d in (1j * ky, -1j * kx))
    wx, wy = (np.fft.ifft2(d * w_hat).real for d in (1j * kx, 1j * ky))
    want = -np.fft.fft2(u * wx + v * wy) * keep
    assert np.abs(want).max() > 1.0
    np.testing.assert_allclose(got, want[:, : n // 2 + 1], rtol=0, atol=1e-12 * np.abs(want).max())
    # <psi N> = 0 and <omega N> = 0: the truncated advection moves energy and enstrophy, never makes them
    full = np.fft.ifft2(want).real
    scale = np.abs(full).max() * np.abs(w).max()
    assert abs((np.fft.ifft2(psi_hat).real * full).mean()) < 1e-13 * scale
    assert abs((w * full).mean()) < 1e-13 * scale
    assert abs((w * (u * wx)).mean()) > 1e-5 * scale  # each half alone does not conserve


@pytest.mark.parametrize("regime,params", [("decaying", {}), ("kolmogorov", {"warmup": 0.0, "initial_noise": 1.0})])
def test_time_stepping_converges_at_fourth_order(regime, params):
    ends = []
    for dt in (0.04, 0.02, 0.01, 0.005):
        ds = _run(regime, resolution=32, steps=2, dt_save=0.4, dt=dt, cfl=1.0, **params)
        ends.append(ds.vorticity.values[0, -1])
    diffs = [np.abs(a - b).max() for a, b in zip(ends, ends[1:])]
    orders = np.log2(np.array(diffs[:-1]) / np.array(diffs[1:]))
    assert ((orders > 3.7) & (orders < 4.4)).all(), (diffs, orders)
