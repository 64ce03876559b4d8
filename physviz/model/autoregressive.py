"""Autoregressive rollouts: fields in the physviz schema in, predictions in the same schema out."""
from __future__ import annotations

import time as _time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from physviz.errors import NonFiniteFieldError, ParameterError, SchemaError, UnknownFieldError
from physviz.fields.schema import decode_attr
from physviz.model.inputs import boundary_flags, check_dataset, check_field_names, check_int, checked_boundaries

if TYPE_CHECKING:
    import xarray as xr

    from physviz.model.family import PhysicsModel

SPATIAL = ("x", "y", "z")


@dataclass
class RolloutPlan:
    """What a rollout will do, resolved from the user's arguments and the dataset."""

    fields: list[str]
    field_ids: list[int]
    model_fields: list[str]  # the model's name of each field (fields renamed by field_map)
    spatial: list[str]
    context: int
    start: int
    steps: int
    bcs: list[int]
    times: np.ndarray  # (steps,) time coordinates of the predicted frames


def _model_fields(model: PhysicsModel, names: Sequence[str], family: str | None, dataset_names: Sequence[str]) -> list[int]:
    """Registry indices of a field set (the model's registry decides; one family preferred)."""
    try:
        return [int(i) for i in model.field_ids(list(names), family=family).tolist()]
    except (KeyError, UnknownFieldError) as exc:
        known = set(model.registry.names())
        unknown = [(d, n) for d, n in zip(dataset_names, names) if n not in known]
        guesses = {d: model.registry.suggest(n) for d, n in unknown}
        if unknown and all(guesses.values()):
            said = "; ".join(f"{d!r} is probably {' or '.join(repr(c) for c in guesses[d])}" for d, _ in unknown)
            mapping = ", ".join(f"{d!r}: {guesses[d][0]!r}" for d, _ in unknown)
            raise UnknownFieldError(
                f"The model has no field named {[d for d, _ in unknown]}: {said}. Map the names without renaming the "
                f"Dataset with field_map={{{mapping}}}, fine-tune with the field appended, or pass fields=[...] without it."
            ) from None
        raise UnknownFieldError(
            f"The model has no embedding for some of {list(names)}: {exc} Fine-tune with the field appended, "
            "or pass fields=[...] without it."
        ) from None


def _generic_fields(model: PhysicsModel, names: Sequence[str], keep: Sequence[str] = ()) -> list[str]:
    """`names` with the fields the model never trained read through its generic slot (when it has one), with a
    warning; names in `keep` (field_map targets the registry does not know, an error later) stay as they are."""
    import warnings

    from physviz.model.registry import generic_names, read_through_generic

    trained = (getattr(model, "metadata", None) or {}).get("trained_fields")
    if trained is not None:
        trained = [*trained, *keep]
    generic = read_through_generic(model.registry, trained, names)
    if generic:
        guesses = {n: [c for c in model.registry.suggest(n) if c in trained] for n in generic}
        said = "".join(f" {n!r} is probably {' or '.join(repr(c) for c in g)}." for n, g in guesses.items() if g)
        mapping = {n: g[0] for n, g in guesses.items() if g}
        hint = f", e.g. field_map={mapping}" if mapping else ""
        shared = " (one slot shared by all of them)" if len(generic) > 1 else ""
        warnings.warn(f"The model never trained {generic}: it reads them through its generic slot{shared} "
                      f"(zero-shot).{said} Fine-tune on them, or map each to a trained field with field_map{hint}.",
                      UserWarning, stacklevel=4)
    return generic_names(model.registry, trained, names)


def check_field_map(field_map: object, fields: Sequence[str]) -> dict[str, str]:
    """A {dataset field: model field} mapping whose keys are fields of the rollout."""
    if field_map is None:
        return {}
    if not isinstance(field_map, Mapping) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                      for k, v in field_map.items()):
        raise ParameterError(f"field_map must map dataset field names to model field names (str -> str), "
                             f"got {field_map!r}.")
    unknown = [k for k in field_map if k not in fields]
    if unknown:
        raise UnknownFieldError(f"field_map names {unknown}, which are not fields of this rollout {list(fields)}.")
    return dict(field_map)


def _predicted_times(time: np.ndarray, start: int, steps: int) -> np.ndarray:
    """Times of predicted frames: the dataset's where it has them, extended at its last spacing."""
    n = len(time)
    if n >= 2:
        dt = float(time[-1] - time[-2])
    else:
        dt = 1.0
    out = np.empty(steps, dtype=np.float64)
    for i in range(steps):
        j = start + i
        out[i] = time[j] if j < n else float(time[-1]) + (j - n + 1) * dt
    return out


def plan_rollout(
    model: PhysicsModel, ds: xr.Dataset, steps: int, context: int | None, start: int | None, fields: Sequence[str] | None,
    family: str | None = None, field_map: Mapping[str, str] | None = None,
) -> RolloutPlan:
    """Check a dataset against a model and resolve context, start, fields (renamed by field_map) and boundaries."""
    check_dataset(ds)
    steps = check_int("steps", steps, 1)
    context = check_int("context", context, optional=True)
    start = check_int("start", start, optional=True)
    fields = check_field_names(fields)
    if "time" not in ds.dims:
        raise SchemaError("The dataset has no 'time' dimension; a rollout needs context frames in time.")
    spatial = [d for d in SPATIAL if d in ds.dims]
    ndim = model.n_spatial_dims
    if len(spatial) != ndim and not (ndim == 3 and len(spatial) == 2):
        raise SchemaError(f"The model is {ndim}D but the dataset has spatial dims {spatial}.")
    if fields is None:
        fields = [
            str(v) for v in ds.data_vars
            if "time" in ds[v].dims and all(d in ds[v].dims for d in spatial) and ds[v].dtype.kind == "f"
        ]
    else:
        missing = [f for f in fields if f not in ds.data_vars]
        if missing:
            raise UnknownFieldError(f"The dataset has no field(s) {missing}; it holds {sorted(map(str, ds.data_vars))}.")
        for f in fields:
            if "time" not in ds[f].dims or not all(d in ds[f].dims for d in spatial):
                raise SchemaError(f"Field {f!r} has dims {ds[f].dims}; a rollout needs fields over time and {spatial}.")
    if not fields:
        raise SchemaError("The dataset has no field over time and space to roll out.")
    n_time = ds.sizes["time"]
    default_context = model.context_frames
    if start is None:
        start = min(n_time, context if context is not None else default_context)
    if start < 0:
        start += n_time
    if context is None:
        context = min(default_context, start)
    need = max(1, int(model.min_context_frames))
    if context < need:
        frames = "one context frame" if need == 1 else f"{need} context frames ({model.family} sets its step from the change between frames)"
        raise ParameterError(f"context={context}: this model needs at least {frames}.")
    if start - context < 0 or start > n_time:
        raise ParameterError(
            f"start={start} with context={context} needs frames {start - context}..{start - 1}, "
            f"but the dataset has {n_time} time steps (0..{n_time - 1})."
        )
    patch = model.patch_size
    small = [d for d in spatial if ds.sizes[d] < patch]
    if small:
        raise ParameterError(
            f"Resolution {[ds.sizes[d] for d in spatial]} is below one {patch}-point patch along {small}; the model cannot see it."
        )
    bcs = list(boundary_flags(ds.attrs.get("boundary_conditions"), spatial))
    renames = check_field_map(field_map, fields)
    model_fields = [renames.get(f, f) for f in fields]
    model_fields = _generic_fields(model, model_fields, [v for v in renames.values() if v not in model.registry])
    ids = _model_fields(model, model_fields, family, fields)
    times = _predicted_times(np.asarray(ds["time"].values, dtype=np.float64) if "time" in ds.coords else np.arange(n_time, dtype=np.float64), start, steps)
    return RolloutPlan(list(fields), ids, model_fields, spatial, int(context), int(start), int(steps), bcs, times)


def _context_array(ds: xr.Dataset, plan: RolloutPlan) -> np.ndarray:
    """Context frames as (B, T, C, *spatial) float32, reading only those frames."""
    window = ds[plan.fields].isel(time=slice(plan.start - plan.context, plan.start))
    arrays = []
    for f in plan.fields:
        da = window[f]
        order = (["trajectory"] if "trajectory" in da.dims else []) + ["time", *plan.spatial]
        arr = np.asarray(da.transpose(*order).values, dtype=np.float32)
        if "trajectory" not in da.dims:
            arr = arr[None]
        arrays.append(arr)
    x = np.stack(arrays, axis=2)
    bad = ~np.isfinite(x)
    if bad.any():
        b, t, c = np.argwhere(bad)[0][:3]
        raise NonFiniteFieldError(
            f"Field {plan.fields[c]!r} holds NaN/inf in context frame {plan.start - plan.context + t} "
            f"(trajectory {b}); a rollout cannot start from it."
        )
    return x


def _run_arguments(device: object, ensemble: object, jitter_seed: object) -> tuple[object, int, int | None]:
    """The torch device, ensemble size and jitter seed of a rollout, each checked."""
    from physviz.model.inputs import resolve_device

    ensemble = check_int("ensemble", ensemble, 1)
    jitter_seed = check_int("jitter_seed", jitter_seed, optional=True)
    return resolve_device(device), int(ensemble), jitter_seed  # type: ignore[arg-type]


def iter_rollout(
    model: PhysicsModel,
    ds: xr.Dataset,
    steps: int,
    *,
    context: int | None = None,
    start: int | None = None,
    fields: Sequence[str] | None = None,
    device: str = "auto",
    autocast_bf16: bool = False,
    jitter_seed: int | None = None,
    ensemble: int = 1,
    family: str | None = None,
    field_map: Mapping[str, str] | None = None,
) -> Iterator[xr.Dataset]:
    """Yield predicted frames one by one, each a Dataset with a time dim of length 1.

    ``ensemble`` > 1 or a ``jitter_seed`` predicts each frame with ``model.predict`` (the mean
    of patch-jittered passes, seeded ``jitter_seed + step``); otherwise with the plain forward.
    ``field_map`` ({dataset name: model name}) lets the model read a field under its own name.
    """
    import torch
    import xarray as xr

    from physviz.model.runtime import tune_cpu_allocator

    dev, ensemble, jitter_seed = _run_arguments(device, ensemble, jitter_seed)
    plan = plan_rollout(model, ds, steps, context, start, fields, family, field_map)
    if dev.type == "cpu":
        tune_cpu_allocator()
    model = model.to(dev).eval()
    x = torch.from_numpy(_context_array(ds, plan)).to(dev)
    ids = torch.tensor(plan.field_ids, dtype=torch.long, device=dev)
    conditions = checked_boundaries(ds.attrs.get("boundary_conditions"), plan.spatial)
    bcs = torch.tensor(model.boundary_input(conditions, plan.spatial), dtype=torch.long, device=dev)
    has_traj = any("trajectory" in ds[f].dims for f in plan.fields)
    coords = {d: ds[d].values for d in plan.spatial if d in ds.coords}
    use_autocast = bool(autocast_bf16)  # bf16 autocast on CUDA or CPU
    with torch.inference_mode():
        for i in range(plan.steps):
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_autocast):
                if jitter_seed is not None or ensemble > 1:
                    y = model.predict(x, ids, bcs, jitter_seed=None if jitter_seed is None else jitter_seed + i, ensemble=ensemble)
                else:
                    y = model(x, ids, bcs)
            y = y.float()
            if not torch.isfinite(y).all():
                raise NonFiniteFieldError(f"The model produced NaN/inf at rollout step {i} (time {plan.times[i]:.6g}).")
            x = torch.cat([x[:, 1:], y[:, None]], dim=1)
            frame = y.cpu().numpy()
            data = {}
            for c, f in enumerate(plan.fields):
                arr = frame[:, c][:, None]
                dims = ("trajectory", "time", *plan.spatial)
                if not has_traj:
                    arr, dims = arr[0], dims[1:]
                data[f] = (dims, arr)
            yield xr.Dataset(data, coords={"time": plan.times[i : i + 1], **coords})


def rollout(
    model: PhysicsModel,
    ds: xr.Dataset,
    steps: int,
    *,
    context: int | None = None,
    start: int | None = None,
    fields: Sequence[str] | None = None,
    device: str = "auto",
    autocast_bf16: bool = False,
    jitter_seed: int | None = None,
    ensemble: int = 1,
    family: str | None = None,
    field_map: Mapping[str, str] | None = None,
    progress: bool = False,
) -> xr.Dataset:
    """Predict `steps` frames autoregressively from `context` frames before time index `start`.

    family picks the registry family when a field name is in several (MPP: incompNS
    or compNS velocities); by default the family holding all the fields is used. field_map
    ({dataset name: model name}, e.g. {"concentration_A": "A"}) maps names the model does not
    know onto its own, without renaming the Dataset; the prediction keeps the Dataset's names.

    Returns a Dataset in the same schema, aligned with the truth on `time`
    (so `pred - truth` just works), with the model and rollout settings in attrs.
    """
    import xarray as xr
    from tqdm.auto import tqdm

    _run_arguments(device, ensemble, jitter_seed)
    plan = plan_rollout(model, ds, steps, context, start, fields, family, field_map)
    t0 = _time.perf_counter()
    frames = []
    gen = iter_rollout(
        model, ds, steps, context=plan.context, start=plan.start, fields=plan.fields, device=device,
        autocast_bf16=autocast_bf16, jitter_seed=jitter_seed, ensemble=ensemble, family=family, field_map=field_map,
    )
    for frame in tqdm(gen, total=plan.steps, desc="rollout", unit="step", disable=not progress):
        frames.append(frame)
    out = xr.concat(frames, dim="time")
    meta = model.metadata
    out.attrs = {
        "dataset_name": ds.attrs.get("dataset_name", ""),
        "boundary_conditions": dict(decode_attr(ds.attrs.get("boundary_conditions")) or {}),
        "simulation_parameters": dict(ds.attrs.get("simulation_parameters", {})),
        "source": {"format": "physviz.rollout", "path": ""},
        "model": meta.get("name", type(model).__name__),
        "checkpoint_hash": meta.get("hash", ""),
        "rollout": {**{k: v for k, v in asdict(plan).items() if k not in ("times", "field_ids", "model_fields")},
                    **({"field_map": dict(field_map)} if field_map else {}),
                    "jitter_seed": jitter_seed, "ensemble": ensemble, "seconds": round(_time.perf_counter() - t0, 3)},
    }
    return out
