"""Compressible Euler simulator: exact Riemann solver, Sod convergence, conservation, random ICs, 2D Riemann, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from physviz.errors import ParameterError, SimulationError  # noqa: E402
from physviz.fields.simulate import simulate  # noqa: E402
from physviz.fields.simulate.euler import RIEMANN_CONFIGS  # noqa: E402
from physviz.fields.simulate.exact_riemann import exact_riemann, sample, star_state  # noqa: E402
from physviz.fields.simulate.run import _trajectory_generator, make_solver  # noqa: E402

SOD_L, SOD_R = (1.0, 0.0, 1.0), (0.125, 0.0, 0.1)


def _batch(solver, n: int, seed: int = 0) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """Initial states of trajectories 0..n-1 stacked, with their random parameters."""
    states, params = zip(*(solver.initial_condition(_trajectory_generator(seed, i)) for i in range(n)))
    return torch.stack(states).to(solver.dtype), list(params)


def test_exact_solver_matches_toro_star_values():
    p, u = star_state(SOD_L, SOD_R, gamma=1.4)
    assert p == pytest.approx(0.30313, abs=1e-5)
    assert u == pytest.approx(0.92745, abs=1e-5)
    rho, _, _ = sample(np.array([u - 1e-9, u + 1e-9]), SOD_L, SOD_R, 1.4)
    assert rho == pytest.approx([0.42632, 0.26557], abs=1e-5)  # Toro table 4.3, test 1
    p3, u3 = star_state((1.0, 0.0, 1000.0), (1.0, 0.0, 0.01), gamma=1.4)  # Toro test 3
    assert (p3, u3) == pytest.approx((460.894, 19.5975), rel=1e-5)
    p2, u2 = star_state((1.0, -2.0, 0.4), (1.0, 2.0, 0.4), gamma=1.4)  # Toro test 2: two rarefactions
    assert (p2, u2) == pytest.approx((0.00189, 0.0), abs=1e-5)
    # far from the waves the initial states survive; the solution is monotone in density for Sod
    rho, u, p = exact_riemann(np.linspace(0, 1, 401), 0.2, SOD_L, SOD_R)
    assert (rho[0], u[0], p[0]) == (1.0, 0.0, 1.0) and (rho[-1], u[-1], p[-1]) == (0.125, 0.0, 0.1)
    assert np.all(np.diff(rho) <= 1e-12)
    # Sod's right shock moves at 1.75216 and the left rarefaction head at -c_L = -1.18322
    rho, _, _ = sample(np.array([1.7521, 1.7522, -1.1833, -1.1831]), SOD_L, SOD_R, 1.4)
    assert rho[:2] == pytest.approx([0.26557, 0.125], abs=1e-5)
    assert rho[2] == 1.0 and rho[3] < 1.0
    # mirror symmetry: swapping sides and negating velocities mirrors the solution
    a, b = (1.0, 0.3, 2.0), (0.4, -0.2, 0.5)
    xi = np.linspace(-3, 3, 61) + 1e-3
    ra, ua, pa = sample(xi, a, b)
    rb, ub, pb = sample(-xi, (b[0], -b[1], b[2]), (a[0], -a[1], a[2]))
    assert np.allclose(ra, rb, rtol=1e-12) and np.allclose(ua, -ub, atol=1e-12) and np.allclose(pa, pb, rtol=1e-12)
    with pytest.raises(ParameterError, match="vacuum"):
        star_state((1.0, -10.0, 0.1), (1.0, 10.0, 0.1))


def test_sod_converges_to_exact_solution():
    errors = []
    for n in (100, 200, 400, 800):
        ds = simulate("euler", 1, regime="sod", resolution=n, ny=2, steps=2, dt_save=0.2, dtype="float64", progress=False)
        rho = ds.density.values[0, -1]
        assert np.array_equal(rho[:, 0], rho[:, 1])  # 1D problem stays 1D
        exact, _, _ = exact_riemann(ds.x.values, 0.2, SOD_L, SOD_R)
        errors.append(float(np.abs(rho[:, 0] - exact).mean()))
    orders = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    print(f"\nSod L1 density errors N=100..800: {errors}; observed orders {orders}")
    assert all(b < a for a, b in zip(errors, errors[1:]))
    assert all(0.5 < o < 1.2 for o in orders)
    assert errors[-1] < 2e-3


@pytest.mark.parametrize("eta,zeta", [(0.0, 0.0), (0.01, 0.02)])
def test_periodic_conservation_to_round_off(eta, zeta):
    solver = make_solver("euler", regime="high_mach", resolution=32, dtype="float64", eta=eta, zeta=zeta)
    state, _ = _batch(solver, 2)
    total0 = state.sum(dim=(2, 3))
    scale = state.abs().sum(dim=(2, 3))
    ke0 = float((0.5 * (state[:, 1] ** 2 + state[:, 2] ** 2) / state[:, 0]).sum())
    for _ in range(100):
        state = solver.step(state, solver.max_dt(state))
    drift = ((state.sum(dim=(2, 3)) - total0).abs() / scale).max().item()
    print(f"\nconservation drift (eta={eta}, zeta={zeta}) after 100 steps: {drift:.2e}")
    assert drift < 1e-12
    assert torch.isfinite(state).all()
    ke = float((0.5 * (state[:, 1] ** 2 + state[:, 2] ** 2) / state[:, 0]).sum())
    assert ke < ke0  # shocks (and viscosity) turn kinetic into internal energy


def test_viscous_shear_wave_decays_at_the_viscous_rate():
    eta, k, t_end = 0.01, 2 * math.pi, 0.5
    solver = make_solver("euler", regime="low_mach", resolution=32, dtype="float64", eta=eta)
    y = torch.from_numpy(solver.coords()["y"])
    u = 0.01 * torch.sin(k * y)[None, :].expand(32, 32)
    state = solver._conserved(torch.ones(32, 32, dtype=torch.float64), u, torch.zeros_like(u), torch.ones_like(u))[None]
    t = 0.0
    while t < t_end - 1e-12:
        dt = min(solver.max_dt(state), t_end - t)
        state = solver.step(state, dt)
        t += dt
    amp = float(2 * (state[0, 1] / state[0, 0] * torch.sin(k * y)[None, :]).mean())
    expected = 0.01 * math.exp(-eta * k * k * t_end)
    print(f"\nshear wave amplitude {amp:.6g}, exact {expected:.6g}")
    assert amp == pytest.approx(expected, rel=0.01)
    inviscid = make_solver("euler", regime="low_mach", resolution=32, dtype="float64")
    assert inviscid.max_dt(state) > solver.max_dt(state)  # the viscous limit is in force here


@pytest.mark.parametrize("regime,target", [("low_mach", 0.1), ("high_mach", 1.0)])
def test_random_initial_conditions(regime, target):
    ds = simulate("euler", 6, regime=regime, resolution=32, steps=1, dtype="float64", seed=7, progress=False)
    rho, p = ds.density.values[:, 0], ds.pressure.values[:, 0]
    u, v = ds.velocity_x.values[:, 0], ds.velocity_y.values[:, 0]
    assert rho.min() > 0 and p.min() > 0
    gamma = ds.attrs["simulation_parameters"]["gamma"]
    assert gamma == pytest.approx(5 / 3)
    mach = np.sqrt(((u**2 + v**2) * rho / (gamma * p)).mean(axis=(1, 2)))
    assert mach == pytest.approx(ds.mach.values, rel=0.02)
    assert np.all(np.abs(ds.mach.values / target - 1) <= 0.2 + 1e-12)
    assert len(set(np.round(ds.mach.values, 8))) == 6  # drawn per trajectory
    assert rho.std(axis=(1, 2)).min() > 0 and np.abs(u).mean() > 0
    assert ds.attrs["boundary_conditions"] == {"x": "periodic", "y": "periodic"}
    again = simulate("euler", 2, regime=regime, resolution=32, steps=1, dtype="float64", seed=7, batch_size=1, progress=False)
    assert np.array_equal(again.density.values, ds.density.values[:2])


@pytest.mark.parametrize("config", [3, 12])
def test_riemann_2d_positive_and_symmetric(config):
    ds = simulate("euler", 1, regime="riemann", riemann_config=config, resolution=48, steps=2, dt_save=0.2,
                  dtype="float64", progress=False)
    rho, p = ds.density.values[0], ds.pressure.values[0]
    u, v = ds.velocity_x.values[0], ds.velocity_y.values[0]
    assert np.isfinite(rho).all() and rho.min() > 0 and p.min() > 0
    assert not np.allclose(rho[-1], rho[0])  # the waves moved
    # these configurations are symmetric about the diagonal x = y (with u <-> v)
    assert np.abs(rho[-1] - rho[-1].T).max() <= 1e-12 * rho.max()
    assert np.abs(u[-1] - v[-1].T).max() <= 1e-12 * (np.abs(u).max() + 1)
    assert ds.attrs["boundary_conditions"] == {"x": "open", "y": "open"}
    assert ds.attrs["dataset_name"] == "euler_riemann"


def test_riemann_random_configuration_choice():
    ds = simulate("euler", 6, regime="riemann", resolution=16, steps=2, dtype="float64", progress=False)
    chosen = set(ds.riemann_config.values.astype(int))
    assert chosen <= set(RIEMANN_CONFIGS) and len(chosen) > 1
    assert ds.density.min() > 0


def test_max_dt_is_the_cfl_limit():
    solver = make_solver("euler", regime="low_mach", resolution=32, dtype="float64")
    ones = torch.ones(32, 32, dtype=torch.float64)
    state = solver._conserved(ones, 0.5 * ones, -0.25 * ones, ones)[None]
    c = math.sqrt(5 / 3)
    assert solver.max_dt(state) == pytest.approx(0.4 / 32 / (0.5 + c), rel=1e-12)


@pytest.mark.parametrize("field", ["density", "pressure"])
def test_non_physical_state_is_refused(field):
    solver = make_solver("euler", regime="low_mach", resolution=16, dtype="float64")
    state, _ = _batch(solver, 1)
    if field == "density":
        state[0, 0, 3, 4] = -0.1
    else:
        state[0, 3, 3, 4] = 0.5 * (state[0, 1, 3, 4] ** 2 + state[0, 2, 3, 4] ** 2) / state[0, 0, 3, 4] - 0.01
    other = "pressure" if field == "density" else "density"
    for call in (solver.max_dt, solver.observe):
        with pytest.raises(SimulationError, match=f"minimum {field}") as err:
            call(state)
        assert f"minimum {other}" not in str(err.value)


@pytest.mark.parametrize(
    "params,name",
    [
        ({"eta": -0.1}, "eta"),
        ({"zeta": -1e-3}, "zeta"),
        ({"gamma": 1.0}, "gamma"),
        ({"gamma": 0.5}, "gamma"),
        ({"rho0": -1.0}, "rho0"),
        ({"p0": 0.0}, "p0"),
        ({"regime": "supersonic"}, "regime"),
        ({"resolution": 12}, "resolution"),
        ({"resolution": 8192}, "resolution"),
        ({"limiter": "superbee"}, "limiter"),
        ({"boundary": "wall"}, "boundary"),
        ({"riemann_config": 7}, "riemann_config"),
        ({"perturbation": 1.5}, "perturbation"),
        ({"mach": -0.5}, "mach"),
        ({"ny": 1}, "ny"),
        ({"max_wavenumber": 0}, "max_wavenumber"),
        ({"viscosity": 0.1}, "viscosity"),
    ],
)
def test_bad_parameters_are_named(params, name):
    with pytest.raises(ParameterError, match=name):
        make_solver("euler", **params)
