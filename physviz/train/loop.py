"""The training loop: one process or torchrun, DDP or FSDP2, resumable, streaming metrics.jsonl.

``run(config)`` validates the config (data included) before any work, joins the process
group torchrun describes (gloo on CPU, NCCL on GPU), builds or loads the model, appends
unknown fields to its registry, applies the freeze preset, wraps it (DDP / FSDP2), and
trains with AdamW (warm-up + cosine), gradient accumulation, clipping and optional bf16
autocast. Rank 0 locks the output folder for the run (a second run on it is refused) and
writes ``metrics.jsonl`` (flushed per line), ``config.yaml``, resume checkpoints every
``checkpoint_every`` steps and at the end, and ``final.safetensors``, each file but the
metrics stream durably (temporary file, fsync, rename). After a resume, lines of the steps
after the checkpoint appear again; the last line of a step wins.

With ``early_stopping.patience``, training stops after that many validations without improvement
and ``final.safetensors`` holds the best validation weights (kept meanwhile in ``best.pt``).

``resume: auto`` continues from the newest readable checkpoint, and refuses (changing
nothing) when every checkpoint is unreadable, when a finished run's checkpoints are gone, or
when the config differs from the checkpoint's in a setting that shapes training.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from physviz.errors import ParameterError, PhysvizError, UnknownFieldError
from physviz.train import checkpoints as ck
from physviz.train.config import TrainConfig, TrainConfigError, changed_settings, init_checkpoint
from physviz.train.distributed import (
    DistEnv,
    all_reduce_sum,
    barrier,
    broadcast_object,
    env_rank,
    gather_objects,
    grad_sync,
    setup,
    unwrap,
    wrap,
)
from physviz.train.output import locked, writing
from physviz.train.losses import loss_fn, rollout_loss, vrmse
from physviz.train.metrics import METRICS_FILE, MetricsWriter, records_of
from physviz.train.sampler import MixedBatchSampler

if TYPE_CHECKING:
    from physviz.model.family import PhysicsModel

BEST_FILE = "best.pt"  # early stopping: the best validation weights so far
CRASH_ENV = "PHYSVIZ_TEST_CRASH_AT_STEP"  # tests only: SIGKILL one rank once after this step
CRASH_RANK_ENV = "PHYSVIZ_TEST_CRASH_RANK"


@dataclass
class RunResult:
    """What a run left behind (on rank 0; other ranks get paths and steps only)."""

    output_dir: Path
    final_checkpoint: Path | None
    steps: int
    loss: float | None
    resumed_from: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)
    model: Any = None

    def losses(self) -> list[float]:
        """Training losses of this run's logged steps."""
        return [m["loss"] for m in records_of(self.metrics, "train")]


def as_config(config: TrainConfig | dict[str, Any] | str | os.PathLike[str], overrides: list[str] | None = None) -> TrainConfig:
    """A TrainConfig from a config object, a dict, YAML text or a YAML path."""
    if isinstance(config, TrainConfig):
        return TrainConfig.from_yaml(config.to_dict(), overrides) if overrides else config
    return TrainConfig.from_yaml(config, overrides)


def run(config: TrainConfig | dict[str, Any] | str | os.PathLike[str], overrides: list[str] | None = None, *,
        model: Any = None, sources: list[Any] | None = None, valid_sources: list[Any] | None = None) -> RunResult:
    """Train as the config says; under torchrun every rank calls this. Returns a RunResult.

    ``model`` (a `PhysicsModel`) replaces the config's model section, and ``sources``/``valid_sources``
    (window sources such as `XarraySource`, one per ``data`` entry) replace reading the data
    paths; `physviz.finetune` uses both.
    """
    cfg = as_config(config, overrides)
    cfg.validate(check_data=sources is None)
    cfg = cfg.resolved()
    with locked(cfg.output_dir, enabled=env_rank()[0] == 0):
        env = setup(cfg.device)
        try:
            return Trainer(cfg, env, model, sources, valid_sources).run()
        finally:
            env.close()


def _peak_memory_mb(env: DistEnv) -> float:
    if env.device.type == "cuda":
        return torch.cuda.max_memory_allocated(env.device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


class Trainer:
    """One training run on one rank."""

    def __init__(self, cfg: TrainConfig, env: DistEnv, model: Any, sources: list[Any] | None,
                 valid_sources: list[Any] | None) -> None:
        self.cfg, self.env = cfg, env
        self.out = Path(cfg.output_dir)
        self.mode = cfg.parallel if cfg.parallel != "auto" else "ddp"
        if not env.distributed:
            self.mode = "none"
        self.names = [s.name or f"dataset{i}" for i, s in enumerate(cfg.data)]
        torch.manual_seed(cfg.seed)
        self.raw = model if model is not None else self._build_model()
        self.start_trained = self._start_trained()
        self.sources, self.valid = self._build_sources(sources, valid_sources)
        if cfg.early_stopping.patience and all(v is None for v in self.valid):
            raise TrainConfigError(
                f"early_stopping.patience={cfg.early_stopping.patience} needs validation windows, but no dataset has "
                "a valid_split with data; give one (e.g. data[0].valid_split: valid) or set early_stopping.patience to 0."
            )
        self._bind_fields()
        self._freeze()
        self.raw.to(env.device)
        self.raw.train()
        self.model = wrap(self.raw, self.mode, env)
        self.optimizer = self._build_optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.per_rank = self._batch_sizes()
        self.sampler = MixedBatchSampler([len(s) for s in self.sources], self.per_rank, [s.weight for s in cfg.data],
                                         world=env.world, rank=env.rank, seed=cfg.seed)
        self.step = 0
        self.resumed_from = 0
        # early stopping: best validation score, its step, validations since, whether training stopped
        self.es: dict[str, Any] = {"best": None, "best_step": 0, "bad": 0, "stopped": False}
        self._best_sd: dict[str, Any] | None = None

    # -- set-up ------------------------------------------------------------------------
    def _build_model(self) -> PhysicsModel:
        from physviz.model.avit import AViT
        from physviz.model.checkpoint import load_model
        from physviz.model.config import ModelConfig
        from physviz.model.registry import FieldRegistry

        m = self.cfg.model
        try:
            if m.init_from is None and m.family == "walrus":
                from physviz.model.walrus.config import preset
                from physviz.model.walrus.model import Walrus

                model = Walrus(preset(m.preset, **m.overrides))
            elif m.init_from is None:
                mcfg = ModelConfig.preset(m.preset, **m.overrides)
                reg = FieldRegistry.physviz(n_slots=mcfg.n_states) if m.registry == "physviz" else FieldRegistry.mpp()
                model: PhysicsModel = AViT(mcfg, registry=reg)
            else:
                model = load_model(init_checkpoint(m.init_from), **m.overrides)
        except ParameterError as exc:
            raise TrainConfigError(f"model: {exc}") from None
        model.gradient_checkpointing = m.gradient_checkpointing
        return model

    def _build_sources(self, sources: list[Any] | None, valid: list[Any] | None) -> tuple[list[Any], list[Any | None]]:
        cfg = self.cfg
        with_std = cfg.normalize == "stats" and cfg.loss != "nmse"
        if sources is None:
            from physviz.train.sources import build_sources

            pairs = [build_sources(spec, name, cfg.n_steps_input, f"data[{i}]", with_std, cfg.rollout.steps)
                     for i, (spec, name) in enumerate(zip(cfg.data, self.names))]
            sources = [p[0] for p in pairs]
            valid = [p[1] for p in pairs]
        if len(sources) != len(cfg.data):
            raise TrainConfigError(f"{len(sources)} sources were given for {len(cfg.data)} data entries.")
        valid = list(valid) if valid is not None else [None] * len(sources)
        if cfg.valid_batches == 0:
            valid = [None] * len(sources)
        patch, dims = self.raw.patch_size, self.raw.n_spatial_dims
        for i, src in enumerate(sources):
            info = src.info
            if info.n_spatial_dims not in (dims, dims - 1):
                raise TrainConfigError(
                    f"data[{i}] ({info.name}) is {info.n_spatial_dims}D but the model is {dims}D; "
                    "use a model with as many spatial dims (2D data also trains a 3D model)."
                )
            off = [s for s in info.spatial if s % patch]
            if off and not self.raw.pads_to_patch:
                raise TrainConfigError(
                    f"data[{i}] ({info.name}) has grid {info.spatial}, not a multiple of the patch size {patch}; "
                    "set model.overrides.pad_to_patch=true."
                )
            if info.n_steps_input < self.raw.min_context_frames:
                raise TrainConfigError(
                    f"data[{i}] ({info.name}): n_steps_input={info.n_steps_input} but this {self.raw.family} model needs "
                    f"at least {self.raw.min_context_frames} context frames; raise n_steps_input."
                )
            try:
                self.raw.token_grid(info.spatial)
            except ParameterError as exc:
                raise TrainConfigError(f"data[{i}] ({info.name}): {exc}") from None
            if len(src) < 1:
                raise TrainConfigError(f"data[{i}] ({info.name}) holds no training window.")
            if getattr(src, "n_out", 1) != cfg.rollout.steps:
                raise TrainConfigError(
                    f"data[{i}] ({info.name}): its source gives {getattr(src, 'n_out', 1)} target frame(s) per window "
                    f"but rollout.steps is {cfg.rollout.steps}; build it with n_out={cfg.rollout.steps}."
                )
        return sources, valid

    def _bind_fields(self) -> None:
        """Registry indices per dataset; unknown fields get new slots (the model widens) if allowed."""
        from physviz.model.surgery import ensure_field_slots

        reg = self.raw.registry
        self.field_ids: list[torch.Tensor] = []
        self.bcs: list[Any] = []
        self.added: list[str] = []
        for i, src in enumerate(self.sources):
            info = src.info
            before = set(reg.known())
            try:
                if self.cfg.finetune.append_fields:
                    ids = ensure_field_slots(self.raw, info.channels, family=info.family)
                else:
                    ids = [int(i) for i in self.raw.field_ids(info.channels, family=info.family).tolist()]
            except UnknownFieldError as exc:
                raise TrainConfigError(
                    f"data[{i}] ({info.name}): {exc} (or set finetune.append_fields=true)"
                ) from None
            except ParameterError as exc:
                raise TrainConfigError(f"data[{i}] ({info.name}): {exc}") from None
            self.added += sorted(set(reg.known()) - before)
            self.field_ids.append(torch.tensor(ids, dtype=torch.long))
            # a 3D model takes 2D fields with x, y conditions
            axes = ("x", "y", "z")[:len(info.spatial)]
            conditions = info.boundary_conditions
            if conditions is None:
                conditions = {a: "periodic" if p else "wall" for a, p in zip(axes, info.periodic)}
            self.bcs.append(self.raw.boundary_input(conditions, axes))
        self.trained_fields = sorted({c for src in self.sources for c in src.info.channels})
        self.from_generic = self._start_from_generic()
        self.generic = self._generic_slot()
        self.dropped: tuple[int, int] | None = None  # (dataset, channel) read through the generic slot this micro-batch
        self.every_frame = self._every_frame()

    def _start_trained(self) -> list[str]:
        """The fields the start model trained: its record; none for a fresh model (no metadata); every field a
        trained start without a record has a slot for (an older physviz checkpoint, MPP's, Walrus's: it reads
        each through its own slot, and so does the fine-tune)."""
        from physviz.model.registry import GENERIC

        meta = getattr(self.raw, "metadata", None) or {}
        if "trained_fields" in meta:
            return list(meta["trained_fields"])
        return [n for n in self.raw.registry.known() if n != GENERIC] if meta else []

    def _start_from_generic(self) -> list[str]:
        """Fields the start model never trained begin as copies of its trained generic slot; returns their names."""
        from physviz.model.registry import GENERIC
        from physviz.model.surgery import average_slot

        trained = self.start_trained
        if not self.cfg.finetune.untrained_from_generic or GENERIC not in trained:
            return []
        generic = int(self.raw.field_ids([GENERIC])[0])
        started: list[str] = []
        for src, ids in zip(self.sources, self.field_ids):
            for name, slot in zip(src.info.channels, ids.tolist()):
                if name not in trained and name not in started:
                    average_slot(self.raw, int(slot), [generic])
                    started.append(name)
        return started

    def _generic_slot(self) -> int | None:
        """With field_dropout, the model's generic slot (added when missing, started as the mean of the data's slots)."""
        from physviz.model.registry import GENERIC
        from physviz.model.surgery import average_slot, ensure_field_slots

        if not self.cfg.field_dropout:
            return None
        fresh = GENERIC not in self.raw.registry
        slot = ensure_field_slots(self.raw, [GENERIC])[0]
        if fresh:
            average_slot(self.raw, slot, torch.cat(self.field_ids).tolist())
            self.added.append(GENERIC)
        return slot

    def _draw_dropped(self, d: int, micro: int) -> None:
        """Choose whether this micro-batch reads one of its fields through the generic slot (seeded by step and rank)."""
        import random

        self.dropped = None
        if self.generic is None:
            return
        rng = random.Random(f"{self.cfg.seed}:{self.step}:{micro}:{self.env.rank}")
        if rng.random() < self.cfg.field_dropout:
            self.dropped = (d, rng.randrange(len(self.field_ids[d])))

    def _ids(self, d: int) -> torch.Tensor:
        """The registry indices dataset `d` is read with: its own, or one of them the generic slot's."""
        ids = self.field_ids[d]
        if self.dropped is not None and self.dropped[0] == d:
            ids = ids.clone()
            ids[self.dropped[1]] = self.generic
        return ids.to(self.env.device)

    def _every_frame(self) -> bool:
        """Whether the loss covers the prediction after every context frame (models causal in time)."""
        want = self.cfg.model.every_frame
        if want and not self.raw.predicts_every_frame:
            raise TrainConfigError(
                f"model.every_frame=true needs a model causal in time (Walrus); this {self.raw.family} model predicts "
                "only after the last frame. Set model.every_frame to null or false."
            )
        on = self.raw.predicts_every_frame if want is None else bool(want)
        return on and self.cfg.rollout.steps == 1

    def _freeze(self) -> None:
        from physviz.model.surgery import freeze

        freeze(self.raw, self.cfg.finetune.freeze)
        dims = {len([s for s in src.info.spatial if s > 1]) for src in self.sources}
        for p in self.raw.idle_parameters(dims):  # a weight set no dataset reaches gets no gradient
            p.requires_grad = False

    def _build_optimizer(self) -> torch.optim.Optimizer:
        o = self.cfg.optimizer
        scale = float(self.cfg.finetune.blocks_lr_scale)
        in_blocks = {id(p) for p in self.raw.processor_parameters()}
        buckets: dict[tuple[bool, bool], list[Any]] = {}
        for _name, p in self.model.named_parameters():
            if p.requires_grad:  # DDP and FSDP2 (sharding in place) share the raw model's parameters
                buckets.setdefault((p.dim() > 1, scale != 1.0 and id(p) in in_blocks), []).append(p)
        if not buckets:
            raise TrainConfigError("No parameter is left to train; choose another finetune.freeze preset.")
        groups = [{"params": ps, "weight_decay": o.weight_decay if decay else 0.0, "lr": o.lr * (scale if blocks else 1.0)}
                  for (decay, blocks), ps in sorted(buckets.items(), key=lambda kv: (not kv[0][0], kv[0][1]))]
        kwargs: dict[str, Any] = {}
        if self.env.device.type == "cuda" and self.mode != "fsdp2":
            kwargs["fused"] = True
        return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, **kwargs)

    def _lr_factor(self, step: int) -> float:
        """Multiplier of the peak lr at optimizer step `step` (0-based): linear warm-up, then cosine or constant."""
        o = self.cfg.optimizer
        if o.warmup_steps and step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "constant":
            return 1.0
        span = max(1, self.cfg.steps - o.warmup_steps)
        progress = min(1.0, (step - o.warmup_steps) / span)
        return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    def _batch_sizes(self) -> list[int]:
        """Per-rank micro-batch size of each dataset from the token budget (or its batch_size)."""
        cfg, world = self.cfg, self.env.world
        out = []
        self.tokens_per_sample = []
        for d, (spec, src) in enumerate(zip(cfg.data, self.sources)):
            tok = src.info.n_steps_input * math.prod(self.raw.token_grid(src.info.spatial, self.bcs[d]))
            self.tokens_per_sample.append(tok)
            n = spec.batch_size if spec.batch_size is not None else max(1, cfg.batch.tokens // tok)
            if cfg.batch.scope == "global":
                n = max(1, n // world)
            out.append(int(n))
        return out

    # -- resume ----------------------------------------------------------------------------
    def _find_checkpoint(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Rank 0: the checkpoint to resume from and its metadata, (None, None) to start fresh; ResumeError to refuse."""
        cfg = self.cfg
        listed = ck.list_checkpoints(self.out)
        if cfg.resume != "auto":
            return None, None
        found = ck.find_resumable(self.out)
        names = "; ".join(f"{p.name} ({why})" for p, why in found.unreadable)
        kept = "Nothing was changed: final.safetensors, metrics.jsonl and config.yaml are kept"
        if found.state is None or found.path is None:
            if listed:
                raise ck.ResumeError(
                    f"Every checkpoint in {str(ck.checkpoint_dir(self.out))!r} is unreadable: {names}. {kept}. "
                    "Restore a checkpoint to resume, or train in a new output_dir (resume: never starts over here "
                    "and replaces them)."
                )
            if (self.out / "final.safetensors").exists():
                raise ck.ResumeError(
                    f"output_dir {str(self.out)!r} holds the final.safetensors of an earlier run but no checkpoint in "
                    f"checkpoints/ to resume it from. {kept}. Train in a new output_dir (with "
                    "model.init_from=<that final.safetensors> to continue from its weights), or set resume: never "
                    "to start over here."
                )
            return None, None
        path, state = found.path, found.state
        if found.unreadable:
            msg = f"Skipped unreadable checkpoint(s) {names}; resuming from {path.name}."
            warnings.warn(msg, UserWarning, stacklevel=2)
        saved = state.get("train_config")
        if saved is None:
            saved = self._saved_config(path)
        changes = changed_settings(saved, cfg.to_dict())
        if changes:
            raise ck.ResumeError(
                f"This run's config differs from the one {str(path)!r} was trained with: {'; '.join(changes)}. "
                f"Resuming would go on with the checkpoint's settings, so nothing was changed. Keep those settings "
                f"to resume; to train with the new ones from these weights, use a new output_dir with "
                f"model.init_from={str(self.out / 'final.safetensors')!r} (or resume: never to start over here)."
            )
        step = int(state["step"])
        if step > cfg.steps:
            raise ck.ResumeError(
                f"steps={cfg.steps} is below step {step} of the checkpoint {str(path)!r}; raise steps to at least "
                f"{step} to resume, or train in a new output_dir (resume: never starts over here)."
            )
        meta = {k: v for k, v in state.items() if k not in ("model", "optimizer")}
        meta["path"] = str(path)
        return state, meta

    def _saved_config(self, checkpoint: Path) -> dict[str, Any]:
        """The settings of a checkpoint that does not store them: the run's config.yaml."""
        path = self.out / "config.yaml"
        try:
            return TrainConfig.from_yaml(path).to_dict()
        except PhysvizError as exc:
            raise ck.ResumeError(
                f"The checkpoint {str(checkpoint)!r} does not record its settings and {str(path)!r} cannot be read "
                f"({exc}); restore config.yaml to resume, or train in a new output_dir."
            ) from None

    def _resume(self) -> None:
        env = self.env
        state: dict[str, Any] | None = None
        meta: dict[str, Any] | None = None
        if env.is_main:
            try:
                state, meta = self._find_checkpoint()
            except ck.ResumeError as exc:
                meta = {"error": str(exc)}
        meta = broadcast_object(meta, env)
        if meta is None:
            return
        if "error" in meta:
            raise ck.ResumeError(meta["error"])
        stored = meta.get("model_config") or {}
        # Settings a checkpoint stores beyond today's ModelConfig (run-time knobs) do not shape the model.
        same_model = all(k in stored and stored[k] == v for k, v in self.raw.config.to_dict().items())
        if not same_model or meta.get("registry") != self.raw.registry.to_dict():
            raise ck.ResumeError(
                f"The checkpoint {meta['path']} was written for a different model or field set; "
                "use resume: never or a new output_dir."
            )
        ck.load_full_state(self.model, self.optimizer, state["model"] if state else {}, state["optimizer"] if state else {}, env)
        self.scheduler.load_state_dict(meta["scheduler"])
        self.sampler.load_state_dict(meta["sampler"])
        rngs = meta.get("rng") or []
        if len(rngs) == env.world:
            ck.set_rng_state(rngs[env.rank], env)
        else:
            torch.manual_seed(self.cfg.seed * 7919 + 104729 * env.rank + int(meta["step"]))
        self.step = self.resumed_from = int(meta["step"])
        self.es.update(meta.get("early_stopping") or {})

    def _save(self) -> None:
        """Write a resume checkpoint of the current step (collective; rank 0 writes)."""
        env = self.env
        model_sd, optim_sd = ck.full_state(self.model, self.optimizer)
        rngs = gather_objects(ck.rng_state(env), env)
        if env.is_main:
            state = {
                "step": self.step,
                "model": model_sd,
                "optimizer": optim_sd,
                "scheduler": self.scheduler.state_dict(),
                "sampler": self.sampler.state_after(self.last_micro),
                "rng": rngs,
                "world": env.world,
                "model_config": self.raw.config.to_dict(),
                "registry": self.raw.registry.to_dict(),
                "parallel": self.mode,
                "train_config": self.cfg.to_dict(),
                "early_stopping": dict(self.es),
            }
            ck.save(ck.step_path(self.out, self.step), state)
            ck.prune(self.out, self.cfg.keep_checkpoints, upto=self.step)
        self._last_full = model_sd
        barrier(env)

    # -- one step ------------------------------------------------------------------------------
    def _autocast(self) -> Any:
        if self.cfg.precision == "bf16":
            return torch.autocast(self.env.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _scale(self, d: int) -> torch.Tensor | None:
        std = self.sources[d].info.std
        if self.cfg.loss == "nmse" or self.cfg.normalize != "stats" or not std:
            return None
        return torch.tensor(std, dtype=torch.float32, device=self.env.device)

    def _forward(self, d: int, x: torch.Tensor, autocast: bool = True, every_frame: bool = False) -> torch.Tensor:
        with self._autocast() if autocast else nullcontext():
            if every_frame:
                return self.model(x, self._ids(d), self.bcs[d], every_frame=True)
            return self.model(x, self._ids(d), self.bcs[d])

    def _loss(self, d: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Training loss of one micro-batch: next-frame, or over a rollout when y holds several frames (B, K, C, *S)."""
        cfg = self.cfg
        if y.dim() == x.dim() - 1 and self.every_frame:
            # one pass predicts frames 1..T; the loss averages all of them
            pred = self._forward(d, x, every_frame=True).float()
            target = torch.cat([x[:, 1:], y[:, None]], dim=1)
            return loss_fn(pred.flatten(0, 1), target.flatten(0, 1), cfg.loss, self._scale(d))
        if y.dim() == x.dim() - 1:
            return loss_fn(self._forward(d, x).float(), y, cfg.loss, self._scale(d))
        return rollout_loss(lambda ctx: self._forward(d, ctx), x, y, cfg.loss, self._scale(d), cfg.rollout.gradient)

    # -- validation ------------------------------------------------------------------------
    def _validate(self) -> dict[str, Any] | None:
        """One-step VRMSE and loss per dataset on its validation windows (collective)."""
        from physviz.train.sources import checked_window

        env = self.env
        todo = [(d, v) for d, v in enumerate(self.valid) if v is not None]
        if not todo:
            return None
        self.model.eval()
        sums = torch.zeros(len(self.sources), 3, dtype=torch.float64, device=env.device)
        with torch.no_grad():
            for d, src in todo:
                b = self.per_rank[d]
                n = len(src)
                total = min(n, self.cfg.valid_batches * b * env.world)
                picks = np.unique(np.linspace(0, n - 1, total).round().astype(np.int64))
                total = len(picks)
                per_round = b * env.world
                rounds = -(-total // per_round)
                for j in range(rounds):
                    pos = np.arange(j * per_round + env.rank * b, j * per_round + (env.rank + 1) * b)
                    mask = torch.tensor(pos < total, dtype=torch.float64, device=env.device)
                    idx = picks[np.minimum(pos, total - 1)]
                    xs, ys = zip(*(checked_window(src, int(i)) for i in idx))
                    x = torch.from_numpy(np.stack(xs)).to(env.device)
                    y = torch.from_numpy(np.stack(ys)).to(env.device)
                    # fp32: the model's in-place inference kernels do not run under autocast
                    pred = self._forward(d, x, autocast=False).float()
                    v = vrmse(pred, y).double()
                    per = torch.stack([loss_fn(pred[k:k + 1], y[k:k + 1], self.cfg.loss, self._scale(d))
                                       for k in range(len(idx))]).double()
                    sums[d, 0] += (v * mask).sum()
                    sums[d, 1] += (per * mask).sum()
                    sums[d, 2] += mask.sum()
        all_reduce_sum(sums, env)
        self.model.train()
        out = {self.names[d]: float(sums[d, 0] / sums[d, 2]) for d, _ in todo if sums[d, 2] > 0}
        losses = [float(sums[d, 1] / sums[d, 2]) for d, _ in todo if sums[d, 2] > 0]
        return {"kind": "valid", "step": self.step, "vrmse": out, "loss": float(np.mean(losses)) if losses else None}

    # -- main ----------------------------------------------------------------------------------
    def run(self) -> RunResult:
        cfg, env = self.cfg, self.env
        self._resume()
        if env.is_main:
            if self.resumed_from == 0:  # a fresh start: an earlier run's final.safetensors stays until replaced
                for _s, p in ck.list_checkpoints(self.out):
                    p.unlink(missing_ok=True)
            with writing(self.out / "config.yaml", "config"):
                cfg.to_yaml(self.out / "config.yaml")
        if self.resumed_from == 0:
            torch.manual_seed(cfg.seed * 7919 + 104729 * env.rank + 1)
        writer = MetricsWriter(self.out / METRICS_FILE, env.is_main, truncate=self.resumed_from == 0,
                               resume_step=self.resumed_from)
        try:
            self._banner()
            self._train(writer)
            return self._finish(writer)
        finally:
            writer.close()

    def _threads(self) -> str:
        """' (N CPU threads)' on a CPU device, where the thread count sets the speed; '' otherwise."""
        n = torch.get_num_threads()
        return f" ({n} CPU thread{'s' if n > 1 else ''})" if self.env.device.type == "cpu" else ""

    def _banner(self) -> None:
        if not self.env.is_main:
            return
        n = sum(p.numel() for p in self.raw.parameters())
        trained = sum(p.numel() for p in self.raw.parameters() if p.requires_grad)
        parts = [f"{name}: {len(s)} windows, {b}/rank x {self.env.world}, {t} tokens/sample"
                 for name, s, b, t in zip(self.names, self.sources, self.per_rank, self.tokens_per_sample)]
        msg = (f"physviz.train: {n / 1e6:.2f}M parameters ({trained / 1e6:.2f}M trained), {self.mode} x {self.env.world} "
               f"on {self.env.device}{self._threads()}; " + "; ".join(parts))
        if self.added:
            msg += f"; new fields {self.added}"
        if self.from_generic:
            msg += f"; started from the generic slot {self.from_generic}"
        if self.cfg.rollout.steps > 1:
            msg += f"; rollout training over {self.cfg.rollout.steps} frames (gradient: {self.cfg.rollout.gradient})"
        if self.resumed_from:
            msg += f"; resumed at step {self.resumed_from}"
        print(msg, file=sys.stderr, flush=True)

    def _train(self, writer: MetricsWriter) -> None:
        cfg, env = self.cfg, self.env
        from tqdm.auto import tqdm

        from physviz.train.data import make_loader

        self.last_micro = self.sampler.micro - 1
        if self.step >= cfg.steps or self.es["stopped"]:
            return
        loader = make_loader(self.sources, self.sampler, cfg.num_workers, env.device.type == "cuda")
        it = iter(loader)
        accum = cfg.batch.accumulate
        n_d = len(self.sources)
        stats = torch.zeros(2 * n_d, dtype=torch.float64, device=env.device)
        samples = tokens = 0
        t_last = time.perf_counter()
        params = [p for p in self.model.parameters() if p.requires_grad]
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not (env.is_main and cfg.progress), file=sys.stderr,
                   desc="train", unit="step", dynamic_ncols=True, mininterval=0.5)
        crash_at = int(os.environ.get(CRASH_ENV, "0") or 0)
        crash_rank = int(os.environ.get(CRASH_RANK_ENV, str(env.world - 1)))
        try:
            while self.step < cfg.steps:
                for a in range(accum):
                    d, m, x, y = next(it)
                    x = x.to(env.device, non_blocking=True)
                    y = y.to(env.device, non_blocking=True)
                    self._draw_dropped(d, a)
                    with grad_sync(self.model, self.mode, sync=a == accum - 1):
                        loss = self._loss(d, x, y)
                        (loss / accum).backward()
                    self.dropped = None
                    stats[d] += loss.detach().double()
                    stats[n_d + d] += 1
                    self.last_micro = m
                    samples += self.per_rank[d] * env.world
                    tokens += self.per_rank[d] * env.world * self.tokens_per_sample[d]
                if cfg.optimizer.clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, cfg.optimizer.clip)
                lr = self.optimizer.param_groups[0]["lr"]
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    all_reduce_sum(stats, env)
                    sums, counts = stats[:n_d].tolist(), stats[n_d:].tolist()
                    total = sum(sums) / max(1.0, sum(counts))
                    now = time.perf_counter()
                    dt = max(now - t_last, 1e-9)
                    record = {
                        "kind": "train", "step": self.step,
                        "epoch": self.sampler.epoch(self.sampler.state_after(self.last_micro)["cursors"]),
                        "loss": _finite(total),
                        "loss_per_dataset": {self.names[i]: _finite(sums[i] / counts[i]) for i in range(n_d) if counts[i]},
                        "lr": float(lr), "samples_per_s": samples / dt, "tokens_per_s": tokens / dt,
                        "peak_memory_mb": _peak_memory_mb(env),
                    }
                    writer.write(record)
                    if not math.isfinite(total):
                        raise PhysvizError(
                            f"The training loss became {total} at step {self.step}; lower optimizer.lr, keep "
                            "optimizer.clip on, or use precision fp32 (run stopped; the last checkpoint is kept)."
                        )
                    bar.set_postfix(loss=f"{total:.4g}", refresh=False)
                    stats.zero_()
                    samples = tokens = 0
                    t_last = time.perf_counter()
                if cfg.valid_every and self.step % cfg.valid_every == 0 and self.step < cfg.steps:
                    rec = self._validate()
                    if rec is not None:
                        writer.write(rec)
                        self._early_stop(rec)
                    t_last = time.perf_counter()
                    if self.es["stopped"]:
                        break
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.step < cfg.steps:
                    self._save()
                    t_last = time.perf_counter()
                if crash_at and self.step == crash_at and env.rank == crash_rank:
                    marker = self.out / f".test_crash_{crash_at}"
                    if not marker.exists():
                        marker.write_text(str(os.getpid()))
                        os.kill(os.getpid(), signal.SIGKILL)
        finally:
            bar.close()
            del it

    # -- early stopping ------------------------------------------------------------------------
    def _early_stop(self, rec: dict[str, Any]) -> None:
        """Score a validation record; keep the weights when it improves, stop after `patience` that do not (collective)."""
        es, cfg = self.es, self.cfg.early_stopping
        if not cfg.patience or not rec.get("vrmse"):
            return
        score = float(np.mean(list(rec["vrmse"].values())))
        if es["best"] is None or score < es["best"] * (1 - cfg.min_rel_delta) - cfg.min_delta:
            es.update(best=score, best_step=self.step, bad=0)
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            sd = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
            if self.env.is_main:
                self._best_sd = {k: v.detach().cpu().clone() for k, v in sd.items()}
                ck.save(self.out / BEST_FILE, {"step": self.step, "score": score, "model": self._best_sd})
        else:
            es["bad"] += 1
            es["stopped"] = es["bad"] >= cfg.patience

    def _best_weights(self) -> dict[str, Any] | None:
        """Rank 0: the best validation weights of an early-stopping run (None when off or never validated)."""
        if not self.cfg.early_stopping.patience or self.es["best"] is None:
            return None
        if self._best_sd is None:  # resumed: the weights kept on disk
            self._best_sd = torch.load(self.out / BEST_FILE, map_location="cpu", weights_only=True)["model"]
        return self._best_sd

    def _finish(self, writer: MetricsWriter) -> RunResult:
        cfg, env = self.cfg, self.env
        rec = self._validate() if not self.es["stopped"] else None
        if rec is not None:
            writer.write(rec)
            self._early_stop(rec)
        self._save()
        final = self.out / "final.safetensors"
        model_out = None
        if env.is_main:
            from physviz.model.checkpoint import save_model
            from physviz.model.registry import GENERIC

            if self.mode == "fsdp2":
                model_out = type(self.raw)(self.raw.config, registry=self.raw.registry.copy())
                model_out.load_state_dict(self._last_full)
            else:
                model_out = unwrap(self.model)
            prev = dict(getattr(model_out, "metadata", {}) or {})
            # the fields whose slots have been trained, over this run and the ones it continues
            trained = sorted({*self.trained_fields, *self.start_trained} | ({GENERIC} if self.generic is not None else set()))
            meta = {"trained_steps": self.step, "datasets": self.names, "train_config": cfg.to_dict(),
                    "added_fields": self.added, "trained_fields": trained}
            if self.from_generic:
                meta["started_from_generic"] = self.from_generic
            best = self._best_weights()
            if best is not None:  # the final model is the best validation one
                model_out.load_state_dict(best)
                meta["early_stopping"] = {"best_step": self.es["best_step"], "best_vrmse": self.es["best"],
                                          "stopped_at": self.step if self.es["stopped"] else None}
            meta["init_from"] = prev.get("path") or prev.get("source") or cfg.model.init_from or ""
            with writing(final, "final model"):
                save_model(model_out, final, metadata=meta)
            model_out.eval()
            done: dict[str, Any] = {"kind": "done", "step": self.step, "checkpoint": "final.safetensors"}
            if best is not None:
                done.update(best_step=self.es["best_step"], best_vrmse=self.es["best"], stopped_early=self.es["stopped"])
            writer.write(done)
        barrier(env)
        losses = [m["loss"] for m in records_of(writer.lines, "train")]
        return RunResult(self.out, final, self.step, losses[-1] if losses else None, self.resumed_from,
                         list(writer.lines), model_out)
