"""Walrus's patch jitter (the periodic fixed jitterer): random rolls of the padded input and of the token grid.

Before encoding, each axis longer than 1 whose stride is more than one point is rolled by
a random amount: within its boundary padding on a non-periodic axis (the padding is
widened by half a stride on each side when jittering, see `padding.plan_axes`), by up to
half the axis on a periodic one. Before every processor block the token grid is rolled
again by a random amount along each periodic axis; the rolls are undone after the last
block and after decoding. So the patch grid never sits at the same place, and errors do
not lock onto it. Draws come from a `torch.Generator`, so a seeded pass is repeatable.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from physviz.model.walrus.padding import AxisPlan


def _draw(low: int, high: int, gen: torch.Generator | None) -> int:
    """An integer in [low, high) (low when the range is empty)."""
    if high <= low:
        return low
    return int(torch.randint(low, high, (), generator=gen))


def input_rolls(plans: Sequence[AxisPlan], gen: torch.Generator | None) -> list[int]:
    """The roll of each spatial axis before encoding (0 on length-1 axes and one-point strides)."""
    rolls = []
    for p in plans:
        if p.singleton or p.stride <= 1:
            rolls.append(0)
            continue
        half = p.length // 2 if p.periodic else min(p.pad_lo, p.pad_hi)
        rolls.append(_draw(-(half - 1), half, gen) if half > 0 else 0)
    return rolls


def block_rolls(plans: Sequence[AxisPlan], n_blocks: int, gen: torch.Generator | None) -> list[list[int]]:
    """For each block, the roll of the token grid along each axis (periodic axes only)."""
    out = []
    for _ in range(n_blocks):
        out.append([_draw(0, p.tokens, gen) if p.periodic else 0 for p in plans])
    return out


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with `seed` (a random seed when None)."""
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen
