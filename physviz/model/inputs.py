"""Checks of a model's inputs: the window, its field registry indices and its periodic flags, with clear errors."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from physviz.errors import ParameterError, SchemaError, UnknownFieldError

AXES = ("x", "y", "z")


class ModelInputs(NamedTuple):
    """A checked window (B, T, C, *S), its field indices (C,) on the window's device, one periodic flag per axis."""

    x: torch.Tensor
    ids: torch.Tensor
    bc: tuple[int, ...]


def check_inputs(x: Any, field_ids: Any, bcs: Any, *, n_spatial_dims: int, n_slots: int,
                 dtype: torch.dtype) -> ModelInputs:
    """Validate and convert a model input; a model of 3 spatial dims also takes 2D fields.

    ``x`` is (batch, time, fields, *spatial) (non-float input becomes `dtype`), ``field_ids``
    one registry index per field channel (or one row per sample, all equal), ``bcs`` one 0/1
    flag per spatial axis (or one row per sample, all equal).
    """
    n = n_spatial_dims
    if not torch.is_tensor(x):
        x = torch.as_tensor(np.asarray(x))
    if not x.is_floating_point():
        x = x.to(dtype)
    if n == 3 and x.dim() == 5:
        n = 2  # 2D fields through a 3D model
    elif x.dim() != 3 + n:
        names = ", ".join(AXES[:n])
        raise SchemaError(
            f"The model input has shape {tuple(x.shape)} ({x.dim()} dims), but this {n}D model takes "
            f"(batch, time, fields, {names}) = {3 + n} dims; "
            + ("add a batch axis with x[None]." if x.dim() == 2 + n else f"use a {x.dim() - 3}D model for this data.")
        )
    B, T, C, *S = x.shape
    ids = _field_ids(field_ids, C, tuple(x.shape), n_slots)
    bc = _periodic_flags(bcs, n, B)
    if T < 1 or any(s < 1 for s in S):
        raise SchemaError(f"The model input has an empty axis: shape {tuple(x.shape)}.")
    return ModelInputs(x, ids.to(device=x.device, dtype=torch.long), bc)


def _field_ids(field_ids: Any, channels: int, shape: tuple[int, ...], n_slots: int) -> torch.Tensor:
    """One registry index per channel, all different and inside the model's slots."""
    ids = torch.as_tensor(field_ids)
    if ids.dim() == 2:
        if ids.shape[0] > 1 and not bool((ids == ids[:1]).all()):
            raise ParameterError("field_ids differ between samples; every sample of a batch must hold the same fields (as in MPP).")
        ids = ids[0]
    if ids.dim() != 1 or ids.dtype in (torch.float16, torch.float32, torch.float64, torch.bool):
        raise ParameterError(f"field_ids must be a 1-D list of integer registry indices, got shape {tuple(ids.shape)} {ids.dtype}.")
    if len(ids) != channels:
        raise ParameterError(
            f"field_ids names {len(ids)} fields but the input has {channels} field channels (dim 2 of shape {shape}); "
            "give one registry index per channel."
        )
    id_list = ids.tolist()
    bad = [i for i in id_list if not 0 <= i < n_slots]
    if bad:
        raise UnknownFieldError(
            f"field_ids {bad} are outside the model's {n_slots} embedding slots (0..{n_slots - 1}); "
            "give new fields slots with physviz.model.surgery.ensure_field_slots(model, names)."
        )
    if len(set(id_list)) != len(id_list):
        raise ParameterError(f"field_ids {id_list} repeat a field; each channel must be a different field.")
    return ids


def _periodic_flags(bcs: Any, n: int, batch: int) -> tuple[int, ...]:
    """One 0/1 flag per spatial axis, shared by every sample."""
    b = torch.as_tensor(bcs)
    if b.dim() == 1:
        b = b[None]
    if b.dim() != 2 or b.shape[1] != n or b.shape[0] not in (1, batch):
        raise ParameterError(
            f"bcs must hold one flag per spatial axis ({n} for this model), or a (batch, {n}) array; "
            f"got shape {tuple(torch.as_tensor(bcs).shape)}."
        )
    if b.shape[0] > 1 and not bool((b == b[:1]).all()):
        raise ParameterError("bcs differ between samples; every sample of a batch must share boundary conditions.")
    bc = tuple(int(v) for v in b[0].tolist())
    if any(v not in (0, 1) for v in bc):
        raise ParameterError(f"bcs {list(bc)} must be 1 (periodic) or 0 (not periodic) per spatial axis.")
    return bc


def check_patch_grid(spatial: tuple[int, ...] | list[int], patch: int, pad_to_patch: bool) -> None:
    """Raise when a grid is not a multiple of the patch size and the model does not pad."""
    off = [AXES[i] for i, s in enumerate(spatial) if s % patch]
    if off and not pad_to_patch:
        sizes = "x".join(map(str, spatial))
        down = "x".join(str(max(patch, s // patch * patch)) for s in spatial)
        up = "x".join(str(-(-s // patch) * patch) for s in spatial)
        raise ParameterError(
            f"Resolution {sizes} is not a multiple of the patch size {patch} along {', '.join(off)}; "
            f"set pad_to_patch=True in the model config (model.config.pad_to_patch) to pad and crop back, "
            f"or resample to {down} or {up}."
        )
