"""Shallow-water simulator: well-balancing, conservation, positivity, dam-break physics, errors, seeding."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from physviz.errors import ParameterError
from physviz.fields.simulate import make_solver, simulate
from physviz.fields.simulate.run import _trajectory_generator


def _advance(solver, state: torch.Tensor, t_end: float) -> tuple[torch.Tensor, int]:
    """Step a (B, 4, N, N) state to t_end with the CFL step; return it and the step count."""
    t, n = 0.0, 0
    while t < t_end - 1e-12:
        dt = min(solver.max_dt(state), t_end - t)
        state = solver.step(state, dt)
        t += dt
        n += 1
    return state, n


def _initial(solver, index: int = 0, seed: int = 0) -> tuple[torch.Tensor, dict[str, float]]:
    """A batch of one trajectory's initial state."""
    s, p = solver.initial_condition(_trajectory_generator(seed, index))
    return s[None].to(solver.dtype), p


@pytest.mark.parametrize("boundary", ["open", "wall", "periodic"])
def test_lake_at_rest_stays_at_rest_over_steep_bathymetry(boundary: str) -> None:
    """Well-balanced: surface, and zero velocity, kept to round-off over narrow tall bumps."""
    solver = make_solver(
        "shallow_water", regime="lake_at_rest", boundary=boundary, resolution=64, dtype="float64",
        bathymetry_amplitude=0.9, bump_count=8, bump_width_min=0.08, bump_width_max=0.2,
    )
    state, _ = _initial(solver)
    b = state[0, 3]
    assert float(b.max() - b.min()) > 0.9  # bed spans most of the depth (H0 = 1)
    assert float(b.diff(dim=0).abs().max()) > 0.2 * solver.config.lake_level  # steep: a fifth of the depth per cell
    end, n = _advance(solver, state, 2.0)
    assert n > 150
    h, hu, hv = end[0, 0], end[0, 1], end[0, 2]
    assert float((h + b - 1.0).abs().max()) < 1e-12
    assert float(hu.abs().max()) < 1e-12 and float(hv.abs().max()) < 1e-12
    assert torch.equal(end[0, 3], b)  # bathymetry carried unchanged


def test_lake_at_rest_dataset_and_perturbation_moves() -> None:
    """Through simulate(): the lake's output fields stay still; the perturbed lake does not."""
    kw = dict(resolution=32, steps=4, dt_save=0.2, dtype="float64", progress=False)
    lake = simulate("shallow_water", 2, regime="lake_at_rest", **kw)
    assert lake.attrs["dataset_name"] == "shallow_water_lake_at_rest"
    assert set(lake.data_vars) == {"height", "velocity_x", "velocity_y"}
    assert float(abs(lake.velocity_x).max()) < 1e-12 and float(abs(lake.velocity_y).max()) < 1e-12
    assert float(abs(lake.height - lake.height.isel(time=0)).max()) < 1e-12
    assert float(lake.height.min()) > 0.4  # depth 1 - b with |b| <= 0.5
    wave = simulate("shallow_water", 2, regime="perturbation", **kw)
    assert float(abs(wave.velocity_x.isel(time=-1)).max()) > 1e-3
    amp = wave.perturbation_amplitude.values
    assert np.all((amp >= 0.05) & (amp <= 0.1)) and amp[0] != amp[1]


@pytest.mark.parametrize("boundary", ["periodic", "wall"])
def test_mass_conserved_to_round_off(boundary: str) -> None:
    """Sum of h dx dy is constant (periodic: fluxes telescope; walls: zero mass flux through them)."""
    ds = simulate(
        "shallow_water", 2, regime="perturbation", boundary=boundary, resolution=48, steps=6, dt_save=0.4,
        dtype="float64", progress=False, perturbation_amplitude=0.3, perturbation_width=0.4,
    )
    mass = ds.height.sum(("x", "y")).values
    drift = np.abs(mass / mass[:, :1] - 1).max()
    assert drift < 1e-12, drift
    assert float(abs(ds.velocity_x).max()) > 1e-2  # waves travelled (and hit walls / wrapped) meanwhile
    assert ds.attrs["boundary_conditions"] == {"x": boundary, "y": boundary}


def test_momentum_conserved_on_periodic_flat_bottom() -> None:
    """With b = 0 and periodic boundaries, total hu and hv (and h) change only by round-off."""
    solver = make_solver("shallow_water", boundary="periodic", resolution=48, dtype="float64")
    x = torch.from_numpy(solver.coords()["x"])
    X, Y = torch.meshgrid(x, x, indexing="ij")
    k = 2 * math.pi / 5.0
    h = 1.0 + 0.3 * torch.sin(k * X) * torch.cos(2 * k * Y) + 0.4 * torch.exp(-((X - 0.5) ** 2 + Y**2) / 0.1)
    hu = h * (0.3 + 0.2 * torch.cos(k * Y))
    hv = h * (-0.2 + 0.3 * torch.sin(k * X + 1.0))
    state = torch.stack([h, hu, hv, torch.zeros_like(h)])[None]
    end, n = _advance(solver, state, 1.5)  # long enough for the bump to steepen into shocks
    assert n > 50
    for c in range(3):
        before, after = float(state[0, c].sum()), float(end[0, c].sum())
        scale = float(state[0, c].abs().sum())
        assert abs(after - before) / scale < 1e-12, (c, before, after)
    assert float((end[0, 1] - state[0, 1]).abs().max()) > 0.05  # momentum really was redistributed


@pytest.mark.parametrize(
    ("outside", "dtype", "boundary"),
    [(0.0, "float64", "wall"), (1e-8, "float64", "open"), (0.0, "float32", "open"), (1e-8, "float32", "wall")],
)
def test_dam_break_onto_dry_bed_keeps_depth_non_negative(outside: float, dtype: str, boundary: str) -> None:
    """Positivity: h >= 0 everywhere, finite bounded velocities, the water spreads, mass only leaves openly."""
    ds = simulate(
        "shallow_water", 2, resolution=48, steps=9, dt_save=0.1, dtype=dtype, progress=False,
        dam_outside=outside, boundary=boundary,
    )
    h = ds.height.values
    assert h.min() >= 0.0
    assert np.isfinite(ds.velocity_x.values).all() and np.isfinite(ds.velocity_y.values).all()
    # the dry-bed front speed is 2 sqrt(g h0) <= 2 sqrt(2.5) in theory
    assert np.abs(ds.velocity_x.values).max() < 2 * math.sqrt(2.5)
    wet = (h > 1e-3).sum(axis=(2, 3))
    assert np.all(np.diff(wet, axis=1) > 0)
    assert h[:, -1, 0, :].max() > 0  # the thin front reached the boundary (at 2 sqrt(g h0))
    mass = h.astype(np.float64).sum(axis=(2, 3))
    change = mass / mass[:, :1] - 1
    tol = 1e-12 if dtype == "float64" else 1e-5
    if boundary == "wall":
        assert np.abs(change).max() < tol
    else:  # only outflow through the open boundary
        assert change.max() < tol
        assert change[:, -1].min() < -(tol if dtype == "float64" else 0)


def test_radial_dam_break_symmetry_and_outward_front() -> None:
    """A centred dam stays symmetric under x->-x, y->-y and x<->y; its front moves out at about sqrt(g h)."""
    ds = simulate("shallow_water", 1, resolution=64, steps=7, dt_save=0.1, dtype="float64", progress=False)
    h = ds.height.values[0]
    for img in (h[:, ::-1, :], h[:, :, ::-1], h.transpose(0, 2, 1)):
        assert np.abs(h - img).max() < 1e-13
    u, v = ds.velocity_x.values[0], ds.velocity_y.values[0]
    assert np.abs(u + u[:, ::-1, :]).max() < 1e-13 and np.abs(u - v.transpose(0, 2, 1)).max() < 1e-13
    x = ds.x.values
    r = np.hypot(x[:, None], x[None, :])
    h_in, h_out = float(ds.dam_height[0]), 1.0
    level = h_out + 0.05 * (h_in - h_out)
    front = np.array([r[frame > level].max() for frame in h])
    assert np.all(np.diff(front) > 0), front
    speed = (front[-1] - front[1]) / (ds.time.values[-1] - ds.time.values[1])
    assert 0.9 < speed < 2.0, speed  # a bore slightly faster than the still-water wave speed sqrt(g) = 1
    assert float(abs(ds.velocity_x).max()) > 0.1


def _stoker(x: np.ndarray, t: float, hl: float, hr: float, g: float) -> np.ndarray:
    """Exact 1D dam break on a wet bed (rarefaction left, bore right)."""
    cl = math.sqrt(g * hl)
    lo, hi = hr, hl
    for _ in range(200):  # middle depth: rarefaction and shock velocities agree
        hm = 0.5 * (lo + hi)
        f = 2 * (cl - math.sqrt(g * hm)) - (hm - hr) * math.sqrt(0.5 * g * (1 / hm + 1 / hr))
        lo, hi = (hm, hi) if f > 0 else (lo, hm)
    um = 2 * (cl - math.sqrt(g * hm))
    shock = hm * um / (hm - hr)
    xi = x / t
    return np.where(
        xi < -cl, hl,
        np.where(xi < um - math.sqrt(g * hm), (2 * cl - xi) ** 2 / (9 * g), np.where(xi < shock, hm, hr)),
    )


def test_planar_dam_break_converges_to_exact_solution() -> None:
    """A y-uniform dam break (h = 2 | 1, g = 2) against the exact Riemann solution; L1 error falls with dx."""
    errors = []
    for n in (32, 64, 128):
        solver = make_solver("shallow_water", resolution=n, dtype="float64", gravity=2.0)
        x = torch.from_numpy(solver.coords()["x"])
        h = torch.where(x < 0, 2.0, 1.0)[:, None].expand(n, n)
        zero = torch.zeros(n, n, dtype=torch.float64)
        end, _ = _advance(solver, torch.stack([h, zero, zero, zero])[None], 0.5)
        assert float((end[0, 0] - end[0, 0, :, :1]).abs().max()) == 0.0  # stays exactly y-uniform
        assert float(end[0, 2].abs().max()) == 0.0
        exact = _stoker(x.numpy(), 0.5, 2.0, 1.0, 2.0)
        errors.append(float(np.abs(end[0, 0, :, 0].numpy() - exact).mean()))
    assert errors[2] < 0.012, errors
    assert errors[1] / errors[2] > 1.5 and errors[0] / errors[1] > 1.5, errors  # about first order at the bore


def test_constant_bed_offset_changes_nothing() -> None:
    """The bathymetry path with b = const matches the flat-bed path to round-off (hydrostatic terms cancel)."""
    solver = make_solver("shallow_water", resolution=32, dtype="float64", boundary="wall")
    flat, _ = _initial(solver, 0)
    raised = flat.clone()
    raised[:, 3] = 0.75
    a, _ = _advance(solver, flat, 0.6)
    b, _ = _advance(solver, raised, 0.6)
    assert float((a[:, :3] - b[:, :3]).abs().max()) < 1e-12
    assert float(a[:, 1].abs().max()) > 0.1


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"gravity": -1.0}, "gravity"),
        ({"gravity": 0.0}, "gravity"),
        ({"dam_outside": -0.5}, "dam_outside"),
        ({"dam_height_min": -1.0}, "dam_height_min"),
        ({"dam_height_min": 3.0, "dam_height_max": 2.0}, "dam_height"),
        ({"dam_radius_max": 3.0}, "dam_radius"),
        ({"lake_level": -1.0}, "lake_level"),
        ({"bathymetry_amplitude": 1.5}, "bathymetry_amplitude"),
        ({"boundary": "slip"}, "boundary"),
        ({"regime": "tsunami"}, "regime"),
        ({"flux": "roe"}, "flux"),
        ({"limiter_theta": 3.0}, "limiter_theta"),
        ({"resolution": 4}, "resolution"),
        ({"bump_count": 0}, "bump_count"),
        ({"viscosity": 0.1}, "viscosity"),
    ],
)
def test_bad_parameters_name_themselves(params: dict, name: str) -> None:
    """Each bad setting raises ParameterError naming it."""
    with pytest.raises(ParameterError, match=name):
        make_solver("shallow_water", **params)


def test_dt_violating_cfl_is_refused() -> None:
    """A fixed dt above the CFL step raises ParameterError; one below it runs."""
    with pytest.raises(ParameterError, match="CFL"):
        simulate("shallow_water", 1, resolution=16, steps=2, dt=0.5, progress=False)
    ds = simulate("shallow_water", 1, resolution=16, steps=2, dt=0.01, dt_save=0.05, progress=False)
    assert ds.attrs["source"]["solver_steps"] == 5


def test_seeding_batching_and_random_parameters() -> None:
    """Same seed -> identical output; batching does not change a trajectory; dam parameters vary in range."""
    kw = dict(resolution=24, steps=3, dt_save=0.05, dtype="float64", progress=False)
    a = simulate("shallow_water", 5, seed=3, **kw)
    b = simulate("shallow_water", 5, seed=3, **kw)
    for k in ("height", "velocity_x", "velocity_y", "dam_radius", "dam_height"):
        np.testing.assert_array_equal(a[k].values, b[k].values)
    r, hin = a.dam_radius.values, a.dam_height.values
    assert np.all((r >= 0.3) & (r <= 0.7)) and np.all((hin >= 1.5) & (hin <= 2.5))
    assert len(set(r)) == 5 and len(set(hin)) == 5
    np.testing.assert_allclose(a.height.values[:, 0].max(axis=(1, 2)), hin)  # the dam is filled to dam_height
    dx = float(a.x[1] - a.x[0])
    wet_area = (a.height.values[:, 0] > 1.0).sum(axis=(1, 2)) * dx * dx
    np.testing.assert_allclose(wet_area, np.pi * r**2, rtol=0.35)
    c = simulate("shallow_water", 5, seed=4, **kw)
    assert not np.any(np.isin(c.dam_radius.values, r))
    # The CFL step is shared by a batch, so compare batch sizes at a fixed step: bitwise equal.
    fixed = dict(kw, dt=0.005)
    whole = simulate("shallow_water", 5, seed=3, **fixed)
    ones = simulate("shallow_water", 5, seed=3, batch_size=1, **fixed)
    pairs = simulate("shallow_water", 5, seed=3, batch_size=2, **fixed)
    for k in ("height", "velocity_x", "velocity_y", "dam_radius"):
        np.testing.assert_array_equal(whole[k].values, ones[k].values)
        np.testing.assert_array_equal(whole[k].values, pairs[k].values)
    # With the adaptive step, batching only changes dt within the CFL bound: results agree closely.
    adaptive = simulate("shallow_water", 5, seed=3, batch_size=2, **kw)
    assert np.abs(adaptive.height.values - a.height.values).max() < 0.05
