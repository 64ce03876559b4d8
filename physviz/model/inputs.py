"""Checks of a model's inputs: the window, its field registry indices and its periodic flags, with clear errors."""
from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from physviz.errors import OptionError, ParameterError, SchemaError, UnknownFieldError

AXES = ("x", "y", "z")


class ModelInputs(NamedTuple):
    """A checked window (B, T, C, *S), its field indices (C,) on the window's device, one periodic flag per axis."""

    x: torch.Tensor
    ids: torch.Tensor
    bc: tuple[int, ...]


def check_inputs(x: Any, field_ids: Any, bcs: Any, *, n_spatial_dims: int, n_slots: int,
                 dtype: torch.dtype, shared: Collection[int] = ()) -> ModelInputs:
    """Validate and convert a model input; a model of 3 spatial dims also takes 2D fields.

    ``x`` is (batch, time, fields, *spatial) (non-float input becomes `dtype`), ``field_ids``
    one registry index per field channel (or one row per sample, all equal), different except
    for the ``shared`` slots (the generic slot, which several untrained fields may be read
    through), ``bcs`` one 0/1 flag per spatial axis (or one row per sample, all equal).
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
    ids = _field_ids(field_ids, C, tuple(x.shape), n_slots, shared)
    bc = _periodic_flags(bcs, n, B)
    if T < 1 or any(s < 1 for s in S):
        raise SchemaError(f"The model input has an empty axis: shape {tuple(x.shape)}.")
    return ModelInputs(x, ids.to(device=x.device, dtype=torch.long), bc)


def _field_ids(field_ids: Any, channels: int, shape: tuple[int, ...], n_slots: int,
               shared: Collection[int] = ()) -> torch.Tensor:
    """One registry index per channel, inside the model's slots and all different (but for `shared` ones)."""
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
    own = [i for i in id_list if i not in shared]
    if len(set(own)) != len(own):
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


# -- arguments of a rollout ---------------------------------------------------------------------------
def check_int(name: str, value: Any, minimum: int | None = None, optional: bool = False) -> int | None:
    """`value` as an int (Python or NumPy integer, not bool or float), at least `minimum`; None if optional."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        more = " or None" if optional else ""
        raise ParameterError(f"{name}={value!r} must be an int{more}, not {type(value).__name__}.")
    if minimum is not None and int(value) < minimum:
        raise ParameterError(f"{name}={int(value)} must be at least {minimum}.")
    return int(value)


def check_dataset(ds: Any, what: str = "rollout") -> None:
    """Refuse anything but an xarray Dataset, saying how to make one."""
    import xarray as xr

    if isinstance(ds, xr.Dataset):
        return
    if isinstance(ds, xr.DataArray):
        name = ds.name or "u"
        raise OptionError(
            f"{what} takes an xarray Dataset, not a DataArray; wrap it with da.to_dataset(name={name!r}) "
            "(the Dataset's attrs hold boundary_conditions)."
        )
    raise OptionError(
        f"{what} takes an xarray Dataset in the physviz schema, not {type(ds).__name__}: read a file with "
        "physviz.open_fields(path), or build one with xr.Dataset({'u': (('time', 'x', 'y'), array)}, "
        "attrs={'boundary_conditions': {'x': 'periodic', 'y': 'periodic'}})."
    )


def check_field_names(fields: Any) -> list[str] | None:
    """None, or a list of field names."""
    if fields is None:
        return None
    if isinstance(fields, str) or not all(isinstance(f, str) for f in fields):
        raise ParameterError(f"fields={fields!r} must be a list of field names, e.g. [{str(fields)!r}].")
    return list(fields)


def boundary_flags(boundary_conditions: Any, spatial: list[str] | tuple[str, ...]) -> tuple[int, ...]:
    """One periodic flag per axis of `spatial` from a Dataset's ``attrs['boundary_conditions']``, each checked.

    The attr is a mapping axis -> condition (or [lower, upper]), or that mapping as JSON text (as NetCDF
    stores it); a condition must be one of `physviz.fields.schema.BC_TYPES`. A missing attr or axis is
    not periodic.
    """
    from physviz.fields.schema import periodic_flags

    return periodic_flags(checked_boundaries(boundary_conditions, spatial), spatial)


def checked_boundaries(boundary_conditions: Any, spatial: list[str] | tuple[str, ...]) -> dict[str, Any] | None:
    """A Dataset's ``attrs['boundary_conditions']`` as {axis: condition or [lower, upper]} for the axes of `spatial`, each checked (None if absent)."""
    from physviz.fields.schema import BC_TYPES, decode_attr, normalize_bc

    bcs = decode_attr(boundary_conditions)
    if bcs is None:
        return None
    if not isinstance(bcs, Mapping):
        raise SchemaError(
            f"attrs['boundary_conditions']={bcs!r} must be a mapping of axis -> condition, e.g. "
            f"{{'x': 'periodic', 'y': 'wall'}} (conditions: {', '.join(BC_TYPES)}; [lower, upper] per axis also works)."
        )
    return {d: normalize_bc(bcs[d], f"attrs['boundary_conditions'][{d!r}]") for d in spatial if d in bcs}


def device_names() -> list[str]:
    """Devices this machine can run a model on, as the `device` argument takes them."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def resolve_device(device: Any) -> torch.device:
    """A torch device from 'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:N' or a torch.device; others refused."""
    if isinstance(device, torch.device):
        device = str(device)
    available = device_names()
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    listed = ", ".join(repr(n) for n in available)
    if not isinstance(device, str) or device not in available:
        if isinstance(device, str) and device.startswith("cuda") and not torch.cuda.is_available():
            raise ParameterError(f"device={device!r}: no CUDA device is available here; use one of {listed}.")
        raise ParameterError(f"device={device!r} is not a device of this machine; use one of {listed}.")
    return torch.device(device)
