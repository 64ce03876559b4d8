"""Process-level tuning for CPU inference: glibc's allocator keeps freed activation blocks for reuse."""
from __future__ import annotations

import ctypes
import os
import platform

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_state: dict[str, bool] = {}


def tune_cpu_allocator(mmap_threshold_mb: int = 64, trim_threshold_mb: int = 512, top_pad_mb: int = 16) -> bool:
    """Raise glibc's mmap and trim thresholds, once per process; True if they were set.

    A forward pass allocates and frees hundreds of activation buffers of about 1 MB. By
    default glibc serves each from a fresh mmap (or trims the heap after it is freed), so
    every buffer is page-faulted in again: ~5000 faults per Ti step. With the thresholds
    raised, freed blocks stay in the heap and are reused (up to ``trim_threshold_mb`` of
    freed memory is kept from the kernel). Opt out with ``PHYSVIZ_MALLOC_TUNING=0``.
    """
    if "done" in _state:
        return _state["done"]
    ok = False
    if os.environ.get("PHYSVIZ_MALLOC_TUNING", "1") != "0" and platform.system() == "Linux" \
            and platform.libc_ver()[0] == "glibc":
        try:
            libc = ctypes.CDLL("libc.so.6")
            ok = all(libc.mallopt(p, v << 20) == 1 for p, v in (
                (_M_MMAP_THRESHOLD, mmap_threshold_mb), (_M_TRIM_THRESHOLD, trim_threshold_mb), (_M_TOP_PAD, top_pad_mb)))
        except (OSError, AttributeError):
            ok = False
    _state["done"] = ok
    return ok
