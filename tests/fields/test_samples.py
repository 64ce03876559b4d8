"""The built-in Taylor-Green sample is an exact Navier-Stokes solution."""
from __future__ import annotations

import numpy as np
import pytest

from physviz.fields import sample_dataset, taylor_green, validate_dataset


def _ddx(f, axis, n):
    k = np.fft.fftfreq(n, d=1.0 / n)
    shape = [1] * f.ndim
    shape[axis] = n
    return np.real(np.fft.ifft(1j * k.reshape(shape) * np.fft.fft(f, axis=axis), axis=axis))


def test_vorticity_is_curl_of_velocity_and_flow_is_divergence_free():
    ds = taylor_green(n=32, steps=3, k=2, dtype=np.float64)
    u, v, w = ds.velocity_x.values, ds.velocity_y.values, ds.vorticity.values
    curl = _ddx(v, 1, 32) - _ddx(u, 2, 32)
    div = _ddx(u, 1, 32) + _ddx(v, 2, 32)
    np.testing.assert_allclose(curl, w, atol=1e-10)
    np.testing.assert_allclose(div, 0, atol=1e-10)


def test_decay_rate_matches_viscosity():
    ds = taylor_green(n=16, steps=11, dt=0.5, nu=0.02, k=3, dtype=np.float64)
    energy = (ds.velocity_x**2 + ds.velocity_y**2).mean(("x", "y")).values
    np.testing.assert_allclose(energy / energy[0], np.exp(-4 * 0.02 * 9 * ds.time.values), rtol=1e-12)


def test_sample_dataset_follows_schema():
    ds = sample_dataset(trajectories=3, n=16, steps=4, seed=1)
    report = validate_dataset(ds)
    assert report.spatial_dims == ["x", "y"] and set(report.fields) == {"vorticity", "velocity_x", "velocity_y"}
    assert ds.sizes["trajectory"] == 3
    assert not np.allclose(ds.vorticity[0].values, ds.vorticity[1].values)


def test_bad_parameters():
    with pytest.raises(ValueError, match="nu"):
        taylor_green(nu=-1)
