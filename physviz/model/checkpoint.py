"""Checkpoints of any model family: physviz safetensors files out and in; MPP torch files in.

- ``save_model(model, path)``: one ``.safetensors`` file whose header metadata holds,
  under the key ``physviz``, a JSON document with the model family, its config, the field
  registry, a SHA-256 of the tensors and free-form metadata; nothing else is needed to
  load it. Written atomically (temporary file, then rename).
- ``load_model(path)``: reads such a file back (checking the hash) and builds the family
  the header names (`physviz.model.family.FAMILIES`); an MPP torch checkpoint, or a
  safetensors file without a physviz header, loads as an MPP AViT
  (`physviz.model.mpp.load_mpp_checkpoint`).

Header versions: 2 names the family; version 1 files (AViT only) also stored the run-time
settings ``gradient_checkpointing``, ``ensemble`` and ``jitter_seed`` in the config, which
are dropped when they are read.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from physviz.errors import CorruptFileError, FieldFileNotFoundError, ParameterError
from physviz.model.family import DEFAULT_FAMILY, PhysicsModel, build_model
from physviz.model.registry import FieldRegistry
from physviz.model.runtime import tune_cpu_allocator

FORMAT = "physviz.model"
FORMAT_VERSION = 2
_V1_RUNTIME_KEYS = ("gradient_checkpointing", "ensemble", "jitter_seed")


def tensor_hash(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of the tensors (sorted by name)."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def load_strict(model: torch.nn.Module, sd: Mapping[str, torch.Tensor], source: str) -> None:
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


# -- writing ------------------------------------------------------------------------------------
def save_model(model: PhysicsModel, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None) -> Path:
    """Write the model as one safetensors file (family, config, registry, hash, metadata in its header); return the path."""
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
        "family": model.family,
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


# -- reading ------------------------------------------------------------------------------------
def _is_safetensors(path: Path) -> bool:
    """True when the file starts like a safetensors file (u64 header size, then '{')."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        return False
    size = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < size < path.stat().st_size


def _parse_header(text: str, path: Path) -> dict[str, Any]:
    """The physviz header as the current version reads it."""
    try:
        header = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"The physviz header of {str(path)!r} is not valid JSON ({exc}).") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        got = header.get("format") if isinstance(header, dict) else None
        raise CorruptFileError(f"Model file {str(path)!r} has an unknown format {got!r}.")
    version = header.get("version", 1)
    if version == 1:
        config = {k: v for k, v in header.get("config", {}).items() if k not in _V1_RUNTIME_KEYS}
        header = {**header, "version": FORMAT_VERSION, "family": DEFAULT_FAMILY, "config": config}
    elif version != FORMAT_VERSION:
        raise CorruptFileError(
            f"Model file {str(path)!r} has header version {version!r}; this physviz reads versions 1 and "
            f"{FORMAT_VERSION}. Update physviz to open it."
        )
    return header


def read_model_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The physviz header of a saved model (family, config, registry, hash, metadata) without loading weights."""
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
    return _parse_header(meta["physviz"], path)


def load_model(path: str | os.PathLike[str], *, device: str | torch.device = "cpu", verify: bool = True,
               **options: Any) -> PhysicsModel:
    """Load a model saved by save_model, an official MPP checkpoint or a Walrus checkpoint; returns it in eval mode.

    ``options`` override settings the weights leave open (jitter, pad_to_patch, ...); ``verify``
    checks the stored SHA-256 of the weights. ``refine_width`` grafts a fresh refiner onto AViT
    weights that have none (predictions unchanged until trained); it cannot change an existing one.
    A torch file holding Walrus weights (bare, or the released ``walrus.pt`` layout
    ``["app"]["model"]``) loads as Walrus (`physviz.model.walrus.released.load_walrus`), with
    ``config=`` (its ``extended_config.yaml`` or ``config.json``; default: one beside the file).
    ``dtype`` (e.g. ``torch.bfloat16``) converts the weights.
    """
    tune_cpu_allocator()
    graft = options.pop("refine_width", None)
    config = options.pop("config", None)
    dtype = options.pop("dtype", None)
    path = Path(path)
    if config is not None or (path.is_file() and not _is_safetensors(path) and _is_walrus(path)):
        from physviz.model.walrus.released import load_walrus

        if graft is not None:
            raise ParameterError("refine_width grafts a refiner onto AViT weights; a Walrus model has none.")
        if path.is_file() and _is_safetensors(path):
            raise ParameterError(f"config= is for Walrus torch checkpoints; {str(path)!r} is a safetensors file "
                                 "that holds its own config.")
        return load_walrus(path, config=config, device=device, dtype=dtype, **options)
    model = _load(path, device, verify, options)
    if dtype is not None:
        model = model.to(dtype=dtype)
    if graft is not None:
        from physviz.model.surgery import add_refiner

        add_refiner(model, graft)
    return model


def _is_walrus(path: Path) -> bool:
    """True when a torch checkpoint holds Walrus weights."""
    from physviz.model.walrus.released import is_walrus_file

    return is_walrus_file(path)


def _load(path: Path, device: str | torch.device, verify: bool, options: dict[str, Any]) -> PhysicsModel:
    """load_model without the refiner graft."""
    from safetensors import safe_open

    from physviz.model.mpp import load_mpp_checkpoint

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
    header = _parse_header(meta["physviz"], path)
    if verify and header.get("hash") and tensor_hash(tensors) != header["hash"]:
        raise CorruptFileError(
            f"Model file {str(path)!r} is damaged: its weights do not match the stored SHA-256; re-download or re-save it."
        )
    model = build_model(header["family"], header["config"], FieldRegistry.from_dict(header["registry"]), **options)
    load_strict(model, tensors, f"model file {str(path)!r}")
    model.metadata = {**header.get("metadata", {}), "hash": header.get("hash", ""), "path": str(path)}
    return model.to(device).eval()
