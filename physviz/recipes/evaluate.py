"""Skill of a next-frame predictor on held-out trajectories: one-step and rollout VRMSE, baselines alike.

A *predictor* is any callable ``f(x) -> y`` on float32 numpy arrays, ``x`` of shape
(B, T, C, *spatial) (context frames, batch first) and ``y`` of shape (B, C, *spatial)
(the next frame). The model, the persistence baseline (copy the last frame) and an FNO
baseline all fit, so one table compares them on the same windows with the same metric.

VRMSE is The Well's (``physviz.analysis.error_metrics.vrmse_array``) per trajectory, field and
frame, then averaged over fields and trajectories. `evaluate_all` measures a recipe's model,
persistence and the FNO baselines on every held-out test set and writes ``results.json``.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from physviz.analysis.error_metrics import vrmse_array
from physviz.errors import ParameterError, SchemaError
from physviz.fields.schema import periodic_flags

if TYPE_CHECKING:
    from physviz.recipes.recipe import Recipe

Predictor = Callable[[np.ndarray], np.ndarray]
SPATIAL = ("x", "y", "z")


@dataclass
class Skill:
    """VRMSE of one predictor on one dataset: one-step (all windows), and per rollout step from the first window."""

    one_step: float
    rollout: np.ndarray  # (steps,) VRMSE at each rollout step, mean over fields and trajectories
    per_field_one_step: dict[str, float] = field(default_factory=dict)

    def mean_rollout(self, steps: int) -> float:
        """Mean VRMSE over the first `steps` rollout steps (NaN when the rollout is shorter)."""
        return float(np.mean(self.rollout[:steps])) if len(self.rollout) >= steps else float("nan")


def fields_of(ds: Any) -> list[str]:
    """The time-varying float fields of a Dataset over its spatial dims, in dataset order."""
    spatial = [d for d in SPATIAL if d in ds.dims]
    return [str(v) for v in ds.data_vars
            if "time" in ds[v].dims and all(d in ds[v].dims for d in spatial) and ds[v].dtype.kind == "f"]


def as_array(ds: Any, fields: Sequence[str]) -> np.ndarray:
    """Fields of a Dataset as float32 (trajectory, time, field, *spatial)."""
    spatial = [d for d in SPATIAL if d in ds.dims]
    arrays = []
    for f in fields:
        da = ds[f]
        order = (["trajectory"] if "trajectory" in da.dims else []) + ["time", *spatial]
        a = np.asarray(da.transpose(*order).values, dtype=np.float32)
        arrays.append(a if "trajectory" in da.dims else a[None])
    return np.stack(arrays, axis=2)


def autoregress(predict: Predictor, context: np.ndarray, steps: int, batch: int = 8) -> np.ndarray:
    """Feed `predict` its own outputs: (B, T, C, *S) context -> (B, steps, C, *S) predictions."""
    out = []
    for b0 in range(0, context.shape[0], batch):
        x = context[b0:b0 + batch].copy()
        frames = []
        for _ in range(steps):
            y = np.asarray(predict(x), dtype=np.float32)
            if y.shape != x.shape[:1] + x.shape[2:]:
                raise SchemaError(f"A predictor returned shape {y.shape} for input {x.shape}; expected {x.shape[:1] + x.shape[2:]}.")
            frames.append(y)
            x = np.concatenate([x[:, 1:], y[:, None]], axis=1)
        out.append(np.stack(frames, axis=1))
    return np.concatenate(out, axis=0)


def evaluate(predict: Predictor, data: np.ndarray, context: int, steps: int, fields: Sequence[str] | None = None,
             batch: int = 8) -> Skill:
    """Skill of `predict` on trajectories `data` (B, T, C, *S): one-step over every window, rollout from frame `context`."""
    B, T, C, *S = data.shape
    n = len(S)
    if T < context + 1:
        raise ParameterError(f"Trajectories have {T} frames; one-step skill with context={context} needs at least {context + 1}.")
    names = list(fields) if fields is not None else [f"field{i}" for i in range(C)]
    # one step: every window (t-context .. t-1) -> t
    windows = np.stack([data[:, t - context:t] for t in range(context, T)], axis=1)  # (B, W, context, C, *S)
    W = windows.shape[1]
    flat = windows.reshape(B * W, context, C, *S)
    preds = np.concatenate([np.asarray(predict(flat[i:i + batch]), dtype=np.float32) for i in range(0, len(flat), batch)])
    target = data[:, context:].reshape(B * W, C, *S)
    one = vrmse_array(preds, target, n)  # (B*W, C)
    steps = min(steps, T - context)
    roll = autoregress(predict, data[:, :context], steps, batch)
    curve = vrmse_array(roll, data[:, context:context + steps], n).mean(axis=(0, 2))  # (steps,)
    return Skill(float(one.mean()), curve, {f: float(one[:, c].mean()) for c, f in enumerate(names)})


def live_trajectories(data: np.ndarray, start: int = 0, rel: float = 1e-6) -> np.ndarray:
    """Mask (B,) of trajectories in which no field goes uniform from frame `start` on.

    A field is uniform in a frame when its spatial variance there is at most `rel` times its
    largest over the trajectory (or 0). A Gray-Scott pattern that dies out (or never forms)
    leaves such frames: VRMSE divides by that variance (+1e-7), so any residual reads as an
    error of 100s and one such trajectory swamps the mean over a test set. Frames before
    `start` (the context: a flow starting at rest, say) do not count.
    """
    B, T, C = data.shape[:3]
    var = data.reshape(B, T, C, -1).astype(np.float64).var(-1)
    ref = var.max(axis=1, keepdims=True)
    return ~(var[:, start:] <= rel * ref).any(axis=(1, 2))


def persistence(x: np.ndarray) -> np.ndarray:
    """The persistence baseline: the next frame is the last one."""
    return x[:, -1]


def model_predictor(model: Any, fields: Sequence[str], bcs: Sequence[int], family: str | None = None,
                    ensemble: int = 1, jitter_seed: int = 0) -> Predictor:
    """A predictor running `model` (an AViT) under inference mode on the CPU or its device.

    ``ensemble > 1``: the mean over that many patch-jittered passes (`AViT.predict`), the
    shifts drawn from `jitter_seed`, so a run is reproducible.
    """
    import torch

    ids = model.field_ids(list(fields), family=family)
    b = torch.tensor(list(bcs), dtype=torch.long)
    device = next(model.parameters()).device
    model.eval()

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
            y = model(xt, ids, b) if ensemble == 1 else model.predict(xt, ids, b, ensemble=ensemble, jitter_seed=jitter_seed)
            return y.float().cpu().numpy()

    return predict


def boundary_flags(ds: Any) -> list[int]:
    """1 per spatial axis of a Dataset whose boundary condition is periodic, else 0."""
    return list(periodic_flags(ds.attrs.get("boundary_conditions"), [d for d in SPATIAL if d in ds.dims]))


def load_eval(path: Path) -> tuple[Any, list[str], list[int], np.ndarray]:
    """A test set: the Dataset, its fields, periodic flags and the (B, T, C, *S) array."""
    from physviz.fields import open_fields

    ds = open_fields(path)
    fields = fields_of(ds)
    return ds, fields, boundary_flags(ds), as_array(ds, fields)


def load_train_array(dataset_dir: Path) -> np.ndarray:
    """The whole train split of a corpus dataset as (B, T, C, *S) (small enough for memory here)."""
    from physviz.fields import open_fields

    ds = open_fields(dataset_dir, split="train")
    return as_array(ds, fields_of(ds))


# -- a recipe's evaluation ------------------------------------------------------------------------
def evaluate_all(recipe: Recipe, workdir: Path, model: Any, fno: dict[str, Path] | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Skill of the model, persistence and the FNO on every held-out test set; spectra after 10 steps."""
    from tqdm.auto import tqdm

    from physviz.recipes.baselines import load_fno

    results: dict[str, Any] = {}
    spectra: dict[str, Any] = {}
    max_steps = max(recipe.rollout_steps)
    paths = sorted((workdir / "eval").glob("*.hdf5"))
    for path in tqdm(paths, desc="evaluate", disable=not progress):
        name = path.stem
        ds, fields, bcs, data = load_eval(path)
        live = live_trajectories(data, start=recipe.context)
        excluded = int((~live).sum())
        data = data[live]
        predictors: dict[str, Predictor] = {"model": model_predictor(model, fields, bcs), "persistence": persistence}
        if recipe.eval_ensemble > 1:
            predictors["ensemble"] = model_predictor(model, fields, bcs, ensemble=recipe.eval_ensemble)
        if fno and name in fno and fno[name].exists():
            predictors["fno"] = load_fno(fno[name], data.shape, recipe.context)
        row: dict[str, Any] = {"fields": fields, "trajectories": int(data.shape[0]), "frames": int(data.shape[1]),
                               "resolution": list(data.shape[3:]), "excluded_uniform": excluded}
        for pname, pred in predictors.items():
            skill = evaluate(pred, data, recipe.context, max_steps, fields)
            row[pname] = {"one_step": skill.one_step, "per_field_one_step": skill.per_field_one_step,
                          "curve": [float(v) for v in skill.rollout],
                          **{f"rollout_{k}": skill.mean_rollout(k) for k in recipe.rollout_steps}}
        results[name] = row
        # spectra of every field after 10 steps, model vs truth (isotropic over the spatial axes)
        k = min(10, data.shape[1] - recipe.context)
        roll = autoregress(predictors["model"], data[:, :recipe.context], k)
        spectra[name] = _spectra(roll[:, -1], data[:, recipe.context + k - 1], fields)
    return {"skill": results, "spectra": spectra}


def carry_fno(skill: dict[str, Any], previous: dict[str, Any], rel: float = 1e-3) -> list[str]:
    """Copy the FNO rows of `previous` (an earlier skill table) into `skill` for the test sets evaluated again
    without FNO weights; only where the set is the same one: equal shape, and persistence's one-step and
    rollout errors reproduced to `rel`. Each carried row is marked ``fno_carried``; returns their names."""
    carried = []
    for name, row in skill.items():
        old = previous.get(name) or {}
        if "fno" in row or "fno" not in old:
            continue
        if any(row.get(k) != old.get(k) for k in ("fields", "trajectories", "frames", "resolution")):
            continue
        now, then = row["persistence"], old.get("persistence") or {}
        keys = [k for k in now if k == "one_step" or k.startswith("rollout_")]
        if all(k in then and abs(now[k] - then[k]) <= rel * abs(then[k]) for k in keys):
            row["fno"], row["fno_carried"] = old["fno"], True
            carried.append(name)
    return carried


def _spectra(pred: np.ndarray, truth: np.ndarray, fields: list[str]) -> dict[str, Any]:
    """Isotropic spectra of each field of (B, C, *S) frames, averaged over the batch."""
    import xarray as xr

    from physviz.analysis import power_spectrum

    dims = ("trajectory", "x", "y", "z")[: pred.ndim - 1]
    out = {}
    for c, f in enumerate(fields):
        sp = power_spectrum(xr.DataArray(pred[:, c], dims=dims, name=f)).mean("trajectory")
        st = power_spectrum(xr.DataArray(truth[:, c], dims=dims, name=f)).mean("trajectory")
        out[f] = {"k": [float(v) for v in sp["wavenumber"].values], "pred": [float(v) for v in sp.values],
                  "truth": [float(v) for v in st.values]}
    return out


def read_results(folder: Path) -> dict[str, Any]:
    """folder/results.json ({} when there is none)."""
    path = folder / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_results(folder: Path, results: dict[str, Any]) -> Path:
    """folder/results.json, atomically."""
    from physviz.fields.atomic import write_text_atomic

    path = folder / "results.json"
    write_text_atomic(path, json.dumps(results, indent=1))
    return path


def floors(skill: dict[str, Any], predictor: str = "model") -> dict[str, Any]:
    """The card's floors on a skill table for `predictor` ("model" or "ensemble"): one-step at most half of
    persistence's, 10-step rollout better than persistence, and against the FNO (10-step and one-step)."""
    rows = {n: r for n, r in skill.items() if predictor in r}
    half = {n: r[predictor]["one_step"] <= 0.5 * r["persistence"]["one_step"] for n, r in rows.items()}
    ten = {n: r[predictor]["rollout_10"] < r["persistence"]["rollout_10"] for n, r in rows.items()}
    fno = {n: r[predictor]["rollout_10"] < r["fno"]["rollout_10"] for n, r in rows.items() if "fno" in r}
    fno_one = {n: r[predictor]["one_step"] < r["fno"]["one_step"] for n, r in rows.items() if "fno" in r}
    return {"one_step_half_of_persistence": half, "rollout10_beats_persistence": ten,
            "beats_fno_rollout10": fno, "beats_fno_one_step": fno_one,
            "all_half": all(half.values()), "all_ten": all(ten.values()),
            "fno_wins": sum(fno.values()), "fno_systems": len(fno)}
