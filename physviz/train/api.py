"""`physviz.finetune(model, train_ds, ...)`: fine-tune in a notebook on an xarray Dataset, with the same loop."""
from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from physviz.errors import OptionError
from physviz.train.config import (
    Device,
    EarlyStoppingSection,
    Freeze,
    Loss,
    Precision,
    RolloutSection,
    TrainConfig,
    TrainConfigError,
)
from physviz.typed_config import Config, setting

if TYPE_CHECKING:
    import xarray as xr

    from physviz.model.family import PhysicsModel
    from physviz.train.loop import RunResult


@dataclass
class FinetuneOptions(Config):
    """Options of `physviz.finetune`; give them as keywords, as a mapping, or as this dataclass.

    | option | default | meaning |
    |---|---|---|
    | ``steps`` | 100 | optimizer steps |
    | ``lr`` | 1e-4 | peak learning rate (AdamW, cosine decay after the warm-up) |
    | ``warmup_steps`` | None | linear warm-up steps; None: ``min(10, steps // 10)`` |
    | ``weight_decay`` | 1e-3 | AdamW weight decay (not on biases and norms) |
    | ``freeze`` | "none" | "none" trains everything, "processor" freezes the space-time blocks, "middle" trains only the field embedding and decoder head |
    | ``blocks_lr_scale`` | 1.0 | learning-rate factor of the space-time blocks (discriminative fine-tuning; below 1 the pretrained processor moves less) |
    | ``fields`` | None | channels to train on; None: every time-varying field |
    | ``append_fields`` | True | fields the model's registry does not know get new embedding slots (False: an error) |
    | ``untrained_from_generic`` | True | a field outside the model's ``trained_fields`` starts as a copy of its trained generic slot (a model trained with ``field_dropout``), so the fine-tune begins from the zero-shot prediction |
    | ``family`` | None | registry family for the field lookup (MPP registries) |
    | ``n_steps_input`` | None | context frames; None: the model's context length, capped by the trajectory length less the rollout targets |
    | ``tokens`` | 4096 | token budget of a micro-batch (sets the batch size) |
    | ``batch_size`` | None | samples per micro-batch instead of the token budget |
    | ``every_frame`` | None | a model causal in time (Walrus) trains on its prediction after every context frame; None: on for causal models |
    | ``rollout`` | {steps: 1, gradient: last} | rollout training: predict ``steps`` frames from the model's own output; ``gradient`` "last" (pushforward) or "all" |
    | ``loss`` | "vmse" | "vmse", "nmse", "mse" or "mae" |
    | ``precision`` | "fp32" | "fp32" or "bf16" (autocast) |
    | ``device`` | "auto" | "auto", "cpu" or "cuda" |
    | ``valid_batches`` | 4 | batches of ``valid_ds`` per validation |
    | ``valid_every`` | 0 | validate every this many steps (0: only at the end); needs ``valid_ds`` |
    | ``early_stopping`` | {patience: 0} | stop when the one-step VRMSE on ``valid_ds`` has not improved (by more than ``min_delta`` plus ``min_rel_delta`` of the best) for ``patience`` validations; the model returned holds the best validation weights (0: off) |
    | ``log_every`` | 1 | steps per metrics.jsonl line |
    | ``output_dir`` | None | folder for metrics.jsonl and final.safetensors; None: a new temporary folder |
    | ``progress`` | True | show a progress bar |
    | ``seed`` | 0 | seed of the sampling order and the model's random parts |
    """

    config_name = "fine-tune options"
    config_error = TrainConfigError

    steps: int = setting(100, min=1)
    lr: float = setting(1e-4, above=0)
    warmup_steps: int | None = setting(None, min=0)
    weight_decay: float = setting(1e-3, min=0)
    freeze: Freeze = "none"
    blocks_lr_scale: float = setting(1.0, above=0, max=100)
    fields: list[str] | None = None
    append_fields: bool = True
    untrained_from_generic: bool = True
    family: str | None = None
    n_steps_input: int | None = setting(None, min=1)
    tokens: int = setting(4096, min=1)
    batch_size: int | None = setting(None, min=1)
    every_frame: bool | None = None
    rollout: RolloutSection = field(default_factory=RolloutSection)
    loss: Loss = "vmse"
    precision: Precision = "fp32"
    device: Device = "auto"
    valid_batches: int = setting(4, min=1)
    valid_every: int = setting(0, min=0)
    early_stopping: EarlyStoppingSection = field(default_factory=EarlyStoppingSection)
    log_every: int = setting(1, min=1)
    output_dir: str | None = None
    progress: bool = True
    seed: int = 0

    def train_config(self, name: str, n_steps_input: int, output_dir: str, validate: bool) -> TrainConfig:
        """The TrainConfig of one fine-tune on an in-memory dataset called `name`."""
        data = {"path": "<xarray>", "name": name, "n_steps_input": n_steps_input, "fields": self.fields,
                "batch_size": self.batch_size, "family": self.family}
        warmup = self.warmup_steps if self.warmup_steps is not None else min(10, self.steps // 10)
        return TrainConfig.from_dict({
            "output_dir": output_dir,
            "data": [data],
            "steps": self.steps,
            "n_steps_input": n_steps_input,
            "batch": {"tokens": self.tokens, "scope": "rank", "accumulate": 1},
            "optimizer": {"lr": self.lr, "warmup_steps": warmup, "weight_decay": self.weight_decay},
            "loss": self.loss,
            "precision": self.precision,
            "device": self.device,
            "resume": "never",
            "seed": self.seed,
            "progress": self.progress,
            "log_every": self.log_every,
            "valid_every": self.valid_every if validate else 0,
            "valid_batches": self.valid_batches if validate else 0,
            "early_stopping": self.early_stopping.to_dict(),  # patience without valid_ds: an error naming it
            "finetune": {"freeze": self.freeze, "blocks_lr_scale": self.blocks_lr_scale,
                         "append_fields": self.append_fields, "untrained_from_generic": self.untrained_from_generic},
            "rollout": self.rollout.to_dict(),
            "model": {"every_frame": self.every_frame},
        })


def finetune(model: PhysicsModel, train_ds: xr.Dataset, valid_ds: xr.Dataset | None = None,
             config: FinetuneOptions | Mapping[str, Any] | None = None, **overrides: Any) -> RunResult:
    """Fine-tune `model` (trained in place) on windows of `train_ds`; returns the RunResult (``.model``, ``.metrics``).

    ``train_ds`` (and ``valid_ds``) is a Dataset in the physviz schema (dims trajectory?, time,
    x, y[, z]). ``config`` is a `FinetuneOptions` (or a mapping of its options) and
    ``overrides`` are options changed from it, e.g. ``finetune(model, ds, steps=200,
    freeze="processor")``; the options are listed in `FinetuneOptions`. An unknown option
    raises `TrainConfigError` naming it. The run writes metrics.jsonl and final.safetensors
    to ``output_dir``. For less memory (more compute) set ``model.gradient_checkpointing = True``
    first.
    """
    from physviz.train.loop import run
    from physviz.train.sources import XarraySource

    base = config if isinstance(config, FinetuneOptions) else FinetuneOptions.from_dict(dict(config or {}))
    opts = FinetuneOptions.from_dict({**base.to_dict(), **overrides}) if overrides else base
    if not hasattr(model, "registry") or not hasattr(model, "config"):
        raise OptionError("finetune() needs a physviz model (physviz.load_model(...) or physviz.model.AViT).")
    if "time" not in getattr(train_ds, "dims", {}):
        raise OptionError("finetune() needs an xarray Dataset with a 'time' dimension as train_ds.")
    n_time = int(train_ds.sizes["time"])
    n_out = opts.rollout.steps
    n_in = opts.n_steps_input or max(int(getattr(model, "min_context_frames", 1)), min(model.context_frames, n_time - n_out))
    out = opts.output_dir if opts.output_dir is not None else tempfile.mkdtemp(prefix="physviz-finetune-")
    name = str(train_ds.attrs.get("dataset_name") or "dataset")
    cfg = opts.train_config(name, n_in, out, validate=valid_ds is not None)
    with_std = cfg.normalize == "stats" and cfg.loss != "nmse"
    train = XarraySource(train_ds, opts.fields, n_in, name=name, with_std=with_std, family=opts.family, n_out=n_out)
    valid = None
    if valid_ds is not None:
        valid = XarraySource(valid_ds, train.channels, n_in, name=name, with_std=with_std, family=opts.family,
                             role="validation")
        valid.info.std = train.info.std
    return run(cfg, model=model, sources=[train], valid_sources=[valid])
