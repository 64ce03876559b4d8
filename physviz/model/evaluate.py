"""Skill of a next-frame predictor on held-out trajectories: one-step and rollout VRMSE, baselines alike.

A *predictor* is any callable ``f(x) -> y`` on float32 numpy arrays, ``x`` of shape
(B, T, C, *spatial) (context frames, batch first) and ``y`` of shape (B, C, *spatial)
(the next frame). The model, the persistence baseline (copy the last frame) and an FNO
baseline all fit, so one table compares them on the same windows with the same metric.

VRMSE is The Well's: ``sqrt(mean(res^2) / (var(truth) + 1e-7))`` per trajectory, field and
frame (the definition of ``physviz.analysis.vrmse``, here on plain arrays), then averaged over
fields and trajectories.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from physviz.errors import ParameterError, SchemaError

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


def vrmse(pred: np.ndarray, truth: np.ndarray, n_spatial: int, eps: float = 1e-7) -> np.ndarray:
    """VRMSE per leading index: arrays (..., *spatial); reductions in float64."""
    axes = tuple(range(pred.ndim - n_spatial, pred.ndim))
    t = truth.astype(np.float64)
    mse = np.mean((pred.astype(np.float64) - t) ** 2, axis=axes)
    var = np.var(t, axis=axes, ddof=1)
    return np.sqrt(mse / (var + eps))


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
    one = vrmse(preds, target, n)  # (B*W, C)
    steps = min(steps, T - context)
    roll = autoregress(predict, data[:, :context], steps, batch)
    curve = vrmse(roll, data[:, context:context + steps], n).mean(axis=(0, 2))  # (steps,)
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


def periodic_flags(ds: Any) -> list[int]:
    """1 per spatial axis whose boundary condition is periodic, else 0."""
    bcs = ds.attrs.get("boundary_conditions", {}) or {}
    return [1 if bcs.get(d) == "periodic" else 0 for d in SPATIAL if d in ds.dims]
