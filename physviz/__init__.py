"""physviz: physics foundation models in JupyterLab, fields as xarray."""
from __future__ import annotations

from physviz._lazy import lazy_attributes

__version__ = "0.1.0"

# Heavy modules (xarray, h5py, torch, panel) load on first use, not at import.
_LAZY = {
    "open_fields": "physviz.fields",
    "to_well": "physviz.fields",
    "simulate": "physviz.fields.simulate.run",
    "rollout": "physviz.model.autoregressive",
    "iter_rollout": "physviz.model.autoregressive",
    "load_model": "physviz.model.checkpoint",
    "finetune": "physviz.train.api",
    "train": ("physviz.train", None),
    "load_pretrained": "physviz.model.pretrained",
    "fields": ("physviz.fields", None),
    "analysis": ("physviz.analysis", None),
    "model": ("physviz.model", None),
    "jobs": ("physviz.jobs", None),
    "recipes": ("physviz.recipes", None),
    "widgets": ("physviz.widgets", None),
    "errors": ("physviz.errors", None),
}

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = lazy_attributes("physviz", globals(), _LAZY)
