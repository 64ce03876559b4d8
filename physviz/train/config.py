"""The training config: dataclasses, YAML in and out, dotted overrides, validation before any work.

This module imports neither torch nor xarray, so the job launcher can validate a config
on a login node. ``TrainConfig.validate()`` checks every setting, then (``check_data=True``)
that each dataset path exists, holds Well HDF5 files for its split, has the fields asked
for and enough time steps for one window; the first problem raises `TrainConfigError`
with one sentence naming the setting.
"""
from __future__ import annotations

import copy
import math
import os
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from physviz.errors import OptionError

LOSSES = ("nmse", "vmse", "mse", "mae")
NORMALIZE = ("stats", "none")
PRECISIONS = ("fp32", "bf16")
PARALLEL = ("auto", "none", "ddp", "fsdp2")
DEVICES = ("auto", "cpu", "cuda")
RESUME = ("auto", "never")
FREEZE = ("none", "processor", "middle")
REGISTRIES = ("physviz", "mpp")
SCHEDULES = ("cosine", "constant")
SCOPES = ("rank", "global")
ROLLOUT_GRADIENTS = ("last", "all")


class TrainConfigError(OptionError):
    """A training config has an unknown key, a bad value, or names data that is not there."""


@dataclass
class ModelSection:
    """Which model to train: a preset (with overrides) or weights to start from.

    - ``preset``: a `ModelConfig` preset ('tiny', 'Ti', 'S', 'B', 'L').
    - ``overrides``: ModelConfig settings changed from the preset; with ``init_from`` only
      runtime options (delta_prediction, jitter, gradient_checkpointing, pad_to_patch, ...).
    - ``init_from``: a physviz ``.safetensors`` file, an MPP checkpoint, or "bundled"; null
      starts from random weights.
    - ``registry``: field registry of a new model ('physviz' or 'mpp').
    """

    preset: str = "tiny"
    overrides: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    registry: str = "physviz"


@dataclass
class DatasetSpec:
    """One training dataset: a Well folder (``data/<split>/*.hdf5``), a folder of files, or one file.

    - ``fields``: channels to train on (e.g. ``velocity_x``); null takes every field.
    - ``weight``: relative probability that a micro-batch comes from this dataset.
    - ``n_steps_input``: context frames per window (null: the config's ``n_steps_input``).
    - ``dt_stride``: frames between consecutive window frames.
    - ``batch_size``: samples per micro-batch, overriding the token budget (same scope as ``batch.scope``).
    - ``family``: registry family for the field lookup (MPP registries), null to infer.
    """

    path: str
    name: str | None = None
    weight: float = 1.0
    fields: list[str] | None = None
    n_steps_input: int | None = None
    split: str = "train"
    valid_split: str | None = "valid"
    dt_stride: int = 1
    batch_size: int | None = None
    family: str | None = None


@dataclass
class BatchSection:
    """Micro-batch sizing: a token budget per micro-batch (Walrus), split per dataset.

    Each dataset gets ``max(1, tokens // tokens_per_sample)`` samples, so 2D and 3D
    or small and large grids fill a micro-batch equally. ``scope: rank`` gives every rank
    that budget (global batch grows with the world size); ``scope: global`` splits it over
    ranks (the global batch stays the same, as in MPP). ``accumulate`` micro-batches make
    one optimizer step.
    """

    tokens: int = 4096
    scope: str = "rank"
    accumulate: int = 1


@dataclass
class OptimizerSection:
    """AdamW with linear warm-up then cosine decay (or constant), clipping by global norm.

    Weight decay skips parameters with at most one dimension (MPP's ``add_weight_decay``).
    ``clip`` 0 disables clipping.
    """

    lr: float = 5e-4
    weight_decay: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup_steps: int = 0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    clip: float = 1.0


@dataclass
class FinetuneSection:
    """Fine-tuning: which parameters train, and whether unknown fields get new embedding slots.

    ``freeze``: 'none' trains everything, 'processor' freezes the space-time blocks (embedding,
    stem and decoder train), 'middle' trains only the field embedding and decoder head (MPP's
    ``freeze_middle``). ``blocks_lr_scale`` multiplies the learning rate of the space-time
    blocks (discriminative fine-tuning: below 1 the pretrained processor moves less than the
    embedding, decoder and refiner, which must learn the new fields); 1 trains all at one rate.
    ``reset_refiner`` replaces a pretrained full-resolution refiner by a fresh zero-initialised
    one before training (its local corrections were learnt on the pretraining systems).
    ``fresh_fraction`` moves every pretrained weight that fraction of the way to a fresh init
    drawn from ``seed`` before training (0 keeps the pretrained model; a softened warm start,
    as Ash & Adams' shrink-and-perturb). ``init_fields`` maps a field of the data to a field the
    model was trained on, e.g. ``{density: height}``: the first starts with the second's embedding,
    decoder and refiner weights (before ``fresh_fraction`` is applied).
    """

    freeze: str = "none"
    blocks_lr_scale: float = 1.0
    reset_refiner: bool = False
    fresh_fraction: float = 0.0
    init_fields: dict[str, str] = field(default_factory=dict)
    append_fields: bool = True


@dataclass
class RolloutSection:
    """Rollout training: each window predicts ``steps`` frames, feeding the model its own output.

    ``steps`` 1 is plain next-frame training. With more, the model rolls out from the window's
    context and the loss compares its frames with the truth, so it learns from the inputs it
    will meet in an autoregressive rollout (its own slightly wrong frames) instead of only
    perfect ones. ``gradient``: 'last' is the pushforward trick (Brandstetter et al. 2022):
    the first ``steps - 1`` frames run without gradient and the loss is on the last, so a step
    costs ``steps - 1`` extra forward passes and no extra memory; 'all' back-propagates
    through the whole rollout and averages the loss over its frames (memory grows with ``steps``;
    lower ``batch.tokens``). Validation stays one-step.
    """

    steps: int = 1
    gradient: str = "last"


@dataclass
class TrainConfig:
    """Everything one training run needs; ``python -m physviz.train CONFIG.yaml`` runs it."""

    output_dir: str
    data: list[DatasetSpec]
    model: ModelSection = field(default_factory=ModelSection)
    steps: int = 100
    n_steps_input: int = 4
    batch: BatchSection = field(default_factory=BatchSection)
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    loss: str = "vmse"
    normalize: str = "stats"
    precision: str = "fp32"
    parallel: str = "auto"
    device: str = "auto"
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    resume: str = "auto"
    log_every: int = 1
    valid_every: int = 0
    valid_batches: int = 2
    seed: int = 0
    num_workers: int = 0
    progress: bool = True
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    rollout: RolloutSection = field(default_factory=RolloutSection)

    # -- construction ----------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any) -> "TrainConfig":
        """Build from a plain dict; unknown keys and wrongly typed values raise TrainConfigError."""
        if not isinstance(data, dict):
            raise TrainConfigError(f"A train config must be a mapping of settings, not {type(data).__name__}.")
        return _build(cls, data, "")

    @classmethod
    def from_yaml(cls, text_or_path: str | os.PathLike[str], overrides: list[str] | None = None) -> "TrainConfig":
        """Read YAML text or a .yaml file, apply ``key.sub=value`` overrides, build the config."""
        import yaml

        text = _read(text_or_path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise TrainConfigError(f"The train config is not valid YAML ({first}).") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise TrainConfigError(f"The train config must be a YAML mapping, not {type(data).__name__}.")
        return cls.from_dict(apply_overrides(data, overrides or []))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every setting."""
        return asdict(self)

    def to_yaml(self, path: str | os.PathLike[str] | None = None) -> str:
        """YAML text; also written atomically to `path` if given."""
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            from physviz.fields.atomic import write_text_atomic

            write_text_atomic(path, text)
        return text

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with top-level settings changed (validated for type)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    def resolved(self) -> "TrainConfig":
        """A copy with absolute paths and dataset names filled in."""
        out = copy.deepcopy(self)
        out.output_dir = str(Path(out.output_dir).expanduser().resolve())
        for spec in out.data:
            if not spec.path.startswith("<"):  # "<xarray>": an in-memory source
                spec.path = str(Path(spec.path).expanduser().resolve())
            if spec.n_steps_input is None:
                spec.n_steps_input = out.n_steps_input
        if out.model.init_from and out.model.init_from != "bundled":
            out.model.init_from = str(Path(out.model.init_from).expanduser().resolve())
        names = dataset_names(out)
        for spec, name in zip(out.data, names):
            spec.name = name
        return out

    # -- validation ------------------------------------------------------------
    def validate(self, check_data: bool = True) -> "TrainConfig":
        """Check every setting (and, with check_data, the datasets on disk); raise TrainConfigError."""
        _check_settings(self)
        if check_data:
            from physviz.train.sources import inspect_dataset

            n_dims = _model_dims(self)
            for i, spec in enumerate(self.data):
                info = inspect_dataset(spec, f"data[{i}]", self.n_steps_input, n_out=self.rollout.steps)
                if n_dims is not None and info.n_spatial_dims > n_dims:
                    raise TrainConfigError(
                        f"data[{i}] ({spec.path}) is {info.n_spatial_dims}D but the model is {n_dims}D; "
                        f"set model.overrides.n_spatial_dims={info.n_spatial_dims} or train a separate model."
                    )
        return self


def dataset_names(cfg: TrainConfig) -> list[str]:
    """A unique name per dataset: its ``name``, else the folder (or file) name."""
    names: list[str] = []
    for spec in cfg.data:
        if spec.name:
            base = spec.name
        else:
            p = Path(spec.path)
            base = p.stem if p.suffix in (".hdf5", ".h5") else p.name
        name, k = base, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


# -- overrides -------------------------------------------------------------------
def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML; list items by index) to a copy of data."""
    import yaml

    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise TrainConfigError(f"Override {item!r} must look like key.sub=value (e.g. optimizer.lr=1e-4).")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise TrainConfigError(f"Override {item!r} has an empty key; write it as key.sub=value.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node: Any = out
        parts = key.split(".")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise TrainConfigError(
                        f"Override {item!r}: {where} is not an index of the {len(node)}-item list {'.'.join(parts[:depth])}."
                    )
                idx = int(part)
                if last:
                    node[idx] = value
                else:
                    node = node[idx]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = {}
                    node = node[part]
            else:
                raise TrainConfigError(f"Override {item!r}: {'.'.join(parts[:depth])} is a value, not a section.")
    return out


# -- building dataclasses from dicts ------------------------------------------------
def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass `cls` from `data`, checking keys and types recursively."""
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(map(str, data)) - set(known))
    if unknown:
        label = f"{where}.{unknown[0]}" if where else unknown[0]
        raise TrainConfigError(
            f"Unknown setting {label!r} in the train config; known settings{' of ' + where if where else ''}: "
            f"{', '.join(sorted(known))}."
        )
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        label = f"{where}.{name}" if where else name
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
                raise TrainConfigError(f"The train config needs {label!r}; it is missing.")
            continue
        kwargs[name] = _coerce(hints[name], data[name], label)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, label: str) -> Any:
    """Check (and lightly convert) a value against a type hint."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is not None and type(None) in args:  # Optional[...]
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, label)
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise TrainConfigError(f"Setting {label!r} must be a mapping of settings, not {value!r}.")
        return _build(tp, value, label)
    if origin is list:
        (item_tp,) = args
        if isinstance(value, tuple):
            value = list(value)
        if label in ("data",) and isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise TrainConfigError(f"Setting {label!r} must be a list, not {value!r}.")
        return [_coerce(item_tp, v, f"{label}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise TrainConfigError(f"Setting {label!r} must be a mapping, not {value!r}.")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise TrainConfigError(f"Setting {label!r} must be true or false, not {value!r}.")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TrainConfigError(f"Setting {label!r} must be an integer, not {value!r}.")
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TrainConfigError(f"Setting {label!r} must be a finite number, not {value!r}.")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            raise TrainConfigError(f"Setting {label!r} must be a string, not {value!r}.")
        return value
    return value


# -- checks ----------------------------------------------------------------------------
def _choice(value: str, choices: tuple[str, ...], label: str) -> None:
    if value not in choices:
        raise TrainConfigError(f"Setting {label}={value!r} is not valid; choose one of {', '.join(choices)}.")


def _at_least(value: int | float, low: int | float, label: str) -> None:
    if value < low:
        raise TrainConfigError(f"Setting {label}={value!r} must be at least {low}.")


def _check_settings(cfg: TrainConfig) -> None:
    """Every setting that can be checked without reading data."""
    if not str(cfg.output_dir).strip():
        raise TrainConfigError("Setting 'output_dir' is empty; give the folder the run writes to.")
    out = Path(cfg.output_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise TrainConfigError(f"output_dir {str(out)!r} exists and is not a folder; choose another output_dir.")
    if not cfg.data:
        raise TrainConfigError("Setting 'data' lists no dataset; add at least one {path: ...} entry.")
    _at_least(cfg.steps, 1, "steps")
    _at_least(cfg.n_steps_input, 1, "n_steps_input")
    _at_least(cfg.batch.tokens, 1, "batch.tokens")
    _choice(cfg.batch.scope, SCOPES, "batch.scope")
    _at_least(cfg.batch.accumulate, 1, "batch.accumulate")
    _at_least(cfg.rollout.steps, 1, "rollout.steps")
    if cfg.rollout.steps > 64:
        raise TrainConfigError(f"Setting rollout.steps={cfg.rollout.steps} is more than 64; roll out fewer frames per window.")
    _choice(cfg.rollout.gradient, ROLLOUT_GRADIENTS, "rollout.gradient")
    o = cfg.optimizer
    if o.lr <= 0:
        raise TrainConfigError(f"Setting optimizer.lr={o.lr!r} must be positive.")
    _at_least(o.weight_decay, 0, "optimizer.weight_decay")
    if len(o.betas) != 2 or not all(0 <= b < 1 for b in o.betas):
        raise TrainConfigError(f"Setting optimizer.betas={o.betas!r} must be two numbers in [0, 1).")
    if o.eps <= 0:
        raise TrainConfigError(f"Setting optimizer.eps={o.eps!r} must be positive.")
    _at_least(o.warmup_steps, 0, "optimizer.warmup_steps")
    _choice(o.schedule, SCHEDULES, "optimizer.schedule")
    if not 0 <= o.min_lr_ratio <= 1:
        raise TrainConfigError(f"Setting optimizer.min_lr_ratio={o.min_lr_ratio!r} must lie in [0, 1].")
    _at_least(o.clip, 0, "optimizer.clip")
    _choice(cfg.loss, LOSSES, "loss")
    _choice(cfg.normalize, NORMALIZE, "normalize")
    _choice(cfg.precision, PRECISIONS, "precision")
    _choice(cfg.parallel, PARALLEL, "parallel")
    _choice(cfg.device, DEVICES, "device")
    _choice(cfg.resume, RESUME, "resume")
    _at_least(cfg.checkpoint_every, 0, "checkpoint_every")
    _at_least(cfg.keep_checkpoints, 1, "keep_checkpoints")
    _at_least(cfg.log_every, 1, "log_every")
    _at_least(cfg.valid_every, 0, "valid_every")
    _at_least(cfg.valid_batches, 0, "valid_batches")
    _at_least(cfg.num_workers, 0, "num_workers")
    _choice(cfg.finetune.freeze, FREEZE, "finetune.freeze")
    if not isinstance(cfg.finetune.reset_refiner, bool):
        raise TrainConfigError(f"Setting finetune.reset_refiner={cfg.finetune.reset_refiner!r} must be true or false.")
    frac = cfg.finetune.fresh_fraction
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac <= 1:
        raise TrainConfigError(f"Setting finetune.fresh_fraction={frac!r} must be a number in [0, 1].")
    init = cfg.finetune.init_fields
    if not isinstance(init, dict) or not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in init.items()):
        raise TrainConfigError(f"Setting finetune.init_fields={init!r} must map field names to field names, "
                               "e.g. {density: height}.")
    scale = cfg.finetune.blocks_lr_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 100 or scale != scale:
        raise TrainConfigError(f"Setting finetune.blocks_lr_scale={scale!r} must be a number in (0, 100].")
    _check_model(cfg.model)
    for i, spec in enumerate(cfg.data):
        label = f"data[{i}]"
        if not str(spec.path).strip():
            raise TrainConfigError(f"Setting {label}.path is empty; give a Well dataset folder or HDF5 file.")
        if spec.weight <= 0:
            raise TrainConfigError(f"Setting {label}.weight={spec.weight!r} must be positive.")
        if spec.n_steps_input is not None:
            _at_least(spec.n_steps_input, 1, f"{label}.n_steps_input")
        _at_least(spec.dt_stride, 1, f"{label}.dt_stride")
        if spec.batch_size is not None:
            _at_least(spec.batch_size, 1, f"{label}.batch_size")
        if spec.fields is not None:
            if not spec.fields:
                raise TrainConfigError(f"Setting {label}.fields is an empty list; list channels or use null for all.")
            if len(set(spec.fields)) != len(spec.fields):
                raise TrainConfigError(f"Setting {label}.fields={spec.fields!r} repeats a field.")


def _check_model(m: ModelSection) -> None:
    """Preset, overrides and init_from make sense."""
    from physviz.errors import ParameterError
    from physviz.model.config import ModelConfig

    _choice(m.registry, REGISTRIES, "model.registry")
    if m.init_from is None:
        try:
            mcfg = ModelConfig.preset(m.preset, **m.overrides)
        except (ParameterError, TypeError) as exc:
            raise TrainConfigError(f"model: {exc}") from None
        from physviz.model.registry import MPP_FIELDS, PHYSVIZ_FIELDS

        need = len(PHYSVIZ_FIELDS) if m.registry == "physviz" else 12
        if mcfg.n_states < need:
            raise TrainConfigError(
                f"model.registry={m.registry!r} needs at least {need} field slots but the model has "
                f"n_states={mcfg.n_states}; raise model.overrides.n_states or use registry 'mpp'."
            )
        del MPP_FIELDS
        return
    if m.init_from == "bundled":
        if bundled_checkpoint() is None:
            raise TrainConfigError(
                "model.init_from='bundled' but this install ships no bundled checkpoint yet; "
                "give a .safetensors or MPP checkpoint path instead."
            )
    else:
        path = Path(m.init_from).expanduser()
        if not path.is_file():
            raise TrainConfigError(f"model.init_from {str(path)!r} does not exist (or is not a file); give a checkpoint file.")
    from physviz.model.config import _FIELD_NAMES

    shape_keys = ("embed_dim", "num_heads", "head_dim", "processor_blocks", "n_states", "patch_size", "mlp_ratio",
                  "num_buckets", "n_spatial_dims", "bias_type")
    bad = sorted(k for k in m.overrides if k in shape_keys)
    unknown = sorted(set(m.overrides) - _FIELD_NAMES)
    if unknown:
        raise TrainConfigError(f"model.overrides has unknown setting(s) {unknown}; known: {sorted(_FIELD_NAMES)}.")
    if bad:
        raise TrainConfigError(
            f"model.overrides {bad} are fixed by the weights in model.init_from; only options such as "
            "delta_prediction, jitter, pad_to_patch or gradient_checkpointing can change."
        )


def bundled_checkpoint() -> Path | None:
    """The bundled pretrained checkpoint shipped with physviz, if this install has one (no torch import)."""
    try:
        from physviz.model.pretrained import pretrained_path
    except ImportError:
        return None
    try:
        return pretrained_path("bundled")
    except Exception:  # not made yet / not installed
        return None


def read_safetensors_header(path: Path) -> dict[str, Any] | None:
    """The physviz header of a safetensors file (without torch), or None."""
    import json

    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            size = int.from_bytes(head, "little")
            if len(head) < 8 or size <= 0 or size > 100_000_000:
                return None
            meta = json.loads(fh.read(size)).get("__metadata__", {})
        return json.loads(meta["physviz"]) if "physviz" in meta else None
    except (OSError, ValueError, KeyError):
        return None


def _model_dims(cfg: TrainConfig) -> int | None:
    """The model's number of spatial dims when it can be known without torch."""
    m = cfg.model
    if m.init_from is None:
        from physviz.model.config import ModelConfig

        return ModelConfig.preset(m.preset, **m.overrides).n_spatial_dims
    path = bundled_checkpoint() if m.init_from == "bundled" else Path(m.init_from).expanduser()
    if path is None:
        return None
    header = read_safetensors_header(path)
    if header and isinstance(header.get("config"), dict):
        return int(header["config"].get("n_spatial_dims", 2))
    return 2  # MPP checkpoints are 2D


def _read(text_or_path: str | os.PathLike[str]) -> str:
    """Text of a config file if the argument names one, else the argument itself."""
    if isinstance(text_or_path, Path):
        if not text_or_path.is_file():
            raise TrainConfigError(f"Train config file {str(text_or_path)!r} does not exist.")
        return text_or_path.read_text()
    text = str(text_or_path)
    if "\n" not in text and len(text) < 4096 and Path(text).suffix.lower() in (".yaml", ".yml", ".json"):
        if not Path(text).is_file():
            raise TrainConfigError(f"Train config file {text!r} does not exist.")
        return Path(text).read_text()
    return text
