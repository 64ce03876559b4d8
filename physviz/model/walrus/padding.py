"""Walrus's token grid: the stride choice per axis, the learned boundary padding and its boundary-flag channels.

Strides. Walrus's encoder has two strided convolutions per axis (base kernels 8 and 4);
their strides (s1, s2) are chosen from the axis length so that a 2D field gets about
``tokens_2d`` (32) tokens per axis and a 3D field about ``tokens_3d`` (16). The public code
looks the stride pair up in a table keyed by ``length // target``: {1: (1, 1), 4: (2, 2),
8: (4, 2), 12: (6, 2), 16: (4, 4), 24: (6, 4), 32: (8, 4)}, and refuses every other length
(2D axes of 64, 3D axes of 32: ``KeyError: 2``). physviz uses that table wherever it has the
length, so it matches the reference there; for any other length it picks, from the same
pairs plus (2, 1) (each of its two convolutions at a stride Walrus trained with), the pair
whose token count is nearest the target (ratio closest to 1; ties take more tokens).
On a periodic axis the stride must divide the length; elsewhere the high side is padded
up to a multiple of the stride (the padding is boundary, as the learned padding is) and
cropped after decoding. An axis of length 1 is absent (2D runs as 3D with a length-1 axis).

Boundary padding. Every axis longer than 1 is padded by ``e = (k1 + s1 (k2 - 1) - s1 s2) // 2``
points on each side, so the convolutions return exactly ``length / stride`` tokens: by
wrapping on a periodic axis, with zeros elsewhere (plus half a stride more on each side
when jittering). Three channels are appended to the fields: bias correction (1 inside the
domain, 0 in the boundary padding), closed boundary and open boundary (1 in the padding of
a side whose condition is wall or open; corners add up). Their field slots are 2, 0 and 1.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from physviz.errors import ParameterError

WALL, OPEN, PERIODIC = 0, 1, 2  # the_well's BoundaryCondition values
BC_NAMES = {"wall": WALL, "open": OPEN, "periodic": PERIODIC}

REFERENCE_TABLE: dict[int, tuple[int, int]] = {
    1: (1, 1), 4: (2, 2), 8: (4, 2), 12: (6, 2), 16: (4, 4), 24: (6, 4), 32: (8, 4),
}
CANDIDATES: tuple[tuple[int, int], ...] = ((1, 1), (2, 1), (2, 2), (4, 2), (6, 2), (4, 4), (6, 4), (8, 4))


@dataclass(frozen=True)
class AxisPlan:
    """How one spatial axis becomes tokens: strides, paddings (constant and wrapped), tokens."""

    length: int
    singleton: bool
    periodic: bool
    strides: tuple[int, int]
    pad_lo: int  # zeros before the axis (non-periodic axes)
    pad_hi: int  # zeros after it (boundary + jitter + up to a stride multiple)
    wrap: int  # points wrapped around on each side (periodic axes)
    tokens: int

    @property
    def stride(self) -> int:
        """Points per token."""
        return self.strides[0] * self.strides[1]


def reference_strides(length: int, target: int) -> tuple[int, int] | None:
    """The public code's stride pair for an axis length, or None where it refuses the length."""
    if length == 1:
        return (1, 1)
    if length % target == 0 and length // target in REFERENCE_TABLE:
        return REFERENCE_TABLE[length // target]
    return None


def choose_strides(length: int, target: int, periodic: bool) -> tuple[int, int]:
    """The stride pair of an axis: the reference's where it has one, else the nearest to `target` tokens."""
    ref = reference_strides(length, target)
    if ref is not None:
        return ref
    best: tuple[float, int, tuple[int, int]] | None = None
    for pair in CANDIDATES:
        s = pair[0] * pair[1]
        if periodic and length % s:
            continue
        tokens = -(-length // s)
        score = abs(math.log(tokens / target))
        key = (round(score, 12), s, pair)
        if best is None or key[:2] < best[:2]:
            best = key
    assert best is not None  # (1, 1) always fits
    return best[2]


def boundary_pad(kernels: Sequence[int], strides: tuple[int, int]) -> int:
    """Points of boundary padding on each side that make the two convolutions return length / stride tokens."""
    (k1, k2), (s1, s2) = kernels, strides
    return (k1 + s1 * (k2 - 1) - s1 * s2) // 2


def plan_axes(shape: Sequence[int], bcs: Sequence[Sequence[int]], kernels: Sequence[Sequence[int]], *,
              tokens_2d: int, tokens_3d: int, min_points: int, jitter: bool) -> list[AxisPlan]:
    """The plan of each of the 3 spatial axes (`shape` padded to 3 axes, `bcs` Walrus codes per axis)."""
    active = [n for n in shape if n != 1]
    if len(active) not in (2, 3):
        raise ParameterError(
            f"Walrus takes 2D or 3D fields; this input's spatial shape {tuple(shape)} has {len(active)} "
            "axes longer than 1."
        )
    small = [n for n in active if n < min_points]
    if small:
        raise ParameterError(
            f"The grid {tuple(shape)} is below one Walrus token along an axis: axes longer than 1 need at least "
            f"{min_points} points (got {small})."
        )
    target = tokens_3d if len(active) == 3 else tokens_2d
    plans = []
    for i, n in enumerate(shape):
        if n == 1:
            plans.append(AxisPlan(1, True, False, (1, 1), 0, 0, 0, 1))
            continue
        periodic = int(bcs[i][0]) == PERIODIC
        strides = choose_strides(n, target, periodic)
        s = strides[0] * strides[1]
        e = boundary_pad(kernels[i], strides)
        fit = (-n) % s
        if periodic:
            plans.append(AxisPlan(n, False, True, strides, 0, 0, e, n // s))
        else:
            j = s // 2 if jitter else 0
            plans.append(AxisPlan(n, False, False, strides, e + j, e + j + fit, 0, (n + fit + 2 * j) // s))
    return plans


def wrap_pad(x: torch.Tensor, dim: int, pad: int) -> torch.Tensor:
    """Circular padding of `pad` points on both sides of `dim` (any pad, also beyond the axis length)."""
    if pad == 0:
        return x
    n = x.shape[dim]
    if pad <= n:
        return torch.cat([x.narrow(dim, n - pad, pad), x, x.narrow(dim, 0, pad)], dim)
    idx = torch.arange(-pad, n + pad, device=x.device) % n
    return x.index_select(dim, idx)


def pad_and_flag(x: torch.Tensor, plans: Sequence[AxisPlan], bcs: Sequence[Sequence[int]]) -> torch.Tensor:
    """Zero-pad the non-periodic axes of x (N, C, *3 axes) and append the three boundary-flag channels.

    The flags are bias correction (1 except in boundary padding), closed and open boundary
    (1 in the padding of a wall / open side). Wrapping of periodic axes comes later (after
    the jitter roll).
    """
    pad: list[int] = []
    for p in reversed(plans):
        pad += [p.pad_lo, p.pad_hi]
    if any(pad):
        x = torch.nn.functional.pad(x, pad)
    N, _, *S = x.shape
    flags = x.new_zeros((N, 3, *S))
    flags[:, 0] = 1.0
    for i, p in enumerate(plans):
        if p.singleton or p.periodic:
            continue
        for side, width in ((0, p.pad_lo), (1, p.pad_hi)):
            if width == 0:
                continue
            start = 0 if side == 0 else S[i] - width
            region = [slice(None)] * (2 + len(S))
            region[2 + i] = slice(start, start + width)
            region[1] = 1 + int(bcs[i][side])
            flags[tuple(region)] += 1.0
            region[1] = 0
            flags[tuple(region)] = 0.0
    return torch.cat([x, flags], dim=1)


def wrap_periodic(x: torch.Tensor, plans: Sequence[AxisPlan]) -> torch.Tensor:
    """Wrap-pad the periodic axes of x (N, C, *3 axes)."""
    for i, p in enumerate(plans):
        if p.periodic:
            x = wrap_pad(x, 2 + i, p.wrap)
    return x


def crop(y: torch.Tensor, plans: Sequence[AxisPlan], *, wrapped: bool) -> torch.Tensor:
    """Remove the wrapped points (``wrapped=True``) or the constant padding from y (N, C, *3 axes)."""
    for i, p in enumerate(plans):
        lo, hi = (p.wrap, p.wrap) if wrapped else (p.pad_lo, p.pad_hi)
        if lo or hi:
            y = y.narrow(2 + i, lo, y.shape[2 + i] - lo - hi)
    return y
