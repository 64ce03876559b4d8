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

from physviz._lazy import lazy_attributes

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


__getattr__, __dir__ = lazy_attributes("physviz.model", globals(), _LAZY)
