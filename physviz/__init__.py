"""physviz: physics foundation models in JupyterLab, fields as xarray."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Heavy modules (xarray, h5py, torch, panel) load on first use, not at import.
_LAZY = {
    "open_fields": ("physviz.fields", "open_fields"),
    "to_well": ("physviz.fields", "to_well"),
    "simulate": ("physviz.fields.simulate.run", "simulate"),
    "rollout": ("physviz.model.autoregressive", "rollout"),
    "iter_rollout": ("physviz.model.autoregressive", "iter_rollout"),
    "load_model": ("physviz.model.checkpoint", "load_model"),
    "finetune": ("physviz.train.api", "finetune"),
    "train": ("physviz.train", None),
    "load_pretrained": ("physviz.model.pretrained", "load_pretrained"),
    "fields": ("physviz.fields", None),
    "analysis": ("physviz.analysis", None),
    "model": ("physviz.model", None),
    "jobs": ("physviz.jobs", None),
    "widgets": ("physviz.widgets", None),
    "errors": ("physviz.errors", None),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import public names lazily so `import physviz` stays fast."""
    if name not in _LAZY:
        raise AttributeError(f"module 'physviz' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
