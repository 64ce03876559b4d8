"""The MPP-family space-time transformer, field registry, checkpoints and rollout.

Names load on first use, so ``import physviz.model`` stays light until a model is built:

- ``AViT``: the model (2D/3D, MPP-exact, with delta prediction, patch jitter, any resolution).
- ``ModelConfig``: its validated config with presets ``tiny``, ``Ti``, ``S``, ``B``, ``L``.
- ``FieldRegistry``: field name -> embedding slot (MPP's table and ours).
- ``load_mpp_checkpoint``, ``load_model``, ``save_model``: checkpoints.
- ``load_pretrained``: the bundled model (no network).
- ``rollout``, ``iter_rollout``: autoregressive predictions in the physviz schema.
"""
from __future__ import annotations

from typing import Any

_LAZY = {
    "AViT": "physviz.model.avit",
    "flops": "physviz.model.avit",
    "ModelConfig": "physviz.model.config",
    "PRESETS": "physviz.model.config",
    "FieldRegistry": "physviz.model.registry",
    "load_mpp_checkpoint": "physviz.model.checkpoint",
    "load_model": "physviz.model.checkpoint",
    "save_model": "physviz.model.checkpoint",
    "read_model_info": "physviz.model.checkpoint",
    "load_pretrained": "physviz.model.pretrained",
    "pretrained_path": "physviz.model.pretrained",
    "rollout": "physviz.model.autoregressive",
    "iter_rollout": "physviz.model.autoregressive",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    """Import on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'physviz.model' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
