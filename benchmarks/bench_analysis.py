"""Analysis: power spectra and The Well's metrics, physviz (numpy, xarray in and out) against the_well (torch)."""
from __future__ import annotations

import numpy as np

from benchmarks.common import Result, time_call


def _meta(shape: tuple[int, ...]):  # noqa: ANN202 - the_well's WellMetadata
    from the_well.data.datasets import WellMetadata

    nd = len(shape)
    return WellMetadata(
        dataset_name="bench", n_spatial_dims=nd, spatial_resolution=shape, scalar_names=[], constant_scalar_names=[],
        field_names={0: ["u"]}, constant_field_names={}, boundary_condition_types=["PERIODIC"] * nd,
        n_files=1, n_trajectories_per_file=[1], n_steps_per_trajectory=[1],
    )


def run(quick: bool) -> list[Result]:
    """Spectrum of one 256^2 and 1024^2 frame; VRMSE and binned spectral MSE on a (4, 16, 128, 128) batch."""
    import torch
    import xarray as xr
    from the_well.benchmark.metrics import VRMSE
    from the_well.benchmark.metrics import binned_spectral_mse as well_binned
    from the_well.benchmark.metrics.spectral import power_spectrum as well_spectrum

    from physviz.analysis import binned_spectral_mse, power_spectrum, vrmse

    rng = np.random.default_rng(0)
    threads = torch.get_num_threads()
    results = []
    for n in (256, 1024):
        u = rng.normal(size=(n, n)).astype(np.float32)
        da = xr.DataArray(u, dims=("x", "y"), coords={"x": np.arange(n) / n, "y": np.arange(n) / n}, name="u")
        t = torch.from_numpy(u)[..., None]
        meta = _meta((n, n))
        repeats = (10 if n == 256 else 3) if quick else (50 if n == 256 else 10)
        ours = time_call(lambda: power_spectrum(da), repeats)
        peer = time_call(lambda: well_spectrum(t, meta), repeats)
        nb = power_spectrum(da).sizes["wavenumber"]
        results.append(Result(
            "analysis", f"power spectrum of one {n}x{n} frame", ours, peer, "the_well power_spectrum",
            note=f"ours: {nb} shells, numpy FFT on 1 core; peer: {int(np.sqrt(n)) - 1} bins, torch ({threads} threads)",
        ))
    shape = (4, 16, 128, 128)
    truth = rng.normal(size=shape).astype(np.float32)
    pred = truth + 0.1 * rng.normal(size=shape).astype(np.float32)
    dims = ("trajectory", "time", "x", "y")
    p_da, t_da = xr.DataArray(pred, dims=dims, name="u"), xr.DataArray(truth, dims=dims, name="u")
    x, y = torch.from_numpy(pred)[..., None], torch.from_numpy(truth)[..., None]
    meta = _meta(shape[2:])
    repeats = 5 if quick else 20
    for name, ours_fn, peer_fn, peer_name in (
        ("VRMSE", lambda: vrmse(p_da, t_da), lambda: VRMSE.eval(x, y, meta), "the_well VRMSE"),
        ("binned spectral MSE", lambda: binned_spectral_mse(p_da, t_da), lambda: well_binned.eval(x, y, meta),
         "the_well binned_spectral_mse"),
    ):
        ours = time_call(ours_fn, repeats)
        peer = time_call(peer_fn, repeats)
        results.append(Result(
            "analysis", f"{name} on a (4, 16, 128, 128) batch", ours, peer, peer_name,
            note=f"float32 in; ours sums in float64 on 1 core, peer float32 torch ({threads} threads)",
        ))
    return results


if __name__ == "__main__":
    for r in run(quick=True):
        print(f"{r.name:45s} ours {r.ours.median * 1e3:8.2f} ms  peer {r.peer.median * 1e3:8.2f} ms  ratio {r.ratio:.2f}")
