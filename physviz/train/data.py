"""Torch side of the data: a map-style dataset over window sources, collation, the loader."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from physviz.train.sampler import MixedBatchSampler


class WindowDataset(Dataset):
    """Item ``(dataset, window, micro)`` -> ``(dataset, micro, x, y)`` with x (T, C, *S), y (C, *S)."""

    def __init__(self, sources: Sequence[Any]) -> None:
        self.sources = list(sources)

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[int, int, np.ndarray, np.ndarray]:
        from physviz.train.sources import checked_window

        d, i, m = key
        x, y = checked_window(self.sources[d], i)
        return d, m, x, y


def collate(items: list[tuple[int, int, np.ndarray, np.ndarray]]) -> tuple[int, int, torch.Tensor, torch.Tensor]:
    """Stack one homogeneous micro-batch."""
    d, m = items[0][0], items[0][1]
    x = torch.from_numpy(np.stack([it[2] for it in items]))
    y = torch.from_numpy(np.stack([it[3] for it in items]))
    return d, m, x, y


def make_loader(sources: Sequence[Any], sampler: MixedBatchSampler, num_workers: int, pin: bool) -> DataLoader:
    """A DataLoader drawing micro-batches from the sampler (workers read windows in parallel)."""
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs = {"persistent_workers": True, "prefetch_factor": 2}
    # Its own generator: creating the iterator must not draw from the global RNG (exact resume).
    gen = torch.Generator()
    gen.manual_seed(sampler.seed)
    return DataLoader(WindowDataset(sources), batch_sampler=sampler, num_workers=num_workers, collate_fn=collate,
                      pin_memory=pin, generator=gen, **kwargs)
