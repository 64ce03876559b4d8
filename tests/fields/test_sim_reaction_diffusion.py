"""Reaction-diffusion simulators: FitzHugh-Nagumo (no-flux) and Gray-Scott 2D/3D (periodic)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.integrate import solve_ivp

from physviz.errors import ParameterError
from physviz.fields.simulate import make_solver, simulate
from physviz.fields.simulate.base import integrate
from physviz.fields.simulate.reaction_diffusion import (
    FitzHughNagumo2D,
    GRAY_SCOTT_REGIMES,
    laplacian,
    laplacian_eigenvalue,
)


def periodic_label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of a 2D mask on a torus (scipy labels, merged across opposite edges)."""
    lab, n = ndimage.label(mask)
    parent = list(range(n + 1))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for first, last in ((lab[0], lab[-1]), (lab[:, 0], lab[:, -1])):
        for i, j in zip(first, last):
            if i and j:
                parent[find(int(i))] = find(int(j))
    roots = np.array([find(i) for i in range(n + 1)])
    _, merged = np.unique(roots[lab], return_inverse=True)
    return merged.reshape(lab.shape), int(merged.max())


def blob_stats(b: np.ndarray) -> dict[str, float]:
    """Count, largest area fraction, and median aspect / bbox fill of interior blobs of B > mean + std/2."""
    mask = b > b.mean() + 0.5 * b.std()
    lab, count = periodic_label(mask)
    areas = np.bincount(lab.ravel())[1:]
    plain, _ = ndimage.label(mask)
    aspects, fills = [], []
    for i, sl in enumerate(ndimage.find_objects(plain)):
        if any(s.start == 0 or s.stop == n for s, n in zip(sl, b.shape)):
            continue  # cut by the periodic edge
        h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        aspects.append(max(h, w) / min(h, w))
        fills.append(float((plain[sl] == i + 1).sum()) / (h * w))
    return {
        "count": count,
        "largest": float(areas.max()) / b.size,
        "aspect": float(np.median(aspects)),
        "fill": float(np.median(fills)),
    }


def test_gray_scott_spots_form_many_round_blobs_and_maze_few_long_ones() -> None:
    """At The Well's defaults (128^2, dA=2e-5, dB=1e-5) spots give many disks, maze/stripes a connected labyrinth."""
    kw = dict(resolution=128, steps=2, dt_save=2500, initial="fourier", progress=False)
    spots = simulate("gray_scott", 2, regime="spots", seed=0, **kw)
    maze = simulate("gray_scott", 1, regime="stripes", seed=1, **kw)
    for ds in (spots, maze):  # the invariant region B >= 0, A + B <= 1 of the exact dynamics
        assert float(ds.B.min()) > -1e-6
        assert float((ds.A + ds.B).max()) < 1 + 1e-5
    for i in range(2):
        s = blob_stats(spots.B[i, -1].values)
        assert s["count"] >= 30, s  # many spots
        assert s["largest"] < 0.01, s  # each a small fraction of the box
        assert s["aspect"] < 1.35, s  # roughly round
        assert 0.65 < s["fill"] < 0.9, s  # disk in its box: pi/4
    m = blob_stats(maze.B[0, -1].values)
    assert m["count"] <= 12, m
    assert m["largest"] > 0.15, m  # one labyrinth spans much of the box
    assert maze.attrs["dataset_name"] == "gray_scott_stripes"
    assert maze.attrs["simulation_parameters"]["f"] == GRAY_SCOTT_REGIMES["maze"][0]


@pytest.mark.parametrize("ndim", [2, 3])
def test_gray_scott_pure_diffusion_decays_at_the_discrete_rate(ndim: int) -> None:
    """f = k = 0, B = 0: a Fourier mode of A decays as exp(-dA lambda_h t), lambda_h of the 4th-order stencil."""
    n, d_a, t_end = (32, 1e-3, 1.0) if ndim == 2 else (16, 1e-3, 0.5)
    system = "gray_scott" if ndim == 2 else "gray_scott_3d"
    solver = make_solver(
        system, resolution=n, steps=2, dt_save=t_end, dt=t_end / 100, f=0.0, k=0.0, dA=d_a, dB=3e-4, dtype="float64"
    )
    modes = (6, 2, 3)[:ndim]
    x = torch.as_tensor(solver.centres())
    grids = torch.meshgrid(*([x] * ndim), indexing="ij")
    mode = torch.ones((n,) * ndim, dtype=torch.float64)
    for g, m in zip(grids, modes):
        mode = mode * torch.cos(math.pi * m * g + 0.3)
    state = torch.stack([1.0 + 0.5 * mode, torch.zeros_like(mode)])[None]
    out, times, _ = integrate(solver, state)
    lam = laplacian_eigenvalue(modes, n, 2.0, periodic=True, order=4)
    expected = 1.0 + 0.5 * mode.numpy() * math.exp(-d_a * lam * t_end)
    got = out["A"][0, -1]
    amp_err = np.abs(got - expected).max() / (0.5 * math.exp(-d_a * lam * t_end))
    assert amp_err < 1e-8, amp_err
    assert np.all(out["B"] == 0)
    # the check resolves the stencil: the continuous rate (or the 2nd-order one) is far off
    for other in (sum((math.pi * m) ** 2 for m in modes), laplacian_eigenvalue(modes, n, 2.0, True, order=2)):
        assert abs(math.exp(-d_a * other * t_end) / math.exp(-d_a * lam * t_end) - 1) > 1e-3


@pytest.mark.parametrize("ndim", [2, 3])
def test_no_flux_laplacian_has_cosine_eigenfunctions_and_conserves(ndim: int) -> None:
    """The replicate-padded stencil: cos(pi m (x+1)/2) modes are exact eigenvectors; its sum is zero (mean kept)."""
    n = 12
    x = -1 + (torch.arange(n, dtype=torch.float64) + 0.5) * 2 / n
    modes = (3, 1, 5)[:ndim]
    mode = torch.ones((n,) * ndim, dtype=torch.float64)
    for g, m in zip(torch.meshgrid(*([x] * ndim), indexing="ij"), modes):
        mode = mode * torch.cos(math.pi * m * (g + 1) / 2)
    lap = laplacian(mode[None, None], ndim, periodic=False)[0, 0] / (2 / n) ** 2
    lam = laplacian_eigenvalue(modes, n, 2.0, periodic=False)
    assert torch.allclose(lap, -lam * mode, atol=1e-11 * lam)
    noise = torch.randn((3, 2) + (n,) * ndim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sums = laplacian(noise, ndim, periodic=False).sum(dim=tuple(range(2, 2 + ndim)))
    assert sums.abs().max() < 1e-12


class _MirroredFHN(FitzHughNagumo2D):
    """FitzHugh-Nagumo on the periodic doubled box [-1, 3]^2, the even extension of the no-flux one."""

    periodic = True
    length = 4.0


def test_fitzhugh_nagumo_no_flux_equals_periodic_mirror_extension() -> None:
    """The whole no-flux solver equals a periodic run on the doubled box started from the mirror-extended state."""
    n = 24
    params = dict(steps=3, dt_save=0.5, dt=0.01, dtype="float64")
    wall = make_solver("fitzhugh_nagumo", resolution=n, **params)
    mirror = _MirroredFHN(_MirroredFHN.config_cls(resolution=2 * n, **params))
    gen = torch.Generator().manual_seed(3)
    u0 = torch.randn(2, 2, n, n, generator=gen, dtype=torch.float64)
    ext = torch.cat([u0, u0.flip(-1)], -1)
    ext = torch.cat([ext, ext.flip(-2)], -2)
    a, _, _ = integrate(wall, u0)
    b, _, _ = integrate(mirror, ext)
    for name in ("activator", "inhibitor"):
        np.testing.assert_allclose(a[name], b[name][..., :n, :n], rtol=0, atol=1e-12)
        assert np.abs(a[name][:, -1] - a[name][:, 0]).max() > 0.1  # it did evolve


def test_fitzhugh_nagumo_uniform_state_follows_the_reaction_ode() -> None:
    """A uniform start stays uniform and matches u' = u - u^3 - k - v, v' = u - v (scipy, rtol 1e-12)."""
    k, t_end = 0.1, 2.0
    solver = make_solver("fitzhugh_nagumo", resolution=16, steps=5, dt_save=t_end / 4, dt=0.005, k=k, dtype="float64")
    start = torch.tensor([0.8, -0.3], dtype=torch.float64).view(1, 2, 1, 1).expand(1, 2, 16, 16).contiguous()
    out, times, _ = integrate(solver, start)
    ode = lambda t, y: [y[0] - y[0] ** 3 - k - y[1], y[0] - y[1]]  # noqa: E731
    ref = solve_ivp(ode, (0, t_end), [0.8, -0.3], t_eval=times, rtol=1e-12, atol=1e-14)
    for i, name in enumerate(("activator", "inhibitor")):
        field = out[name][0]
        assert np.ptp(field, axis=(1, 2)).max() < 1e-13
        np.testing.assert_allclose(field[:, 0, 0], ref.y[i], rtol=0, atol=1e-9)
    assert abs(ref.y[0, -1] - 0.8) > 0.1


def test_fitzhugh_nagumo_rk4_converges_at_fourth_order() -> None:
    """Halving dt shrinks the error (vs a dt/8 run) by about 2^4 on PDEBench's setup at 32^2."""
    t_end = 0.4

    def run(steps: int) -> np.ndarray:
        ds = simulate(
            "fitzhugh_nagumo", 1, resolution=32, steps=2, dt_save=t_end, dt=t_end / steps, dtype="float64", seed=5, progress=False
        )
        return np.concatenate([ds.activator[0, -1].values.ravel(), ds.inhibitor[0, -1].values.ravel()])

    ref = run(640)
    errors = [np.abs(run(m) - ref).max() for m in (20, 40, 80)]
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(3.6 < p < 4.6 for p in orders), (errors, orders)
    assert errors[0] > 1e-8  # the comparison is above round-off


def test_outputs_dims_fields_and_boundary_conditions() -> None:
    """3D Gray-Scott at 32^3 and FitzHugh-Nagumo return the schema's dims, names and boundary conditions."""
    ds = simulate("gray_scott_3d", 2, resolution=32, steps=3, dt_save=20.0, seed=1, progress=False)
    assert ds.A.dims == ("trajectory", "time", "x", "y", "z")
    assert ds.B.shape == (2, 3, 32, 32, 32)
    assert ds.attrs["boundary_conditions"] == {"x": "periodic", "y": "periodic", "z": "periodic"}
    assert ds.attrs["dataset_name"] == "gray_scott_3d_spots"
    np.testing.assert_allclose(ds.x.values, -1 + (np.arange(32) + 0.5) / 16)
    assert float(np.abs(ds.B[:, -1] - ds.B[:, 0]).max()) > 1e-3
    fhn = simulate("fitzhugh_nagumo", 1, resolution=32, steps=4, seed=0, progress=False)
    assert set(fhn.data_vars) == {"activator", "inhibitor"}
    assert fhn.activator.dims == ("trajectory", "time", "x", "y")
    assert fhn.attrs["boundary_conditions"] == {"x": "wall", "y": "wall"}
    np.testing.assert_allclose(fhn.time.values, [0, 0.05, 0.1, 0.15])
    custom = simulate("gray_scott", 1, resolution=16, steps=1, f=0.04, progress=False)
    assert custom.attrs["dataset_name"] == "gray_scott_custom"
    assert custom.attrs["simulation_parameters"]["k"] == GRAY_SCOTT_REGIMES["spots"][1]


@pytest.mark.parametrize(
    "system, params, word",
    [
        ("gray_scott", {"dA": -1e-5}, "dA"),
        ("gray_scott", {"dB": float("nan")}, "dB"),
        ("gray_scott", {"f": 1.5}, "f="),
        ("gray_scott", {"k": -0.01}, "k="),
        ("gray_scott", {"regime": "zebra"}, "regime"),
        ("gray_scott", {"initial": "noise"}, "initial"),
        ("gray_scott", {"min_patches": 5, "max_patches": 2}, "max_patches"),
        ("gray_scott_3d", {"dA": -1.0}, "dA"),
        ("gray_scott_3d", {"fourier_modes": 8}, "fourier_modes"),
        ("fitzhugh_nagumo", {"du": -1e-3}, "du"),
        ("fitzhugh_nagumo", {"dv": float("inf")}, "dv"),
        ("fitzhugh_nagumo", {"k": float("nan")}, "k="),
    ],
)
def test_bad_parameters_raise_parameter_error_naming_them(system: str, params: dict, word: str) -> None:
    """Each bad parameter is refused with a ParameterError that names it."""
    with pytest.raises(ParameterError, match=word):
        make_solver(system, resolution=16, **params)


@pytest.mark.parametrize("system", ["gray_scott", "fitzhugh_nagumo"])
def test_seeding_is_reproducible_and_batch_size_independent(system: str) -> None:
    """Trajectory i depends only on (seed, i): same seed same data, any batch size; another seed differs."""
    kw = dict(resolution=32, steps=3, dt_save=20.0 if system == "gray_scott" else 0.1, progress=False)
    whole = simulate(system, 3, seed=7, **kw)
    split = simulate(system, 3, seed=7, batch_size=2, **kw)
    single = simulate(system, 1, seed=7, **kw)
    other = simulate(system, 3, seed=8, **kw)
    for name in whole.data_vars:
        np.testing.assert_array_equal(whole[name].values, split[name].values)
        np.testing.assert_array_equal(whole[name].values[:1], single[name].values)
    first = next(iter(whole.data_vars))
    assert not np.allclose(whole[first].values, other[first].values)
    assert not np.allclose(whole[first].values[0], whole[first].values[1])
