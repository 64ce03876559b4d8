"""Balanced multi-dataset micro-batches, deterministic and identical across ranks.

Micro-batch ``m`` comes from dataset ``choice(m)``, drawn with the configured weights from
a generator seeded by ``(seed, m // BLOCK)``: every rank computes the same choice, so a
micro-batch is homogeneous in dataset everywhere (as in MPP and Walrus) and no rank waits
on another's shapes. Each dataset has an endless stream of window indices, one seeded
permutation per epoch; a micro-batch takes the next ``per_rank * world`` of them and rank
``r`` keeps slice ``r``. So the union over ranks equals what a single process with the
whole global batch draws, and the state is just ``(m, cursors)``.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

BLOCK = 4096


class MixedBatchSampler:
    """Yields lists of ``(dataset, window, micro_index)`` for one rank; resumable from its state."""

    def __init__(self, sizes: Sequence[int], per_rank: Sequence[int], weights: Sequence[float], *,
                 world: int = 1, rank: int = 0, seed: int = 0) -> None:
        if not sizes or len(sizes) != len(per_rank) or len(sizes) != len(weights):
            raise ValueError("sizes, per_rank and weights must be non-empty and of equal length")
        self.sizes = [int(s) for s in sizes]
        self.per_rank = [int(b) for b in per_rank]
        w = np.asarray(weights, dtype=np.float64)
        self.p = w / w.sum()
        self.world, self.rank, self.seed = int(world), int(rank), int(seed)
        self.micro = 0
        self.cursors = [0] * len(self.sizes)
        self._block: tuple[int, np.ndarray] | None = None
        self._perms: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._history: OrderedDict[int, list[int]] = OrderedDict()

    # -- pure functions of the seed ---------------------------------------------------
    def choice(self, m: int) -> int:
        """The dataset of micro-batch m (the same on every rank)."""
        if len(self.sizes) == 1:
            return 0
        b = m // BLOCK
        if self._block is None or self._block[0] != b:
            rng = np.random.default_rng([self.seed, 0x5EED, b])
            self._block = (b, rng.choice(len(self.sizes), size=BLOCK, p=self.p))
        return int(self._block[1][m % BLOCK])

    def _perm(self, d: int, epoch: int) -> np.ndarray:
        key = (d, epoch)
        perm = self._perms.get(key)
        if perm is None:
            perm = np.random.default_rng([self.seed, 0xDA7A, d, epoch]).permutation(self.sizes[d])
            self._perms[key] = perm
            while len(self._perms) > 2 * len(self.sizes) + 2:
                self._perms.popitem(last=False)
        return perm

    def stream(self, d: int, start: int, n: int) -> np.ndarray:
        """Positions start..start+n of dataset d's endless stream of window indices."""
        out = np.empty(n, dtype=np.int64)
        size = self.sizes[d]
        pos, k = start, 0
        while k < n:
            epoch, off = divmod(pos, size)
            take = min(n - k, size - off)
            out[k:k + take] = self._perm(d, epoch)[off:off + take]
            k += take
            pos += take
        return out

    # -- iteration -------------------------------------------------------------------
    def next_batch(self) -> list[tuple[int, int, int]]:
        """This rank's next micro-batch as (dataset, window, micro) triples; advances the state."""
        m = self.micro
        d = self.choice(m)
        b = self.per_rank[d]
        idx = self.stream(d, self.cursors[d] + self.rank * b, b)
        self.cursors[d] += b * self.world
        self.micro += 1
        self._history[m] = list(self.cursors)
        while len(self._history) > 4096:
            self._history.popitem(last=False)
        return [(d, int(i), m) for i in idx]

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        while True:
            yield self.next_batch()

    # -- state ---------------------------------------------------------------------------
    def state_after(self, m: int) -> dict[str, Any]:
        """The state right after micro-batch m was drawn (the loader may have drawn further ahead)."""
        if m < 0:
            return {"micro": 0, "cursors": [0] * len(self.sizes)}
        if m not in self._history:
            raise KeyError(f"micro-batch {m} is no longer in the sampler's history")
        return {"micro": m + 1, "cursors": list(self._history[m])}

    def state_dict(self) -> dict[str, Any]:
        """Current state (micro index and per-dataset stream positions)."""
        return {"micro": self.micro, "cursors": list(self.cursors), "sizes": list(self.sizes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved state."""
        cursors = [int(c) for c in state["cursors"]]
        if len(cursors) != len(self.sizes):
            raise ValueError(f"the saved sampler has {len(cursors)} datasets, this run {len(self.sizes)}")
        self.micro = int(state["micro"])
        self.cursors = cursors
        self._history.clear()
        if self.micro > 0:
            self._history[self.micro - 1] = list(cursors)

    def epoch(self, cursors: Sequence[int] | None = None) -> int:
        """Whole passes over all windows so far (global samples drawn / total windows)."""
        c = self.cursors if cursors is None else cursors
        return int(sum(c) // max(1, sum(self.sizes)))
