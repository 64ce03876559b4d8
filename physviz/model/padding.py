"""The patch grid: padding a window up to a patch multiple and shifting the grid (patch jitter), then undoing both.

Per axis a plan says (periodic, roll, low, high). A periodic axis is rolled by the grid
shift and wrap-padded on the high side up to a patch multiple; any other axis is padded by
the shift on the low side and up to a patch multiple on the high side, by reflection or
zeros. A prediction is cropped, then rolled back, so it lines up with the input.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from physviz.errors import ParameterError
from physviz.model.inputs import AXES


class AxisPad(NamedTuple):
    """What happens to one spatial axis."""

    periodic: bool
    roll: int
    low: int
    high: int


def plan_padding(spatial: Sequence[int], bc: Sequence[int], patch: int,
                 shifts: Sequence[int] | None = None) -> list[AxisPad] | None:
    """Per axis padding for a grid and a shift of the patch grid; None when nothing is to be done."""
    plan = []
    for i, (size, periodic) in enumerate(zip(spatial, bc)):
        s = 0 if shifts is None else int(shifts[i]) % patch
        if periodic:
            plan.append(AxisPad(True, s, 0, (-size) % patch))
        else:
            plan.append(AxisPad(False, 0, s, (-(size + s)) % patch))
    return None if all(t[1:] == (0, 0, 0) for t in plan) else plan


def pad(x: torch.Tensor, plan: Sequence[AxisPad], mode: str) -> torch.Tensor:
    """Roll periodic axes and pad every axis of (B, T, C, *S) as planned (wrap where periodic, else `mode`)."""
    for i, (periodic, roll, low, high) in enumerate(plan):
        dim = 3 + i
        size = x.shape[dim]
        if roll:
            x = torch.roll(x, roll, dims=dim)
        if not (low or high):
            continue
        parts = []
        if periodic:
            if high > size:
                raise ParameterError(f"Axis {AXES[i]} has {size} points, too few to wrap-pad by {high}.")
            parts = [x, x.narrow(dim, 0, high)]
        elif mode == "reflect":
            if max(low, high) >= size:
                raise ParameterError(
                    f"Axis {AXES[i]} has {size} points, too few to reflect-pad by {max(low, high)}; "
                    "use pad_mode='zeros' in the model config."
                )
            if low:
                parts.append(x.narrow(dim, 1, low).flip(dim))
            parts.append(x)
            if high:
                parts.append(x.narrow(dim, size - 1 - high, high).flip(dim))
        else:
            shape = list(x.shape)
            if low:
                shape[dim] = low
                parts.append(x.new_zeros(shape))
            parts.append(x)
            if high:
                shape[dim] = high
                parts.append(x.new_zeros(shape))
        x = torch.cat(parts, dim=dim)
    return x


def unpad(y: torch.Tensor, plan: Sequence[AxisPad]) -> torch.Tensor:
    """Undo `pad` on a prediction (B, C, *S): crop, then roll back."""
    for i, (_periodic, roll, low, high) in enumerate(plan):
        dim = 2 + i
        if low or high:
            y = y.narrow(dim, low, y.shape[dim] - low - high)
        if roll:
            y = torch.roll(y, -roll, dims=dim)
    return y
