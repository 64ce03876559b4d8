"""vrmse_array: VRMSE on numpy arrays with the formula of the DataArray metric (and of The Well)."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from physviz.analysis import vrmse, vrmse_array
from physviz.errors import OptionError


def _pair(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    truth = rng.normal(2.0, 1.5, size=shape).astype(dtype)
    pred = (truth + rng.normal(0.0, 0.3, size=shape)).astype(dtype)
    return pred, truth


@pytest.mark.parametrize("spatial", [("x",), ("x", "y"), ("x", "y", "z")])
def test_equals_the_dataarray_vrmse(spatial):
    lead = ("trajectory", "time")
    shape = (2, 3) + (12, 10, 6)[: len(spatial)]
    pred, truth = _pair(shape)
    da = lambda a: xr.DataArray(a, dims=lead + spatial)  # noqa: E731
    ref = vrmse(da(pred), da(truth)).transpose(*lead).values
    got = vrmse_array(pred, truth, len(spatial))
    assert got.shape == shape[:2] and got.dtype == np.float64
    np.testing.assert_array_equal(got, ref)


def test_is_the_wells_definition_in_float64():
    pred, truth = _pair((4, 16, 16), seed=1)
    t = truth.astype(np.float64)
    expect = np.sqrt(np.mean((pred.astype(np.float64) - t) ** 2, axis=(1, 2)) / (np.var(t, axis=(1, 2), ddof=1) + 1e-7))
    np.testing.assert_allclose(vrmse_array(pred, truth, 2), expect, rtol=1e-12)
    np.testing.assert_allclose(vrmse_array(pred, truth, 2, eps=1.0),
                               np.sqrt(np.mean((pred - t) ** 2, axis=(1, 2)) / (np.var(t, axis=(1, 2), ddof=1) + 1.0)),
                               rtol=1e-12)
    one = vrmse_array(pred[0], truth[0], 2)
    assert one.shape == () and float(one) == pytest.approx(expect[0], rel=1e-12)
    assert float(vrmse_array(truth[0], truth[0], 2)) == 0.0


def test_a_mismatch_is_an_option_error():
    pred, truth = _pair((2, 8, 8))
    with pytest.raises(OptionError, match="one shape"):
        vrmse_array(pred[:1], truth, 2)
    with pytest.raises(OptionError, match="n_spatial=4"):
        vrmse_array(pred, truth, 4)
