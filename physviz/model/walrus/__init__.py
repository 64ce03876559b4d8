"""Walrus (PolymathicAI, arXiv 2511.15684) as a physviz model family: the model, its config, its checkpoints.

- ``Walrus``: the model (`physviz.model.walrus.model`), ``forward_walrus`` for the reference's
  calling convention, ``model(x, field_ids, bcs)`` / ``predict`` for physviz's.
- ``WalrusConfig``, ``RELEASED``, ``PRESETS``, ``preset``: its configuration (`physviz.model.walrus.config`).
- ``load_walrus``, ``RELEASED_FIELDS``, ``walrus_field_indices``: checkpoints and field slots
  (`physviz.model.walrus.released`).
- ``walrus_bcs``: boundary conditions in any accepted form as Walrus codes.
"""
from __future__ import annotations

from physviz._lazy import lazy_attributes

_LAZY = {
    "Walrus": "physviz.model.walrus.model",
    "walrus_bcs": "physviz.model.walrus.model",
    "WalrusConfig": "physviz.model.walrus.config",
    "RELEASED": "physviz.model.walrus.config",
    "PRESETS": "physviz.model.walrus.config",
    "preset": "physviz.model.walrus.config",
    "load_walrus": "physviz.model.walrus.released",
    "RELEASED_FIELDS": "physviz.model.walrus.released",
    "walrus_field_indices": "physviz.model.walrus.released",
    "read_config": "physviz.model.walrus.released",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_attributes("physviz.model.walrus", globals(), _LAZY)
