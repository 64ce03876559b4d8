"""Model families behind one interface, the field registry, checkpoints and rollout.

Names load on first use, so ``import physviz.model`` stays light until a model is built:

- ``PhysicsModel``: the interface every family implements (`physviz.model.family`).
- ``AViT``: the MPP-family transformer (2D/3D, MPP-exact, with delta prediction, patch jitter, any resolution).
- ``Walrus``, ``WalrusConfig``, ``load_walrus``: the Walrus family (`physviz.model.walrus`) and its checkpoints.
- ``ModelConfig``: its config (on `physviz.typed_config`) with presets ``tiny``, ``Ti``, ``S``, ``B``, ``L``.
- ``FieldRegistry``: field name -> embedding slot (MPP's table and ours).
- ``load_model``, ``save_model``, ``read_model_info``: checkpoints of any family;
  ``load_mpp_checkpoint``: official MPP weights.
- ``load_pretrained``: the bundled model (no network).
- ``rollout``, ``iter_rollout``: autoregressive predictions in the physviz schema.
- ``ensure_field_slots``, ``expand_fields``, ``add_refiner``, ``freeze``: weight surgery (`physviz.model.surgery`).
- ``flops``: FLOP count of a forward pass.
"""
from __future__ import annotations

from physviz._lazy import lazy_attributes

_LAZY = {
    "PhysicsModel": "physviz.model.family",
    "FAMILIES": "physviz.model.family",
    "AViT": "physviz.model.avit",
    "Walrus": "physviz.model.walrus.model",
    "WalrusConfig": "physviz.model.walrus.config",
    "load_walrus": "physviz.model.walrus.released",
    "flops": "physviz.model.flops",
    "ModelConfig": "physviz.model.config",
    "PRESETS": "physviz.model.config",
    "FieldRegistry": "physviz.model.registry",
    "load_mpp_checkpoint": "physviz.model.mpp",
    "load_model": "physviz.model.checkpoint",
    "save_model": "physviz.model.checkpoint",
    "read_model_info": "physviz.model.checkpoint",
    "load_pretrained": "physviz.model.pretrained",
    "pretrained_path": "physviz.model.pretrained",
    "rollout": "physviz.model.autoregressive",
    "iter_rollout": "physviz.model.autoregressive",
    "ensure_field_slots": "physviz.model.surgery",
    "expand_fields": "physviz.model.surgery",
    "add_refiner": "physviz.model.surgery",
    "freeze": "physviz.model.surgery",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_attributes("physviz.model", globals(), _LAZY)
