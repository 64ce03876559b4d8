"""Timing helpers and the result record every benchmark returns."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Timing:
    """Median and spread of repeated timings, in seconds."""

    median: float
    low: float
    high: float
    repeats: int

    @classmethod
    def of(cls, samples: list[float]) -> "Timing":
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))


@dataclass
class Result:
    """One benchmark row: ours, the peer, and ours/peer."""

    area: str
    name: str
    ours: Timing
    peer: Timing | None
    peer_name: str
    unit: str = "s"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.ours.median / self.peer.median if self.peer else float("nan")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = self.ratio
        return d


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> Timing:
    """Time fn() `repeats` times after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return Timing.of(samples)


def time_python(code: str, repeats: int) -> Timing:
    """Time a fresh interpreter running `code`, minus the time of an empty interpreter."""
    def run(src: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", src], check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        return time.perf_counter() - t0

    run(code)  # warm the page cache and .pyc files
    base = [run("pass") for _ in range(repeats)]
    samples = [run(code) for _ in range(repeats)]
    empty = statistics.median(base)
    return Timing.of([max(s - empty, 1e-6) for s in samples])


def machine_info() -> dict[str, Any]:
    """CPU, cores, Python and library versions of this run."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        info["cpu"] = platform.processor()
    for mod in ("numpy", "xarray", "h5py", "torch"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["gpu"] = None
    return info
