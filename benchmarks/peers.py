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
