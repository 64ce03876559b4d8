"""Walrus checkpoints: the released ``walrus.pt`` layout, its config, the 67-slot field index map, physviz names.

- ``load_walrus(path, config=None)``: a Walrus state dict, bare (the parity fixture's
  ``state_dict.pt``) or in the released layout ``torch.load(p)["app"]["model"]``, with its
  config: the ``config=`` given (a path to ``extended_config.yaml`` / ``config.json``, or a
  mapping), else ``extended_config.yaml`` (or ``config.yaml``, ``config.json``) beside the
  file. The model is built on the meta device and the weights loaded with
  ``torch.load(mmap=True, weights_only=True)`` and ``assign=True``, so a 5 GB file needs no
  second copy in memory; ``dtype=torch.bfloat16`` converts them.
- ``RELEASED_FIELDS``: the released checkpoint's 67 field slots (Walrus's
  ``full_well_field_index``: 0 closed boundary, 1 open boundary, 2 bias correction,
  3..66 physical fields). Its names are Walrus's, which physviz's schema names follow;
  physviz aliases (``rho``, ``Vx`` ...) resolve through the physviz name map, and an unknown
  name gets an error that suggests the closest Walrus fields.

The slot list is copied from a public transcription of Walrus's
``configs/data/field_index_map_override/full_well_field_index.yaml``; a config that holds
its own map (``data.field_index_map_override`` or ``field_index_map``) takes precedence.
"""
from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from physviz.errors import (
    CorruptFileError,
    FieldFileNotFoundError,
    ParameterError,
    UnknownFieldError,
)
from physviz.model.registry import FieldRegistry, _canonical
from physviz.model.walrus.config import RELEASED, WalrusConfig, from_reference

BOUNDARY_SLOTS = {"closed_boundary": 0, "open_boundary": 1, "bias_correction": 2}

_RELEASED_NAMES = [
    "pressure", "velocity_x", "velocity_y", "velocity_z", "zeros_like_density", "speed_of_sound", "concentration",
    *[f"D_{a}{b}" for a in "xyz" for b in "xyz"], *[f"E_{a}{b}" for a in "xyz" for b in "xyz"],
    "density", "energy", "velocity_r", "velocity_theta", "velocity_phi", "momentum_x", "momentum_y", "momentum_z",
    "pressure_re", "pressure_im", "mask", "magnetic_field_x", "magnetic_field_y", "magnetic_field_z", "A", "B",
    "height", "internal_energy", "temperature", "electron_fraction", "entropy", "magnetic_field_log_r",
    "magnetic_field_theta", "magnetic_field_phi", "velocity_log_r", "buoyancy", "tracer", "log10_density",
    "log10_temperature", "c_zz", *[f"C_{a}{b}" for a in "xyz" for b in "xyz"],
]
RELEASED_FIELDS: dict[str, int] = {**BOUNDARY_SLOTS, **{n: 3 + i for i, n in enumerate(_RELEASED_NAMES)}}
assert len(RELEASED_FIELDS) == 67 and max(RELEASED_FIELDS.values()) == 66

CONFIG_NAMES = ("extended_config.yaml", "extended_config.yml", "config.yaml", "config.json")
MODEL_KEY = "blocks.0.space_mixing.fused_ff_qkv.weight"


def registry_from_map(field_index_map: Mapping[str, int], n_states: int, name: str = "walrus") -> FieldRegistry:
    """A field registry of a Walrus field index map (the boundary slots are not fields)."""
    entries = []
    for field, idx in sorted(field_index_map.items(), key=lambda kv: int(kv[1])):
        if field in BOUNDARY_SLOTS:
            if int(idx) != BOUNDARY_SLOTS[field]:
                raise ParameterError(f"The Walrus field index map puts {field!r} at {idx}; Walrus uses {BOUNDARY_SLOTS[field]}.")
            continue
        if not 3 <= int(idx) < n_states:
            raise ParameterError(f"The Walrus field index map puts {field!r} at slot {idx}, outside 3..{n_states - 1}.")
        entries.append(("", str(field), int(idx)))
    return FieldRegistry(entries, n_slots=n_states, name=name)


def default_registry(n_states: int) -> FieldRegistry:
    """The released field slots for a model of 67 or more slots, else an empty registry."""
    if n_states >= len(RELEASED_FIELDS):
        return registry_from_map(RELEASED_FIELDS, n_states)
    return FieldRegistry([], n_slots=n_states, name="walrus")


def unknown_fields_error(names: Sequence[str], registry: FieldRegistry) -> UnknownFieldError:
    """One error naming each field the registry cannot map, with the closest Walrus fields."""
    known = registry.names()
    parts = []
    for n in names:
        canon = _canonical(str(n))
        if canon in known:
            continue
        close = registry.suggest(str(n))
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        parts.append(f"{n!r}{hint}")
    return UnknownFieldError(
        f"Walrus has no field slot for {', '.join(parts)}. Its fields are named as in The Well "
        f"({len(known)} fields: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''}); rename the field, or give it "
        "a new slot with model.registry.add(name) and fine-tune."
    )


def walrus_field_indices(names: Sequence[str], registry: FieldRegistry) -> list[int]:
    """Field slots of physviz field names (clear error with suggestions for unknown ones)."""
    try:
        return registry.lookup_fields(list(names))
    except UnknownFieldError:
        raise unknown_fields_error(names, registry) from None


# -- config files -------------------------------------------------------------------------------
def read_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[WalrusConfig, dict[str, int] | None, str]:
    """The `WalrusConfig`, the field index map (if the config has one) and a label, from a Walrus config."""
    if isinstance(source, WalrusConfig):
        return source, None, "the given WalrusConfig"
    if isinstance(source, Mapping):
        doc, label = dict(source), "the given Walrus config"
    else:
        path = Path(os.path.expanduser(os.fspath(source)))
        label = f"Walrus config {str(path)!r}"
        if not path.is_file():
            raise FieldFileNotFoundError(f"The Walrus config file {str(path)!r} does not exist.")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ParameterError(f"The Walrus config file {str(path)!r} cannot be read ({exc}).") from None
        try:
            if path.suffix == ".json":
                doc = json.loads(text)
            else:
                import yaml

                doc = yaml.safe_load(text)
        except Exception as exc:  # JSON and YAML parse errors
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ParameterError(f"The Walrus config file {str(path)!r} is not valid YAML/JSON ({first}).") from None
        if not isinstance(doc, Mapping):
            raise ParameterError(f"The Walrus config file {str(path)!r} must hold a mapping, not {type(doc).__name__}.")
    if "model" not in doc and "hidden_dim" in doc and "encoder" not in doc:
        cfg = WalrusConfig.from_dict({k: v for k, v in doc.items() if k != "field_index_map"})
    else:
        try:
            cfg = from_reference(doc, label)
        except ParameterError:
            raise
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{label} could not be read as a Walrus model config ({exc}).") from None
    fmap = doc.get("field_index_map")
    data = doc.get("data")
    if fmap is None and isinstance(data, Mapping):
        fmap = data.get("field_index_map_override") or data.get("field_index_map")
    if fmap is not None:
        if not isinstance(fmap, Mapping) or not all(isinstance(v, int) for v in fmap.values()):
            raise ParameterError(f"{label}: the field index map must map field names to integer slots.")
        fmap = {str(k): int(v) for k, v in fmap.items()}
    return cfg, fmap, label


def find_config(path: Path) -> Path | None:
    """A Walrus config file beside a checkpoint, if there is one."""
    for name in CONFIG_NAMES:
        cand = path.parent / name
        if cand.is_file():
            return cand
    return None


# -- checkpoints ----------------------------------------------------------------------------------
def torch_load_mmap(path: Path) -> Any:
    """torch.load with weights_only=True, memory-mapped where the file is a zip archive; clear errors."""
    if not path.exists():
        raise FieldFileNotFoundError(f"Checkpoint {str(path)!r} does not exist.")
    if not path.is_file():
        raise ParameterError(f"Checkpoint path {str(path)!r} is a directory; give the walrus.pt file.")
    mmap = zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # truncated zips, pickle errors, disallowed globals
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CorruptFileError(
            f"Checkpoint {str(path)!r} could not be read as a PyTorch file with weights_only=True "
            f"({type(exc).__name__}: {first[:200]}); is it complete (re-download it) and a model checkpoint?"
        ) from None


def walrus_state_dict(obj: Any, label: str) -> dict[str, torch.Tensor] | None:
    """The Walrus state dict inside a loaded checkpoint object, or None when it holds none."""
    if isinstance(obj, Mapping) and isinstance(obj.get("app"), Mapping) and isinstance(obj["app"].get("model"), Mapping):
        obj = obj["app"]["model"]
    elif isinstance(obj, Mapping):
        for key in ("model", "state_dict", "model_state"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(torch.is_tensor(v) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping):
        return None
    sd = {str(k): v for k, v in obj.items() if torch.is_tensor(v)}
    for prefix in ("module.", "_orig_mod."):
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    if not any(k.endswith("space_mixing.fused_ff_qkv.weight") for k in sd):
        return None
    return sd


def is_walrus_file(path: Path) -> bool:
    """True when a torch checkpoint holds a Walrus state dict (bare or in the released layout)."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # left to the loader that reports it
        return False
    return walrus_state_dict(obj, str(path)) is not None


def infer_config(sd: Mapping[str, torch.Tensor], label: str) -> WalrusConfig:
    """A `WalrusConfig` read off the shapes of a Walrus state dict (when no config file is at hand)."""
    try:
        fused = sd["blocks.0.space_mixing.fused_ff_qkv.weight"]
        hidden = int(fused.shape[1])
        ff = int(fused.shape[0]) - 3 * hidden
        hd = int(sd["blocks.0.space_mixing.q_norm.weight"].shape[0])
        t_hd = int(sd["blocks.0.time_mixing.qnorm.weight"].shape[0])
        buckets = int(sd["blocks.0.time_mixing.rel_pos_bias.relative_attention_bias.weight"].shape[0])
        dims = sorted({int(k.split(".")[1]) for k in sd if k.startswith("embed.")})
        enc = sd[f"embed.{dims[0]}.proj1.weight"]
        inner, n_states = int(enc.shape[0]), int(enc.shape[1])
        k1 = list(enc.shape[2:])
        k2 = list(sd[f"embed.{dims[0]}.proj2.weight"].shape[2:])
    except (KeyError, IndexError, ValueError) as exc:
        raise ParameterError(f"The Walrus state dict in {label} lacks {exc}; pass its config with config=.") from None
    blocks = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    return WalrusConfig.from_dict({
        **RELEASED, "hidden_dim": hidden, "intermediate_dim": inner, "processor_blocks": blocks,
        "num_heads": hidden // hd, "time_heads": hidden // t_hd, "mlp_dim": 0 if ff == 4 * hidden else ff,
        "n_states": n_states, "base_kernel": [[int(a), int(b)] for a, b in zip(k1, k2)], "include_d": dims,
        "num_buckets": buckets,
    })


def load_walrus(source: str | os.PathLike[str] | Mapping[str, Any], *, config: Any = None,
                registry: FieldRegistry | str | None = None, device: str | torch.device = "cpu",
                dtype: torch.dtype | None = None, **options: Any) -> Any:
    """A Walrus model from a checkpoint (path or loaded object) and its config, loaded strictly.

    ``config``: a config file path or mapping (Walrus's ``extended_config.yaml`` or the
    fixture's ``config.json``), else one beside the file, else the sizes read off the
    weights with the released settings. ``options`` override settings the weights leave
    open (``jitter``, ``causal_mask``, ...). ``dtype`` converts the weights (e.g. bfloat16).
    """
    from physviz.model.family import check_options
    from physviz.model.walrus.model import Walrus

    path: Path | None = None
    if isinstance(source, Mapping):
        obj, label = source, "the given state dict"
    else:
        path = Path(os.path.expanduser(os.fspath(source)))
        label = f"checkpoint {str(path)!r}"
        obj = torch_load_mmap(path)
    sd = walrus_state_dict(obj, label)
    if sd is None:
        inner = obj.get("model_state", obj) if isinstance(obj, Mapping) else None
        names = [str(k) for k in inner] if isinstance(inner, Mapping) else []
        mpp = any("space_bag." in k or "debed.out_kernel" in k for k in names)
        shown = sorted(names)[:6] if names else type(obj).__name__
        what = "an MPP AViT checkpoint (load it without config=)" if mpp else f"no Walrus weights (first keys: {shown})"
        raise ParameterError(f"{label[0].upper() + label[1:]} holds {what}; a Walrus checkpoint has "
                             f"'{MODEL_KEY}' (bare, or under ['app']['model']).")
    if config is None and path is not None:
        config = find_config(path)
    fmap = None
    if config is not None:
        cfg, fmap, cfg_label = read_config(config)
    else:
        cfg, cfg_label = infer_config(sd, label), "the weights' shapes"
    check_options(Walrus, options)
    if options:
        cfg = cfg.replace(**options)
    if registry is None:
        registry = registry_from_map(fmap, cfg.n_states) if fmap else default_registry(cfg.n_states)
    with torch.device("meta"):
        model = Walrus(cfg, registry=registry)
    _load_assign(model, sd, label, cfg_label)
    if dtype is not None:
        model = model.to(dtype=dtype)
    model.metadata = {
        "name": "Walrus" if cfg.hidden_dim == RELEASED["hidden_dim"] and cfg.processor_blocks == RELEASED["processor_blocks"]
        else f"Walrus-{cfg.hidden_dim}x{cfg.processor_blocks}",
        "format": "walrus", "source": str(path) if path is not None else "",
        "config_source": str(config) if config is not None and not isinstance(config, Mapping) else cfg_label,
        "parity": "reference assembled from the public code; not yet checked against the released weights",
    }
    return model.to(device).eval()


def _load_assign(model: torch.nn.Module, sd: Mapping[str, torch.Tensor], label: str, cfg_label: str) -> None:
    """Strict load by assignment (no copy) with one error listing what does not fit."""
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = sorted(f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in set(own) & set(sd)
                   if tuple(sd[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        parts = []
        for what, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong)):
            if items:
                parts.append(f"{what} {items[:8]}{' ...' if len(items) > 8 else ''}")
        raise ParameterError(f"The weights in {label} do not fit the Walrus model of {cfg_label}: " + "; ".join(parts) + ".")
    bad = [k for k, v in sd.items() if not v.is_floating_point()]
    if bad:
        raise ParameterError(f"The weights in {label} hold non-float tensors {bad[:5]}.")
    dtype = torch.float32
    tensors = {k: (v if v.dtype == dtype else v.to(dtype)) for k, v in sd.items()}
    model.load_state_dict(tensors, strict=True, assign=True)
