"""Wavenumber grids, cached bin indices and binned Fourier power of real fields (numpy FFT)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from physviz.errors import OptionError

_CHUNK = 1 << 20  # modes per np.bincount call when many frames are binned at once


@dataclass(frozen=True)
class Binning:
    """Which isotropic bin each rfftn mode falls in (index n_bins = dropped) and what the bins are."""

    index: np.ndarray  # flat bin index per mode of the rfftn half-grid
    weight: np.ndarray  # multiplicity of each rfftn column along the last axis (1 or 2)
    counts: np.ndarray  # modes of the full FFT grid in each bin
    lower: np.ndarray
    upper: np.ndarray
    centre: np.ndarray

    @property
    def n_bins(self) -> int:
        return len(self.centre)


def half_weights(n: int) -> np.ndarray:
    """How many modes of a length-n FFT each rfft coefficient stands for (conjugate pairs count twice)."""
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w


def wavenumber_magnitude(shape: tuple[int, ...], lengths: tuple[float, ...]) -> np.ndarray:
    """|k| on the rfftn half-grid of `shape`, k_i = 2*pi*m/L_i (radians per unit length)."""
    k2 = np.zeros(shape[:-1] + (shape[-1] // 2 + 1,))
    nd = len(shape)
    for i, (n, length) in enumerate(zip(shape, lengths)):
        freq = np.fft.rfftfreq(n) if i == nd - 1 else np.fft.fftfreq(n)
        k = 2 * np.pi * freq * n / length
        k2 += (k**2).reshape((-1,) + (1,) * (nd - 1 - i))
    return np.sqrt(k2)


@lru_cache(maxsize=16)
def binning(
    shape: tuple[int, ...], lengths: tuple[float, ...], edges: tuple[float, ...] | None = None, n_bins: int | None = None
) -> Binning:
    """Bins of |k|: shells m*dk (default), `n_bins` equal bins from 0 to max|k|, or explicit `edges`."""
    kmag = wavenumber_magnitude(shape, lengths)
    weight = half_weights(shape[-1])
    if edges is None and n_bins is None:
        dk = min(2 * np.pi / length for length in lengths)
        index = np.floor(kmag / dk + 0.5).astype(np.intp)
        nb = int(index.max()) + 1
        centre = dk * np.arange(nb)
        lower, upper = np.maximum(centre - dk / 2, 0.0), centre + dk / 2
    else:
        if edges is None:
            kmax = float(kmag.max())
            e = np.linspace(0.0, kmax, n_bins + 1)
            e[-1] = np.nextafter(kmax, np.inf)
        else:
            e = np.asarray(edges, dtype=np.float64)
        nb = len(e) - 1
        index = np.searchsorted(e, kmag, side="right") - 1
        index[(index < 0) | (index >= nb)] = nb
        lower, upper = e[:-1], e[1:]
        centre = (lower + upper) / 2
    index = index.ravel()
    full = np.broadcast_to(weight, kmag.shape).ravel()
    counts = np.bincount(index, weights=full, minlength=nb + 1)[:nb].astype(np.int64)
    index.setflags(write=False)
    return Binning(index, weight, counts, lower, upper, centre)


def check_edges(bins: object) -> tuple[float, ...] | int | None:
    """Normalise a `bins` option: None, a positive int, or increasing edges (at least two)."""
    if bins is None:
        return None
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise OptionError(f"bins={bins} must be a positive number of bins.")
        return int(bins)
    try:
        e = np.asarray(bins, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise OptionError("bins must be None, a number of bins, or a 1D sequence of bin edges.") from exc
    if e.ndim != 1 or len(e) < 2 or not np.all(np.isfinite(e)) or not np.all(np.diff(e) > 0):
        raise OptionError("bins edges must be a 1D, finite, strictly increasing sequence of at least two values.")
    return tuple(float(v) for v in e)


def binned_power(frames: np.ndarray, nd: int, b: Binning) -> np.ndarray:
    """Sum over each bin of |FFT(u)|^2 / N^2 for frames of shape (B, *spatial): array (B, n_bins)."""
    spatial = frames.shape[1:]
    total = float(np.prod(spatial))
    f = np.fft.rfftn(frames, axes=tuple(range(1, nd + 1)))
    p = f.real**2
    p += f.imag**2
    del f
    p *= b.weight
    p = p.reshape(len(frames), -1)
    nb1 = b.n_bins + 1
    out = np.empty((len(frames), nb1))
    m = p.shape[1]
    rows = max(1, min(len(frames), _CHUNK // max(m, 1)))
    offsets = b.index if rows == 1 else (np.arange(rows)[:, None] * nb1 + b.index[None, :]).ravel()
    for start in range(0, len(frames), rows):
        r = min(rows, len(frames) - start)
        idx = offsets[: r * m]
        out[start : start + r] = np.bincount(idx, weights=p[start : start + r].ravel(), minlength=r * nb1).reshape(r, nb1)
    return out[:, : b.n_bins] / total**2


def axis_power(frames: np.ndarray, nd: int, axis: int) -> np.ndarray:
    """1D spectrum along spatial `axis` (0-based) averaged over the others: (B, n_axis//2 + 1), sums to mean(u^2)."""
    n = frames.shape[1 + axis]
    f = np.fft.rfft(frames, axis=1 + axis)
    p = f.real**2
    p += f.imag**2
    del f
    others = tuple(1 + i for i in range(nd) if i != axis)
    p = p.mean(axis=others) if others else p
    return p * half_weights(n) / n**2
