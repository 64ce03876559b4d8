"""Views: frame and spectrum update latency of the scrubber and spectrum comparer, against plain HoloViews in the same process.

Both sides are rendered into a Bokeh Document first, so every update runs Bokeh's change machinery as in a
live page (the browser's drawing is not timed).
"""
from __future__ import annotations

import numpy as np

from benchmarks.common import Result, time_call


def _pair(n: int, frames: int):  # noqa: ANN202 - two xarray Datasets
    import xarray as xr

    rng = np.random.default_rng(0)
    x = np.arange(n) / n
    truth = rng.normal(size=(frames, n, n)).astype(np.float32)
    pred = truth + 0.1 * rng.normal(size=truth.shape).astype(np.float32)
    coords = {"time": np.arange(frames) * 0.1, "x": x, "y": x}
    t = xr.Dataset({"u": (("time", "x", "y"), truth)}, coords=coords)
    p = xr.Dataset({"u": (("time", "x", "y"), pred)}, coords=coords)
    return t, p


def _cycle(player, frames: int):  # noqa: ANN001, ANN202
    state = {"k": 0}

    def step() -> None:
        state["k"] = (state["k"] + 1) % frames
        player.value = state["k"]

    return step


def run(quick: bool) -> list[Result]:
    """Frame update (3 panels) and spectrum update at 256^2 and 1024^2; per-frame spectra of an arriving frame."""
    import holoviews as hv
    import panel as pn
    from bokeh.document import Document

    from physviz.analysis import binned_spectral_nmse, power_spectrum
    from physviz.widgets import RolloutScrubber
    from physviz.widgets.spectrum import FrameSpectra

    results = []
    for n in (256, 1024):
        frames = 8 if n == 256 else 4
        repeats = (20 if n == 256 else 8) if quick else (100 if n == 256 else 30)
        truth, pred = _pair(n, frames)
        sc = RolloutScrubber(truth, pred)
        sp = sc.spectrum()
        sc.layout.get_root(Document())
        sp.layout.get_root(Document())
        ours = time_call(_cycle(sc.player, frames), repeats, warmup=frames)

        t_np, p_np = truth.u.values, pred.u.values
        pipes = [hv.streams.Pipe(data=a[0]) for a in (t_np, p_np, p_np - t_np)]
        images = [
            hv.DynamicMap(lambda data: hv.Image(data, bounds=(0, 0, 1, 1)), streams=[pipe]).opts(
                backend="bokeh", colorbar=True, clim=(-3, 3), tools=["hover"],
            ) for pipe in pipes
        ]
        pn.pane.HoloViews(hv.Layout(images)).get_root(Document())
        k = {"i": 0}

        def peer_step() -> None:
            k["i"] = (k["i"] + 1) % frames
            i = k["i"]
            pipes[0].send(t_np[i])
            pipes[1].send(p_np[i])
            pipes[2].send(p_np[i] - t_np[i])

        peer = time_call(peer_step, repeats, warmup=frames)
        shown = "512x512 (block mean)" if n > 512 else f"{n}x{n}"
        results.append(Result(
            "views", f"scrubber frame update, {n}x{n}", ours, peer, "HoloViews DynamicMap+Pipe, 3 Images",
            note=f"ours: read truth+prediction, error, stats, VRMSE cursor, 3 image sources in place ({shown}); "
            f"peer: 3 precomputed full-resolution arrays through HoloViews",
        ))

        # spectrum update when the player moves (spectra of every frame are kept, a few floats each)
        ours = time_call(_cycle(sc.player, frames), repeats, warmup=frames)
        ours_sp = time_call(lambda: sp._show(), repeats)
        specs = [(power_spectrum(truth.u.isel(time=i)).values[1:], power_spectrum(pred.u.isel(time=i)).values[1:])
                 for i in range(frames)]
        kk = np.asarray(power_spectrum(truth.u.isel(time=0)).wavenumber.values[1:])
        spipe = hv.streams.Pipe(data=specs[0])

        def curves(data):  # noqa: ANN001, ANN202
            e_t, e_p = data
            return (hv.Curve((kk, e_t), "k", "E") * hv.Curve((kk, e_p), "k", "E") + hv.Curve((kk, e_p / e_t), "k", "ratio"))

        dm = hv.DynamicMap(curves, streams=[spipe]).opts(hv.opts.Curve(backend="bokeh", logx=True, logy=True))
        pn.pane.HoloViews(dm).get_root(Document())
        j = {"i": 0}

        def peer_spec() -> None:
            j["i"] = (j["i"] + 1) % frames
            spipe.send(specs[j["i"]])

        peer = time_call(peer_spec, repeats, warmup=frames)
        results.append(Result(
            "views", f"spectrum update, {n}x{n}", ours_sp, peer, "HoloViews DynamicMap+Pipe, E(k) x2 + ratio",
            note=f"ours: E(k) truth/prediction, ratio, 2 cursors, binned-error table from kept spectra; "
            f"the whole player step with the scrubber and linked spectrum: {ours.median * 1e3:.1f} ms",
        ))

        # what each newly arrived (or first seen) frame costs: spectra and The Well's binned errors
        calc = FrameSpectra(truth.u, ["x", "y"])
        a, b = t_np[0], p_np[0]
        da_t, da_p = truth.u.isel(time=0), pred.u.isel(time=0)
        reps = (10 if n == 256 else 3) if quick else (30 if n == 256 else 10)
        ours = time_call(lambda: calc(a, b), reps)
        peer = time_call(lambda: (power_spectrum(da_t), power_spectrum(da_p), binned_spectral_nmse(da_p, da_t)), reps)
        results.append(Result(
            "views", f"spectra of one arriving {n}x{n} frame", ours, peer, "physviz.analysis (3 calls)",
            note="ours: 2 FFTs binned on shells and on The Well's bins; peer: power_spectrum x2 + binned_spectral_nmse (4 FFTs)",
        ))
    return results


if __name__ == "__main__":
    for r in run(quick=True):
        print(f"{r.name:45s} ours {r.ours.median * 1e3:8.2f} ms  peer {r.peer.median * 1e3:8.2f} ms  ratio {r.ratio:.2f}")
