"""physviz.analysis: spectra and metrics match The Well's own code; Parseval, single modes, bad input."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import xarray as xr

from physviz.analysis import (
    binned_spectral_mse,
    binned_spectral_nmse,
    metrics,
    mpp_nrmse,
    mse,
    nmse,
    nrmse,
    power_spectrum,
    rmse,
    vmse,
    vrmse,
)
from physviz.errors import NonFiniteFieldError, OptionError, PhysvizError, SchemaError, UnknownFieldError
from the_well.benchmark.metrics import MSE, NMSE, NRMSE, RMSE, VMSE, VRMSE
from the_well.benchmark.metrics import binned_spectral_mse as well_binned_spectral_mse
from the_well.benchmark.metrics.spectral import power_spectrum as well_power_spectrum
from the_well.data.datasets import WellMetadata

RTOL = 1e-6
SPATIAL = {2: ("x", "y"), 3: ("x", "y", "z")}
# Grids whose axis ratios put no Fourier mode exactly on a shell edge ((m + 1/2) * dk), where
# The Well's float32 wavenumbers and our float64 ones could round to different sides.
SHAPES = {2: (32, 24), 3: (16, 12, 10)}


def _meta(nd: int, shape: tuple[int, ...]) -> WellMetadata:
    return WellMetadata(
        dataset_name="test", n_spatial_dims=nd, spatial_resolution=shape, scalar_names=[], constant_scalar_names=[],
        field_names={0: ["a", "b"]}, constant_field_names={}, boundary_condition_types=["PERIODIC"] * nd,
        n_files=1, n_trajectories_per_file=[2], n_steps_per_trajectory=[3],
    )


def _dataset(nd: int, seed: int, dx: float = 0.05, fields: tuple[str, ...] = ("a", "b"), dtype=np.float64) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = SHAPES[nd]
    dims = ("trajectory", "time", *SPATIAL[nd])
    coords = {"time": np.arange(3) * 0.5, **{d: (np.arange(n) + 0.5) * dx for d, n in zip(SPATIAL[nd], shape)}}
    data = {f: (dims, (rng.normal(size=(2, 3, *shape)) * (i + 1) + i).astype(dtype)) for i, f in enumerate(fields)}
    return xr.Dataset(data, coords=coords)


def _tensor(ds: xr.Dataset) -> torch.Tensor:
    """The Well's layout [..., *spatial, C] from a Dataset of fields (C in data-variable order)."""
    return torch.from_numpy(np.stack([ds[f].values for f in ds.data_vars], axis=-1))


def _rel(ours: np.ndarray, theirs: np.ndarray) -> float:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-300)))


# ---------------------------------------------------------------- spectra


@pytest.mark.parametrize("nd", [2, 3])
def test_spectrum_matches_the_well(nd):
    dx = 0.05
    ds = _dataset(nd, seed=nd, dx=dx)
    shape = SHAPES[nd]
    ours = power_spectrum(ds)
    edges = np.append(ours.wavenumber_lower.values, ours.wavenumber_upper.values[-1])
    bins, ps_mean, _, counts = well_power_spectrum(
        _tensor(ds), _meta(nd, shape), bins=torch.from_numpy(edges), sample_spacing=dx, return_counts=True
    )
    n = float(np.prod(shape))
    # The Well averages |FFT|^2 over a bin (divided by count + 1e-7); ours sums it and divides by N^2.
    theirs = (ps_mean * counts[:-1].unsqueeze(-1) / n**2).numpy()
    assert np.array_equal(ours.n_modes.values, counts[:-1].numpy())
    for c, f in enumerate(ds.data_vars):
        assert _rel(ours[f].values, theirs[..., c]) < RTOL
    # their default binning: int(sqrt(min(n))) edges from 0 to max|k| + 1e-6; ours given the same edges.
    # In index units: with physical |k| > ~8 the float32 margin of 1e-6 vanishes and they drop the corner mode.
    ds = _dataset(nd, seed=nd, dx=1.0)
    edges, ps_default, _, counts = well_power_spectrum(_tensor(ds), _meta(nd, shape), return_counts=True)
    ours = power_spectrum(ds, bins=edges.double().numpy())
    assert int(counts[:-1].sum()) == n  # every mode is in a bin
    theirs = (ps_default * counts[:-1].unsqueeze(-1) / n**2).numpy()
    assert ours.sizes["wavenumber"] == len(edges) - 1 == theirs.shape[-2]
    for c, f in enumerate(ds.data_vars):
        assert _rel(ours[f].values, theirs[..., c]) < RTOL


@pytest.mark.parametrize("nd", [2, 3])
def test_parseval(nd):
    ds = _dataset(nd, seed=10 + nd, dx=0.3)
    dims = SPATIAL[nd]
    for bins in (None, 7):
        ps = power_spectrum(ds, bins=bins)
        for f in ds.data_vars:
            mean_square = (ds[f] ** 2).mean(dims)
            np.testing.assert_allclose(ps[f].sum("wavenumber").values, mean_square.values, rtol=1e-12)
            assert ps[f].dims == ("trajectory", "time", "wavenumber")
    axes = power_spectrum(ds, per_axis=True)
    for d in dims:
        total = axes[d].sum(f"k_{d}")
        want = (ds.to_dataarray("field") ** 2).mean(dims)
        np.testing.assert_allclose(total.transpose(*want.dims).values, want.values, rtol=1e-12)


def _grid(nd: int, shape: tuple[int, ...], dx: tuple[float, ...]) -> dict[str, np.ndarray]:
    return {d: np.arange(n) * h for d, n, h in zip(SPATIAL[nd], shape, dx)}


def test_single_mode_2d_lands_in_its_shell():
    shape, dx = (64, 48), (0.1, 0.2)  # L = 6.4 and 9.6: dk = 2*pi/9.6
    coords = _grid(2, shape, dx)
    lx, ly = 6.4, 9.6
    dk = 2 * np.pi / ly
    # k = (2*pi*2/lx, 2*pi*4/ly) = dk * (3, 4): |k| = 5 dk
    x, y = np.meshgrid(coords["x"], coords["y"], indexing="ij")
    u = xr.DataArray(2.0 * np.cos(2 * np.pi * 2 * x / lx + 2 * np.pi * 4 * y / ly + 0.3), dims=("x", "y"), coords=coords)
    ps = power_spectrum(u)
    np.testing.assert_allclose(ps.wavenumber.values[5], 5 * dk, rtol=1e-12)
    assert int(ps.argmax("wavenumber")) == 5
    np.testing.assert_allclose(float(ps[5]), 2.0, rtol=1e-12)  # mean of (2 cos)^2
    assert float(np.abs(ps.drop_isel(wavenumber=5)).max()) < 1e-20
    axes = power_spectrum(u, per_axis=True)
    np.testing.assert_allclose(axes.k_x.values[2], 2 * 2 * np.pi / lx, rtol=1e-12)
    assert int(axes.x.argmax("k_x")) == 2 and int(axes.y.argmax("k_y")) == 4
    np.testing.assert_allclose([float(axes.x[2]), float(axes.y[4])], [2.0, 2.0], rtol=1e-12)
    assert float(axes.x.drop_isel(k_x=2).max()) < 1e-20


def test_single_mode_3d_and_nyquist():
    shape = (16, 16, 8)
    coords = _grid(3, shape, (1.0, 1.0, 2.0))  # L = 16 on every axis: dk = 2*pi/16
    x, y, z = np.meshgrid(*coords.values(), indexing="ij")
    k = 2 * np.pi / 16
    u = np.sin(k * (2 * x + 6 * y + 3 * z))  # |m| = 7 shells (3 is under the z Nyquist of 4)
    ps = power_spectrum(xr.DataArray(u, dims=SPATIAL[3], coords=coords))
    assert int(ps.argmax("wavenumber")) == 7
    np.testing.assert_allclose(float(ps.sel(wavenumber=7 * k)), 0.5, rtol=1e-12)
    # the Nyquist checkerboard along x: all energy at k = pi/dx, counted once
    nyq = xr.DataArray(np.cos(np.pi * x), dims=SPATIAL[3], coords=coords)
    ps = power_spectrum(nyq)
    assert int(ps.argmax("wavenumber")) == 8 and float(ps[8]) == pytest.approx(1.0, rel=1e-12)
    assert float(power_spectrum(nyq, per_axis=True).x[-1]) == pytest.approx(1.0, rel=1e-12)


def test_spectrum_keeps_leading_dims_and_coords():
    ds = _dataset(2, seed=3)
    ps = power_spectrum(ds["a"])
    assert ps.name == "a" and ps.dims == ("trajectory", "time", "wavenumber")
    np.testing.assert_array_equal(ps.time.values, ds.time.values)
    # dims= picks the axes: one 1D spectrum per x-row
    row = power_spectrum(ds["a"], dims="y")
    assert row.dims == ("trajectory", "time", "x", "wavenumber")
    np.testing.assert_allclose(row.sum("wavenumber").values, (ds["a"] ** 2).mean("y").values, rtol=1e-12)
    only_b = power_spectrum(ds, fields=["b"])
    assert list(only_b.data_vars) == ["b"]
    per_axis = power_spectrum(ds, per_axis=True)
    assert list(per_axis.data_vars) == ["x", "y"] and list(per_axis.field.values) == ["a", "b"]
    assert per_axis.x.dims[0] == "field" and "k_x" in per_axis.x.dims
    ps32 = power_spectrum(ds["a"].astype(np.float32))
    np.testing.assert_allclose(ps32.values, ps.values, rtol=1e-5)


# ---------------------------------------------------------------- metrics

WELL = {"mse": MSE, "nmse": NMSE, "rmse": RMSE, "nrmse": NRMSE, "vmse": VMSE, "vrmse": VRMSE}
OURS = {"mse": mse, "nmse": nmse, "rmse": rmse, "nrmse": nrmse, "vmse": vmse, "vrmse": vrmse}


@pytest.mark.parametrize("nd", [2, 3])
def test_metrics_match_the_well(nd):
    truth = _dataset(nd, seed=20 + nd)
    pred = truth + 0.3 * _dataset(nd, seed=30 + nd)
    meta = _meta(nd, SHAPES[nd])
    x, y = _tensor(pred), _tensor(truth)
    for name, well in WELL.items():
        theirs = well.eval(x, y, meta).numpy()  # [B, T, C]
        ours = OURS[name](pred, truth)
        assert isinstance(ours, xr.Dataset) and ours["a"].dims == ("trajectory", "time")
        for c, f in enumerate(truth.data_vars):
            assert _rel(ours[f].values, theirs[..., c]) < RTOL, name
    well_bins = well_binned_spectral_mse.eval(x, y, meta)
    ours = metrics(pred, truth, names=("binned_spectral_mse", "binned_spectral_nmse", "mpp_nrmse", "nrmse"))
    for c, f in enumerate(truth.data_vars):
        for i in range(3):
            got = ours.binned_spectral_mse.sel(field=f, wavenumber_bin=i).values
            assert _rel(got, well_bins[f"spectral_error_mse_per_bin_{i}"][..., c].numpy()) < RTOL
            got = ours.binned_spectral_nmse.sel(field=f, wavenumber_bin=i).values
            assert _rel(got, well_bins[f"spectral_error_nmse_per_bin_{i}"][..., c].numpy()) < RTOL
    # MPP's validation NRMSE, written out as in its trainer
    res, tar = (x - y).numpy(), y.numpy()
    axes = tuple(range(2, 2 + nd))
    mpp = np.sqrt((res**2).mean(axes) / (1e-7 + (tar**2).mean(axes)))
    for c, f in enumerate(truth.data_vars):
        assert _rel(ours.mpp_nrmse.sel(field=f).values, mpp[..., c]) < RTOL
        assert _rel(mpp_nrmse(pred[f], truth[f]).values, mpp[..., c]) < RTOL
    # the bins add up to the MSE (Plancherel) and edges are The Well's defaults
    total = ours.binned_spectral_mse.sum("wavenumber_bin")
    np.testing.assert_allclose(total.values, metrics(pred, truth, names="mse").mse.values, rtol=1e-10)
    n = max(SHAPES[nd])
    want = np.logspace(np.log10(2 * np.pi / n), np.log10(np.pi * np.sqrt(nd) + 1e-6), 4)
    want[0] = 0
    np.testing.assert_allclose(np.append(ours.wavenumber_lower, ours.wavenumber_upper[-1]), want, rtol=1e-12)


def test_metrics_float32_close_to_the_well():
    truth = _dataset(2, seed=5, dtype=np.float32)
    pred = truth + np.float32(0.1) * _dataset(2, seed=6, dtype=np.float32)
    theirs = VRMSE.eval(_tensor(pred), _tensor(truth), _meta(2, SHAPES[2])).numpy()
    ours = vrmse(pred, truth)
    assert _rel(ours["b"].values, theirs[..., 1]) < 1e-5  # we sum in float64, torch in float32


def test_metric_values_by_hand():
    truth = _dataset(2, seed=7)["a"]
    assert float(np.abs(vrmse(truth.mean(("x", "y")) + 0 * truth, truth) - 1).max()) < 0.05  # predicting the mean
    assert float(rmse(truth, truth).max()) == 0.0
    np.testing.assert_allclose(nrmse(2 * truth, truth).values, 1 / np.sqrt(1 + 1e-7 / (truth**2).mean(("x", "y")).values))
    one = binned_spectral_nmse(2 * truth, truth)
    energy = binned_spectral_mse(truth, 0 * truth)  # residual = truth: nmse = E / (E + eps) in every bin
    np.testing.assert_allclose(one.values, (energy / (energy + 1e-7)).values, rtol=1e-12)
    custom = binned_spectral_mse(2 * truth, truth, bins=[0, 1, 10])
    assert custom.sizes["wavenumber_bin"] == 2


def test_metrics_align_by_coordinates():
    truth = _dataset(2, seed=8)
    pred = (truth + 0.1).isel(time=slice(1, None))  # a rollout that starts one step later
    out = metrics(pred, truth, names=("vrmse", "rmse"))
    np.testing.assert_array_equal(out.time.values, truth.time.values[1:])
    np.testing.assert_allclose(out.rmse.values, 0.1, rtol=1e-12)
    assert out.vrmse.dims == ("field", "trajectory", "time")
    # fields= picks some of them; transposed pred is fine
    only = vrmse(pred.transpose("y", "x", "time", "trajectory"), truth, fields="b")
    assert list(only.data_vars) == ["b"]
    np.testing.assert_allclose(only.b.values, out.vrmse.sel(field="b").values, rtol=1e-12)


# ---------------------------------------------------------------- bad input


def _one_sentence(exc: BaseException, *words: str) -> None:
    assert isinstance(exc, PhysvizError) and "\n" not in str(exc)
    for w in words:
        assert w in str(exc), (w, str(exc))


def test_bad_input_errors():
    truth = _dataset(2, seed=9)
    with pytest.raises(SchemaError) as e:
        vrmse(truth.isel(x=slice(0, 16)), truth)
    _one_sentence(e.value, "'x'", "16", "32")
    with pytest.raises(SchemaError) as e:
        vrmse(truth.assign_coords(y=truth.y + 0.01), truth)
    _one_sentence(e.value, "'y'", "coordinates")
    with pytest.raises(SchemaError) as e:
        vrmse(truth.isel(trajectory=0), truth)
    _one_sentence(e.value, "dims")
    with pytest.raises(SchemaError) as e:
        vrmse(truth.assign_coords(time=truth.time + 100), truth)
    _one_sentence(e.value, "'time'")
    with pytest.raises(SchemaError):
        vrmse(truth["a"], truth)
    with pytest.raises(SchemaError):
        vrmse(truth[["a"]], truth)
    with pytest.raises(UnknownFieldError):
        vrmse(truth, truth, fields="c")
    with pytest.raises(SchemaError) as e:
        power_spectrum(truth.a.isel(x=0, y=0))
    _one_sentence(e.value, "no spatial dim")
    with pytest.raises(SchemaError):
        power_spectrum(truth.a, dims=("x", "z"))
    with pytest.raises(SchemaError) as e:
        power_spectrum(truth.assign_coords(x=truth.x**2).a)
    _one_sentence(e.value, "uniformly")
    with pytest.raises(SchemaError):
        mse(np.zeros((4, 4)), truth.a)
    for bad in (0, [1.0], [2.0, 1.0], "many"):
        with pytest.raises(OptionError):
            power_spectrum(truth.a, bins=bad)
    with pytest.raises(OptionError):
        power_spectrum(truth.a, bins=4, per_axis=True)
    with pytest.raises(OptionError):
        power_spectrum(truth.a, fields="a")
    with pytest.raises(OptionError) as e:
        metrics(truth, truth, names=("vrmse", "accuracy"))
    _one_sentence(e.value, "'accuracy'")


def test_non_finite_input():
    truth = _dataset(2, seed=11)
    bad = truth.copy(deep=True)
    bad["b"][1, 2, 3, 4] = np.nan
    with pytest.raises(NonFiniteFieldError) as e:
        metrics(bad, truth)
    _one_sentence(e.value, "pred", "'b'", "time=1.0", "x=0.175")
    with pytest.raises(NonFiniteFieldError) as e:
        binned_spectral_mse(truth, bad)
    _one_sentence(e.value, "truth", "'b'")
    bad["a"][0, 0, 0, 0] = np.inf
    with pytest.raises(NonFiniteFieldError) as e:
        power_spectrum(bad)
    _one_sentence(e.value, "'a'")
    with pytest.raises(NonFiniteFieldError):
        power_spectrum(bad.b, per_axis=True)
    assert np.isfinite(power_spectrum(truth).to_dataarray()).all()


def test_import_is_light():
    code = (
        "import sys, physviz.analysis as a; assert 'xarray' not in sys.modules;"
        "a.power_spectrum, a.vrmse; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
