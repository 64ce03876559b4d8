"""`physviz.finetune(model, train_ds, ...)`: fine-tune in a notebook on an xarray Dataset, with the same loop."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

from physviz.errors import OptionError
from physviz.train.config import TrainConfig, apply_overrides


def finetune(model: Any, train_ds: Any, *, steps: int = 100, fields: Sequence[str] | None = None,
             valid_ds: Any = None, n_steps_input: int | None = None, freeze: str = "none", lr: float = 1e-4,
             blocks_lr_scale: float = 1.0, reset_refiner: bool = False, fresh_fraction: float = 0.0,
             init_fields: dict[str, str] | None = None, batch_size: int | None = None, tokens: int = 4096, loss: str = "vmse", output_dir: str | os.PathLike[str] | None = None,
             append_fields: bool = True, family: str | None = None, seed: int = 0, progress: bool = True,
             overrides: Sequence[str] | None = None, **settings: Any) -> Any:
    """Fine-tune `model` (trained in place) on windows of `train_ds`; returns the RunResult (``.model``, ``.metrics``).

    ``train_ds`` is a Dataset in the physviz schema (dims trajectory?, time, x, y[, z]);
    ``fields`` picks channels (default: every time-varying field). Fields the model's
    registry does not know get new embedding slots (``append_fields``). ``freeze`` is
    'none', 'processor' or 'middle'; ``blocks_lr_scale`` multiplies the learning rate of the
    space-time blocks (below 1 the pretrained processor moves less than the parts that learn
    the new fields); ``reset_refiner`` starts a fresh full-resolution refiner; ``fresh_fraction`` moves
    every weight that far towards a fresh init first (a softened warm start); ``init_fields``
    ({new field: pretrained field}, e.g. ``{"density": "height"}``) starts a field from an analogue's
    weights. ``n_steps_input`` defaults to the model's context
    frames, capped by the trajectory length (less the rollout targets). The run writes metrics.jsonl and
    final.safetensors to ``output_dir`` (a new temporary folder if None). ``settings`` are
    further TrainConfig keys (e.g. ``log_every``, ``precision``, ``device``,
    ``rollout={"steps": 3}`` for pushforward rollout training) and
    ``overrides`` dotted ``key.sub=value`` strings.
    """
    from physviz.train.loop import run
    from physviz.train.sources import XarraySource

    if not hasattr(model, "registry") or not hasattr(model, "config"):
        raise OptionError("finetune() needs a physviz model (physviz.load_model(...) or physviz.model.AViT).")
    if "time" not in getattr(train_ds, "dims", {}):
        raise OptionError("finetune() needs an xarray Dataset with a 'time' dimension as train_ds.")
    n_time = int(train_ds.sizes["time"])
    rollout = settings.get("rollout")
    n_out = int(rollout.get("steps", 1)) if isinstance(rollout, dict) and isinstance(rollout.get("steps", 1), int) else 1
    n_in = n_steps_input if n_steps_input is not None else max(1, min(model.config.context_frames, n_time - max(1, n_out)))
    out = str(output_dir) if output_dir is not None else tempfile.mkdtemp(prefix="physviz-finetune-")
    data = {"path": "<xarray>", "name": str(train_ds.attrs.get("dataset_name") or "dataset"), "n_steps_input": n_in,
            "fields": list(fields) if fields is not None else None, "batch_size": batch_size, "family": family}
    cfg_dict: dict[str, Any] = {
        "output_dir": out,
        "data": [data],
        "steps": int(steps),
        "n_steps_input": n_in,
        "batch": {"tokens": int(tokens), "scope": "rank", "accumulate": 1},
        "optimizer": {"lr": float(lr), "warmup_steps": min(10, max(0, steps // 10))},
        "loss": loss,
        "resume": "never",
        "seed": int(seed),
        "progress": bool(progress),
        "valid_batches": 4 if valid_ds is not None else 0,
        "finetune": {"freeze": freeze, "append_fields": bool(append_fields), "blocks_lr_scale": blocks_lr_scale,
                     "reset_refiner": reset_refiner, "fresh_fraction": fresh_fraction,
                     "init_fields": dict(init_fields or {})},
    }
    cfg_dict.update(settings)
    cfg = TrainConfig.from_dict(apply_overrides(cfg_dict, list(overrides or [])))
    with_std = cfg.normalize == "stats" and cfg.loss != "nmse"
    train = XarraySource(train_ds, list(fields) if fields is not None else None, n_in, name=data["name"],
                         with_std=with_std, family=family, n_out=cfg.rollout.steps)
    valid = None
    if valid_ds is not None:
        valid = XarraySource(valid_ds, train.channels, n_in, name=data["name"], with_std=with_std, family=family)
        valid.info.std = train.info.std
    return run(cfg, model=model, sources=[train], valid_sources=[valid])
