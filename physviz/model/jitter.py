"""Patch jitter: random shifts of the patch grid, in training steps and as ensembles of shifted passes at inference.

A shift moves the patch grid by [0, patch) points per axis (`physviz.model.padding`), so
patch seams fall elsewhere; averaging several shifted predictions smooths them out, which
keeps long rollouts stable (Walrus). Ensemble members are drawn from a generator seeded
with ``jitter_seed``, so an ensemble is reproducible.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from physviz.errors import ParameterError

Shifts = list[int]


def training_shifts(n_axes: int, patch: int) -> Shifts:
    """One random shift per axis from torch's global generator (a training step)."""
    return torch.randint(0, patch, (n_axes,)).tolist()


def ensemble_shifts(n_axes: int, patch: int, *, ensemble: int = 1, jitter_seed: int | None = None,
                    shifts: Sequence[Sequence[int]] | None = None, jitter: bool = False) -> list[Shifts] | None:
    """Per-member shifts of an ensemble; None for one pass on the plain grid.

    ``shifts`` gives the members explicitly. Otherwise members are drawn when ``jitter_seed``
    is given, ``ensemble > 1`` or the model jitters (``jitter``): ``ensemble`` members of one
    shift in [0, patch) per axis each, from a generator seeded with ``jitter_seed`` (random
    when None).
    """
    if isinstance(ensemble, bool) or int(ensemble) != ensemble or ensemble < 1:
        raise ParameterError(f"ensemble={ensemble!r} must be a whole number of at least 1.")
    if shifts is not None:
        members = [[int(s) for s in m] for m in shifts]
        if not members or any(len(m) != n_axes for m in members):
            raise ParameterError(f"shifts must be a list of ensemble members, each with {n_axes} per-axis shifts.")
        return members
    if jitter_seed is None and ensemble == 1 and not jitter:
        return None
    gen = torch.Generator()
    if jitter_seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(jitter_seed))
    return torch.randint(0, patch, (int(ensemble), n_axes), generator=gen).tolist()


def ensemble_mean(predict: Callable[[Shifts], torch.Tensor], members: Sequence[Shifts]) -> torch.Tensor:
    """The mean of `predict(shifts)` over the members, summed in member order."""
    out = None
    for m in members:
        y = predict(list(m))
        out = y if out is None else out + y
    assert out is not None
    return out / len(members)
