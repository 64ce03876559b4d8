"""Built-in PDE simulators (batched PyTorch, seeded) returning physviz Datasets."""
from __future__ import annotations

from typing import Any

__all__ = ["simulate", "SYSTEMS", "make_solver", "write_splits"]


def __getattr__(name: str) -> Any:
    """Load torch only when a simulator is used."""
    if name in __all__:
        from physviz.fields.simulate import run

        return getattr(run, name)
    raise AttributeError(f"module 'physviz.fields.simulate' has no attribute {name!r}")
