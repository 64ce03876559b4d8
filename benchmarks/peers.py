"""Peers loaded for side-by-side runs: the_well's AViT (with a stand-in for timm), and the matmul peak."""
from __future__ import annotations

import importlib.util
import sys
import time
import types
from pathlib import Path
from typing import Any


def _stand_in_timm() -> None:
    """the_well's AViT uses only timm.layers.DropPath (identity at rate 0); timm needs torchvision, absent here."""
    import torch.nn as nn

    if "timm.layers" in sys.modules:
        return

    class DropPath(nn.Module):
        """Identity when drop rate is 0 (benchmarks run in eval mode)."""

        def __init__(self, drop_prob: float = 0.0) -> None:
            super().__init__()
            self.drop_prob = drop_prob

        def forward(self, x: Any) -> Any:
            return x

    timm = types.ModuleType("timm")
    layers = types.ModuleType("timm.layers")
    layers.DropPath = DropPath  # type: ignore[attr-defined]
    timm.layers = layers  # type: ignore[attr-defined]
    sys.modules.setdefault("timm", timm)
    sys.modules["timm.layers"] = layers


def the_well_avit_class() -> Any:
    """the_well.benchmark.models.avit.AViT without importing every other model of the package."""
    _stand_in_timm()
    spec = importlib.util.find_spec("the_well")
    if spec is None or spec.origin is None:
        raise ImportError("the-well is not installed (pip install the-well)")
    folder = Path(spec.origin).parent / "benchmark" / "models"
    if "the_well.benchmark.models" not in sys.modules:
        import the_well.benchmark  # noqa: F401

        pkg = types.ModuleType("the_well.benchmark.models")
        pkg.__path__ = [str(folder)]  # type: ignore[attr-defined]
        sys.modules["the_well.benchmark.models"] = pkg
    from the_well.benchmark.models.avit import AViT

    return AViT


def matmul_peak_gflops(sizes: tuple[int, ...] = (1024, 2048, 4096), repeats: int = 5) -> float:
    """This machine's float32 matrix-multiply peak (GFLOP/s): the best rate over square sizes and repeats."""
    import torch

    rates = []
    for n in sizes:
        a = torch.randn(n, n)
        b = torch.randn(n, n)
        torch.mm(a, b)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
        rates.append(2 * n**3 / best / 1e9)
    return max(rates)


def interleaved_peak_fraction(step: Any, flops: float, rounds: int = 10, size: int = 4096, peak_repeats: int = 2,
                              step_repeats: int = 3) -> dict[str, Any]:
    """Fraction of the matmul peak reached by `step`, with the peak re-measured beside every timing.

    This machine's speed drifts by up to 2x within a minute (other tenants on the host), so a
    peak taken once before and once after a run mixes fast and slow moments. Each round
    here times a `size`^3 float32 product (best of `peak_repeats`) and then `step` (median
    of `step_repeats`) back to back; the fraction of each round uses its own peak. Returns
    the per-round fractions, step times and peaks, with their medians.
    """
    import statistics

    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    step()
    fractions, steps, peaks = [], [], []
    for _ in range(rounds):
        best = float("inf")
        for _ in range(peak_repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
        peak = 2 * size**3 / best / 1e9
        samples = []
        for _ in range(step_repeats):
            t0 = time.perf_counter()
            step()
            samples.append(time.perf_counter() - t0)
        t_step = statistics.median(samples)
        fractions.append(flops / t_step / 1e9 / peak)
        steps.append(t_step)
        peaks.append(peak)
    return {"fractions": fractions, "steps": steps, "peaks": peaks, "fraction": statistics.median(fractions),
            "step": statistics.median(steps), "peak": statistics.median(peaks)}
