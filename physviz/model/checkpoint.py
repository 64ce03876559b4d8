"""Checkpoints: official MPP AViT files in, physviz safetensors files out and in.

- ``load_mpp_checkpoint(path_or_state_dict)``: a bare state dict (the released
  ``MPP_AViT_*`` files), a training checkpoint ``{'model_state': ...}``, with or without
  DDP's ``module.`` prefix. The size (Ti/S/B/L or any other) is read off the tensor
  shapes, and the weights load with ``strict=True``.
- ``save_model(model, path)``: one ``.safetensors`` file whose header metadata holds,
  under the key ``physviz``, a JSON document with the config, the field registry, a
  SHA-256 of the tensors and free-form metadata; nothing else is needed to load it.
  Written atomically (temporary file, then rename).
- ``load_model(path)``: reads such a file back (checking the hash), and routes an MPP
  torch checkpoint to ``load_mpp_checkpoint``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from physviz.errors import CorruptFileError, FieldFileNotFoundError, ParameterError
from physviz.model.avit import AViT
from physviz.model.config import PRESETS, ModelConfig
from physviz.model.registry import MPP_FIELDS, FieldRegistry

FORMAT = "physviz.model"
FORMAT_VERSION = 1
# Settings fixed by the weights; the others (options) may be overridden at load time.
SHAPE_KEYS = ("embed_dim", "num_heads", "head_dim", "processor_blocks", "n_states", "patch_size", "mlp_ratio",
              "num_buckets", "n_spatial_dims", "bias_type")
_PREFIXES = ("module.", "_orig_mod.")


# -- reading torch files ------------------------------------------------------
def _torch_load(path: Path) -> Any:
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


# -- size inference -------------------------------------------------------------
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
    _check_options(options)
    return ModelConfig.from_dict({**settings, **options})


def mpp_size(config: ModelConfig) -> str | None:
    """'Ti', 'S', 'B' or 'L' when the config matches a released MPP size."""
    for name in ("Ti", "S", "B", "L"):
        p = PRESETS[name]
        if (config.embed_dim, config.num_heads, config.processor_blocks) == (p["embed_dim"], p["num_heads"], p["processor_blocks"]):
            return name
    return None


def _check_options(options: Mapping[str, Any]) -> None:
    fixed = sorted(k for k in options if k in SHAPE_KEYS)
    if fixed:
        raise ParameterError(
            f"Setting(s) {fixed} are fixed by the checkpoint's weights and cannot be overridden at load; "
            "only options such as delta_prediction, jitter, pad_to_patch or gradient_checkpointing can."
        )


def tensor_hash(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of the tensors (sorted by name)."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _load_strict(model: AViT, sd: Mapping[str, torch.Tensor], source: str) -> None:
    """load_state_dict(strict=True) with a clear error listing what does not match."""
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = sorted(f"{k} {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}" for k in set(own) & set(sd)
                   if tuple(sd[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:10]}{' ...' if len(missing) > 10 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}")
        if wrong:
            parts.append(f"shape mismatches {wrong[:10]}{' ...' if len(wrong) > 10 else ''}")
        raise ParameterError(f"The weights in {source} do not fit the model: " + "; ".join(parts) + ".")
    model.load_state_dict(dict(sd), strict=True)


# -- MPP -------------------------------------------------------------------------
def load_mpp_checkpoint(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    registry: FieldRegistry | str | None = None,
    device: str | torch.device = "cpu",
    **options: Any,
) -> AViT:
    """Build an AViT from an official MPP checkpoint (path or loaded object) and load it strictly.

    ``options`` override runtime settings (e.g. ``pad_to_patch=True``); the field
    registry defaults to MPP's (``FieldRegistry.mpp()``, widened if the checkpoint was expanded).
    """
    if isinstance(source, Mapping):
        obj, label, path = source, "the given state dict", None
    else:
        path = Path(source)
        obj, label = _torch_load(path), f"checkpoint {str(path)!r}"
    sd = unwrap_state_dict(obj, label)
    cfg = infer_mpp_config(sd, **options)
    if registry is None:
        registry = FieldRegistry.mpp() if cfg.n_states >= len(MPP_FIELDS) else FieldRegistry([], n_slots=cfg.n_states)
        registry.n_slots = cfg.n_states
    model = AViT(cfg, registry=registry)
    _load_strict(model, sd, label)
    size = mpp_size(cfg)
    model.metadata = {
        "name": f"MPP-AViT-{size}" if size else f"MPP-AViT-{cfg.embed_dim}x{cfg.processor_blocks}",
        "format": "mpp",
        "source": str(path) if path is not None else "",
        "hash": tensor_hash(sd),
    }
    return model.to(device).eval()


# -- physviz files ----------------------------------------------------------------
def save_model(model: AViT, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None) -> Path:
    """Write the model as one safetensors file (config, registry, hash, metadata in its header); return the path."""
    from safetensors.torch import save_file

    from physviz.fields.atomic import atomic_path

    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix(".safetensors")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    digest = tensor_hash(tensors)
    meta = {**(getattr(model, "metadata", {}) or {}), **dict(metadata or {})}
    meta = {k: v for k, v in meta.items() if k not in ("hash", "path")}
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "registry": model.registry.to_dict(),
        "hash": digest,
        "metadata": _jsonable(meta),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"physviz": json.dumps(header)})
    model.metadata = {**meta, "hash": digest, "path": str(path)}
    return path


def _jsonable(value: Any) -> Any:
    """Metadata as plain JSON (unknown objects become strings)."""
    return json.loads(json.dumps(value, default=str))


def _is_safetensors(path: Path) -> bool:
    """True when the file starts like a safetensors file (u64 header size, then '{')."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        return False
    size = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < size < path.stat().st_size


def read_model_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The physviz header of a saved model (config, registry, hash, metadata) without loading weights."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FieldFileNotFoundError(f"Model file {str(path)!r} does not exist.")
    if not _is_safetensors(path):
        raise CorruptFileError(f"Model file {str(path)!r} is not a safetensors file.")
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    if "physviz" not in meta:
        raise CorruptFileError(f"Model file {str(path)!r} has no physviz header; was it written by physviz.save_model?")
    try:
        return json.loads(meta["physviz"])
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"The physviz header of {str(path)!r} is not valid JSON ({exc}).") from None


def load_model(path: str | os.PathLike[str], *, device: str | torch.device = "cpu", verify: bool = True,
               **options: Any) -> AViT:
    """Load a model saved by save_model, or an official MPP checkpoint; returns it in eval mode.

    ``options`` override runtime settings (jitter, pad_to_patch, ...); ``verify`` checks the
    stored SHA-256 of the weights. ``refine_width`` grafts a fresh refiner onto weights that
    have none (predictions unchanged until trained); it cannot change an existing one.
    """
    graft = options.pop("refine_width", None)
    model = _load(Path(path), device, verify, options)
    if graft is not None:
        model.add_refiner(graft)
    return model


def _load(path: Path, device: str | torch.device, verify: bool, options: dict[str, Any]) -> AViT:
    """load_model without the refiner graft."""
    from safetensors import safe_open

    if not path.exists():
        raise FieldFileNotFoundError(f"Model file {str(path)!r} does not exist.")
    if not path.is_file():
        raise ParameterError(f"Model path {str(path)!r} is a directory; give the .safetensors (or MPP checkpoint) file.")
    if not _is_safetensors(path):
        return load_mpp_checkpoint(path, device=device, **options)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:
        raise CorruptFileError(f"Model file {str(path)!r} could not be read as safetensors ({exc}).") from None
    if "physviz" not in meta:
        return load_mpp_checkpoint(tensors, device=device, **options)
    try:
        header = json.loads(meta["physviz"])
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"The physviz header of {str(path)!r} is not valid JSON ({exc}).") from None
    if header.get("format") != FORMAT:
        raise CorruptFileError(f"Model file {str(path)!r} has an unknown format {header.get('format')!r}.")
    _check_options(options)
    cfg = ModelConfig.from_dict({**header["config"], **options})
    registry = FieldRegistry.from_dict(header["registry"])
    if verify and header.get("hash") and tensor_hash(tensors) != header["hash"]:
        raise CorruptFileError(
            f"Model file {str(path)!r} is damaged: its weights do not match the stored SHA-256; re-download or re-save it."
        )
    model = AViT(cfg, registry=registry)
    _load_strict(model, tensors, f"model file {str(path)!r}")
    model.metadata = {**header.get("metadata", {}), "hash": header.get("hash", ""), "path": str(path)}
    return model.to(device).eval()
