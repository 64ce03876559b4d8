"""Official MPP AViT checkpoints: bare state dicts, training checkpoints, DDP prefixes; the size read off the shapes.

- ``load_mpp_checkpoint(path_or_state_dict)``: a bare state dict (the released
  ``MPP_AViT_*`` files), a training checkpoint ``{'model_state': ...}``, with or without
  DDP's ``module.`` prefix. The size (Ti/S/B/L or any other) is read off the tensor
  shapes, and the weights load with ``strict=True``.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from physviz.errors import CorruptFileError, FieldFileNotFoundError, ParameterError
from physviz.model.avit import AViT
from physviz.model.checkpoint import load_strict, tensor_hash
from physviz.model.config import PRESETS, ModelConfig
from physviz.model.family import check_options
from physviz.model.registry import MPP_FIELDS, FieldRegistry
from physviz.model.runtime import tune_cpu_allocator

_PREFIXES = ("module.", "_orig_mod.")


def torch_load(path: Path) -> Any:
    """torch.load with weights_only=True and clear errors."""
    if not path.exists():
        raise FieldFileNotFoundError(f"Checkpoint {str(path)!r} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zips, disallowed globals
        raise CorruptFileError(
            f"Checkpoint {str(path)!r} could not be read as a PyTorch file with weights_only=True ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); is it a model checkpoint?"
        ) from None


def unwrap_state_dict(obj: Any, source: str = "the checkpoint") -> dict[str, torch.Tensor]:
    """The model state dict inside a checkpoint object, without DDP/compile key prefixes."""
    if isinstance(obj, Mapping):
        for key in ("model_state", "state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(torch.is_tensor(v) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ParameterError(f"{source} holds no state dict (expected a mapping of parameter names to tensors).")
    sd = {str(k): v for k, v in obj.items() if torch.is_tensor(v)}
    if not sd:
        raise ParameterError(f"{source} holds no tensors; keys: {sorted(map(str, obj))[:8]}.")
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def infer_mpp_config(sd: Mapping[str, torch.Tensor], **options: Any) -> ModelConfig:
    """The ModelConfig of an MPP AViT state dict, read off its tensor shapes."""
    required = ("space_bag.weight", "embed.in_proj.0.weight", "debed.out_kernel")
    missing = [k for k in required if k not in sd]
    if missing:
        raise ParameterError(
            f"This state dict is not an MPP AViT: it lacks {missing} (its first keys: {sorted(sd)[:6]})."
        )
    q, n_states = sd["space_bag.weight"].shape
    d = 4 * int(q)
    block_ids = {int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))}
    if not block_ids:
        raise ParameterError("This MPP state dict has no processor blocks ('blocks.N.*' keys).")
    blocks = max(block_ids) + 1
    conv0 = sd["embed.in_proj.0.weight"]
    n_spatial = conv0.dim() - 2
    patch = 4 * int(conv0.shape[-1])
    qn = sd.get("blocks.0.spatial.qnorm.weight")
    head_dim = int(qn.shape[0]) if qn is not None else 64
    rel = sd.get("blocks.0.spatial.rel_pos_bias.relative_attention_bias.weight")
    if rel is not None:
        buckets, heads = int(rel.shape[0]), int(rel.shape[1])
        if heads * head_dim != d:
            raise ParameterError(
                f"Inconsistent MPP state dict: {heads} heads (rel_pos_bias) x head_dim {head_dim} (qnorm) != embed_dim {d}."
            )
    else:
        buckets, heads = 32, d // head_dim
    fc1 = sd.get("blocks.0.spatial.mlp.fc1.weight")
    mlp_ratio = float(fc1.shape[0]) / d if fc1 is not None else 4.0
    settings: dict[str, Any] = {
        "embed_dim": d, "num_heads": heads, "head_dim": head_dim, "processor_blocks": blocks,
        "n_states": int(n_states), "patch_size": patch, "mlp_ratio": mlp_ratio, "num_buckets": buckets,
        "bias_type": "rel" if rel is not None else "none", "n_spatial_dims": n_spatial,
        "drop_path": 0.2, "periodic_bias": "mpp",
    }
    check_options(AViT, options)
    return ModelConfig.from_dict({**settings, **options})


def mpp_size(config: ModelConfig) -> str | None:
    """'Ti', 'S', 'B' or 'L' when the config matches a released MPP size."""
    for name in ("Ti", "S", "B", "L"):
        p = PRESETS[name]
        if (config.embed_dim, config.num_heads, config.processor_blocks) == (p["embed_dim"], p["num_heads"], p["processor_blocks"]):
            return name
    return None


def load_mpp_checkpoint(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    registry: FieldRegistry | str | None = None,
    device: str | torch.device = "cpu",
    **options: Any,
) -> AViT:
    """Build an AViT from an official MPP checkpoint (path or loaded object) and load it strictly.

    ``options`` override settings the weights leave open (e.g. ``pad_to_patch=True``); the field
    registry defaults to MPP's (``FieldRegistry.mpp()``, widened if the checkpoint was expanded).
    """
    tune_cpu_allocator()
    if isinstance(source, Mapping):
        obj, label, path = source, "the given state dict", None
    else:
        path = Path(source)
        obj, label = torch_load(path), f"checkpoint {str(path)!r}"
    sd = unwrap_state_dict(obj, label)
    cfg = infer_mpp_config(sd, **options)
    if registry is None:
        registry = FieldRegistry.mpp() if cfg.n_states >= len(MPP_FIELDS) else FieldRegistry([], n_slots=cfg.n_states)
        registry.n_slots = cfg.n_states
    model = AViT(cfg, registry=registry)
    load_strict(model, sd, label)
    size = mpp_size(cfg)
    model.metadata = {
        "name": f"MPP-AViT-{size}" if size else f"MPP-AViT-{cfg.embed_dim}x{cfg.processor_blocks}",
        "format": "mpp",
        "source": str(path) if path is not None else "",
        "hash": tensor_hash(sd),
    }
    return model.to(device).eval()
