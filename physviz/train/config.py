"""The training config: dataclasses on the typed loader, YAML in and out, dotted overrides, checks before any work.

This module imports neither torch nor xarray, so the job launcher can validate a config
on a login node. Loading checks each setting against its type hint and bounds;
``TrainConfig.validate()`` then checks the rules that involve several settings (the model
section) and, with ``check_data=True``, that each dataset path exists, holds Well HDF5
files for its split, has the fields asked for and enough time steps for one window. The
first problem raises `TrainConfigError` with one sentence naming the setting.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from physviz.errors import OptionError
from physviz.typed_config import Config, setting

Loss = Literal["nmse", "vmse", "mse", "mae"]
Normalize = Literal["stats", "none"]
Precision = Literal["fp32", "bf16"]
Parallel = Literal["auto", "none", "ddp", "fsdp2"]
Device = Literal["auto", "cpu", "cuda"]
Resume = Literal["auto", "never"]
Freeze = Literal["none", "processor", "middle"]
Registry = Literal["physviz", "mpp"]
Family = Literal["avit", "walrus"]
Schedule = Literal["cosine", "constant"]
Scope = Literal["rank", "global"]
RolloutGradient = Literal["last", "all"]

MAX_ROLLOUT_STEPS = 64


class TrainConfigError(OptionError):
    """A training config has an unknown key, a bad value, or names data that is not there."""


class _Section(Config):
    """Every section reports problems as the train config."""

    config_name = "train config"
    config_error = TrainConfigError


@dataclass
class ModelSection(_Section):
    """Which model to train: a preset (with overrides) or weights to start from.

    - ``family``: 'avit' (MPP-style AViT) or 'walrus' (`physviz.model.walrus`); a checkpoint
      in ``init_from`` brings its own family.
    - ``preset``: a preset of the family (AViT: 'tiny', 'Ti', 'S', 'B', 'L'; Walrus: 'tiny',
      'small', 'released').
    - ``overrides``: config settings changed from the preset; with ``init_from`` only
      options that leave the weights' shapes alone (delta_prediction, jitter, pad_to_patch, ...).
    - ``init_from``: a physviz ``.safetensors`` file, an MPP checkpoint, a Walrus checkpoint
      (``walrus.pt`` with ``extended_config.yaml`` beside it), "bundled" (the bundled model) or
      "bundled:NAME" (another checkpoint shipped with physviz, e.g. "bundled:gen1"); null starts
      from random weights.
    - ``registry``: field registry of a new AViT ('physviz' or 'mpp'); Walrus uses its field index map.
    - ``gradient_checkpointing``: recompute each block in the backward pass (less memory,
      more compute); a run-time setting of the model, not saved with it.
    - ``every_frame``: a model causal in time (Walrus) predicts the frame after every context
      frame in one pass; train on all of them (the loss averages every frame) instead of only the
      last. null: on for causal models, off otherwise (rollout training uses the last frame).
    """

    preset: str = "tiny"
    overrides: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    registry: Registry = "physviz"
    gradient_checkpointing: bool = False
    family: Family = "avit"
    every_frame: bool | None = None


def _path_given(value: Any, label: str) -> Any:
    if isinstance(value, str) and not value.strip():
        raise TrainConfigError(f"Setting {label} is empty; give a Well dataset folder or HDF5 file.")
    return value


def _field_list(value: Any, label: str) -> Any:
    if isinstance(value, list):
        if not value:
            raise TrainConfigError(f"Setting {label} is an empty list; list channels or use null for all.")
        if all(isinstance(v, str) for v in value) and len(set(value)) != len(value):
            raise TrainConfigError(f"Setting {label}={value!r} repeats a field.")
    return value


@dataclass
class DatasetSpec(_Section):
    """One training dataset: a Well folder (``data/<split>/*.hdf5``), a folder of files, or one file.

    - ``fields``: channels to train on (e.g. ``velocity_x``); null takes every field.
    - ``weight``: relative probability that a micro-batch comes from this dataset.
    - ``n_steps_input``: context frames per window (null: the config's ``n_steps_input``).
    - ``dt_stride``: frames between consecutive window frames.
    - ``batch_size``: samples per micro-batch, overriding the token budget (same scope as ``batch.scope``).
    - ``family``: registry family for the field lookup (MPP registries), null to infer.
    """

    config_hooks = {"path": _path_given, "fields": _field_list}

    path: str
    name: str | None = None
    weight: float = setting(1.0, above=0)
    fields: list[str] | None = None
    n_steps_input: int | None = setting(None, min=1)
    split: str = "train"
    valid_split: str | None = "valid"
    dt_stride: int = setting(1, min=1)
    batch_size: int | None = setting(None, min=1)
    family: str | None = None


@dataclass
class BatchSection(_Section):
    """Micro-batch sizing: a token budget per micro-batch (Walrus), split per dataset.

    Each dataset gets ``max(1, tokens // tokens_per_sample)`` samples, so 2D and 3D
    or small and large grids fill a micro-batch equally. ``scope: rank`` gives every rank
    that budget (global batch grows with the world size); ``scope: global`` splits it over
    ranks (the global batch stays the same, as in MPP). ``accumulate`` micro-batches make
    one optimizer step.
    """

    tokens: int = setting(4096, min=1)
    scope: Scope = "rank"
    accumulate: int = setting(1, min=1)


def _betas(value: Any, label: str) -> Any:
    ok = (isinstance(value, (list, tuple)) and len(value) == 2
          and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in value))
    if not ok:
        raise TrainConfigError(f"Setting {label}={value!r} must be two numbers in [0, 1).")
    return value


@dataclass
class OptimizerSection(_Section):
    """AdamW with linear warm-up then cosine decay (or constant), clipping by global norm.

    Weight decay skips parameters with at most one dimension (MPP's ``add_weight_decay``).
    ``clip`` 0 disables clipping.
    """

    config_hooks = {"betas": _betas}

    lr: float = setting(5e-4, above=0)
    weight_decay: float = setting(1e-3, min=0)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = setting(1e-8, above=0)
    warmup_steps: int = setting(0, min=0)
    schedule: Schedule = "cosine"
    min_lr_ratio: float = setting(0.0, min=0, max=1)
    clip: float = setting(1.0, min=0)


@dataclass
class FinetuneSection(_Section):
    """Fine-tuning: which parameters train, at which rate, and whether unknown fields get new embedding slots.

    ``freeze``: 'none' trains everything, 'processor' freezes the space-time blocks (embedding,
    stem and decoder train), 'middle' trains only the field embedding and decoder head (MPP's
    ``freeze_middle``). ``blocks_lr_scale`` multiplies the learning rate of the space-time
    blocks (discriminative fine-tuning: below 1 the pretrained processor moves less than the
    embedding, decoder and refiner, which must learn the new fields); 1 trains all at one rate.
    ``append_fields``: fields the model's registry does not know get new embedding slots
    (false: an unknown field is an error). ``untrained_from_generic``: when the start model has a
    trained generic slot (``field_dropout``), a field outside its ``trained_fields`` record starts
    as a copy of that slot, the one a rollout reads it through, so the fine-tune begins from the
    model's zero-shot prediction instead of an untrained slot (AViT models).
    """

    freeze: Freeze = "none"
    blocks_lr_scale: float = setting(1.0, above=0, max=100)
    append_fields: bool = True
    untrained_from_generic: bool = True


@dataclass
class RolloutSection(_Section):
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

    steps: int = setting(1, min=1, max=MAX_ROLLOUT_STEPS)
    gradient: RolloutGradient = "last"


@dataclass
class EarlyStoppingSection(_Section):
    """Stop when the validation error stops improving, and keep the best validation weights as the final model.

    Each validation (every ``valid_every`` steps, and at the end) scores the run by its one-step
    VRMSE averaged over the validation datasets. A score below the best so far by more than
    ``min_delta`` plus ``min_rel_delta`` times the best (0.01: by more than 1%) is an improvement:
    the weights are kept (``best.safetensors``). After
    ``patience`` validations without one, training stops; ``steps`` is then the most it may run.
    ``final.safetensors`` holds the best validation weights. ``patience`` 0 turns it off.
    """

    patience: int = setting(0, min=0)
    min_delta: float = setting(0.0, min=0)
    min_rel_delta: float = setting(0.0, min=0, below=1)


def _output_dir(value: Any, label: str) -> Any:
    if isinstance(value, str) and not value.strip():
        raise TrainConfigError(f"Setting {label!r} is empty; give the folder the run writes to.")
    return value


def _data_list(value: Any, label: str) -> Any:
    if isinstance(value, dict):  # one dataset given as a mapping
        value = [value]
    if isinstance(value, (list, tuple)) and not value:
        raise TrainConfigError(f"Setting {label!r} lists no dataset; add at least one {{path: ...}} entry.")
    return value


@dataclass
class TrainConfig(_Section):
    """Everything one training run needs; ``python -m physviz.train CONFIG.yaml`` runs it."""

    config_hooks = {"output_dir": _output_dir, "data": _data_list}

    output_dir: str
    data: list[DatasetSpec]
    model: ModelSection = field(default_factory=ModelSection)
    steps: int = setting(100, min=1)
    n_steps_input: int = setting(4, min=1)
    batch: BatchSection = field(default_factory=BatchSection)
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    loss: Loss = "vmse"
    normalize: Normalize = "stats"
    precision: Precision = "fp32"
    parallel: Parallel = "auto"
    device: Device = "auto"
    checkpoint_every: int = setting(0, min=0)
    keep_checkpoints: int = setting(2, min=1)
    resume: Resume = "auto"
    log_every: int = setting(1, min=1)
    valid_every: int = setting(0, min=0)
    valid_batches: int = setting(2, min=0)
    seed: int = 0
    num_workers: int = setting(0, min=0)
    progress: bool = True
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    rollout: RolloutSection = field(default_factory=RolloutSection)
    early_stopping: EarlyStoppingSection = field(default_factory=EarlyStoppingSection)
    # the share of micro-batches in which one field, drawn at random, is read through the model's
    # generic slot (physviz.model.registry.GENERIC) instead of its own, so that slot learns what
    # fields have in common and a field the model never trained can be predicted through it
    field_dropout: float = setting(0.0, min=0, below=1)

    def resolved(self) -> "TrainConfig":
        """A copy with absolute paths and dataset names filled in."""
        out = copy.deepcopy(self)
        out.output_dir = str(Path(out.output_dir).expanduser().resolve())
        for spec in out.data:
            if not spec.path.startswith("<"):  # "<xarray>": an in-memory source
                spec.path = str(Path(spec.path).expanduser().resolve())
            if spec.n_steps_input is None:
                spec.n_steps_input = out.n_steps_input
        if out.model.init_from and not is_bundled_name(out.model.init_from):
            out.model.init_from = str(Path(out.model.init_from).expanduser().resolve())
        names = dataset_names(out)
        for spec, name in zip(out.data, names):
            spec.name = name
        return out

    def validate(self, check_data: bool = True) -> "TrainConfig":
        """Check the model section and the output folder (and, with check_data, the datasets on disk)."""
        _check_output_dir(Path(self.output_dir).expanduser())
        _check_model(self.model)
        if self.early_stopping.patience and not (self.valid_every and self.valid_batches):
            raise TrainConfigError(
                f"early_stopping.patience={self.early_stopping.patience} needs validations: set valid_every and "
                "valid_batches above 0 (and give the data a valid_split), or set early_stopping.patience to 0."
            )
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


def _check_output_dir(out: Path) -> None:
    """The output folder is a folder, or its nearest existing parent is a folder on storage (a remote path passes)."""
    import os

    if out.exists():
        if not out.is_dir():
            raise TrainConfigError(f"output_dir {str(out)!r} exists and is not a folder; choose another output_dir.")
        return
    parent = out.absolute()
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise TrainConfigError(f"output_dir {str(out)!r} cannot be created: {str(parent)!r} is a file, not a folder.")
    try:
        virtual = os.statvfs(parent).f_blocks == 0  # /proc, /sys: no storage behind them
    except OSError:
        virtual = False
    if virtual:
        raise TrainConfigError(
            f"output_dir {str(out)!r} cannot be created: {str(parent)!r} is a virtual file system (no storage); "
            "choose a folder on a disk."
        )


# Settings a resume may change: where and how the run reports, not what it trains (steps may grow).
RUN_TIME_SETTINGS = frozenset({
    "output_dir", "steps", "device", "parallel", "progress", "log_every", "valid_every", "valid_batches",
    "checkpoint_every", "keep_checkpoints", "resume", "num_workers", "model.gradient_checkpointing",
})


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict/list as {dotted.key: value}."""
    if isinstance(data, dict):
        items = list(data.items())
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        items = [(str(i), v) for i, v in enumerate(data)]
    else:
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in items:
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _skip(key: str) -> bool:
    parts = key.split(".")
    return key in RUN_TIME_SETTINGS or (parts[0] == "data" and parts[-1] == "valid_split")


# Sections added after checkpoints were written without them: such a checkpoint resumes while they keep their defaults.
# (model: family and every_frame came later; their defaults are what older checkpoints trained with)
LATER_SECTIONS: dict[str, type[Config]] = {"early_stopping": EarlyStoppingSection, "model": ModelSection}


def _later_default(key: str, value: Any) -> bool:
    """Whether `key` belongs to a later section and `value` is its default (absent from older checkpoints)."""
    section, _, name = key.partition(".")
    cls = LATER_SECTIONS.get(section)
    return cls is not None and _flat(cls().to_dict()).get(name, object()) == value


def changed_settings(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """'key: old -> new' for each setting that defines the training trajectory and differs (run-time knobs aside)."""
    a, b = _flat(old), _flat(new)
    missing = object()
    out = []
    for key in sorted(set(a) | set(b)):
        if _skip(key):
            continue
        va, vb = a.get(key, missing), b.get(key, missing)
        if va is missing and _later_default(key, vb):
            continue
        if va != vb:
            show = lambda v: "(unset)" if v is missing else repr(v)  # noqa: E731
            out.append(f"{key}: {show(va)} -> {show(vb)}")
    return out


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


# -- the model section -------------------------------------------------------------------
MPP_SLOTS = 12  # FieldRegistry.mpp(): MPP's field embedding has 12 rows


def _check_model(m: ModelSection) -> None:
    """Preset, overrides, registry and init_from fit together."""
    from physviz.errors import ParameterError
    from physviz.model.config import SETTINGS, WEIGHT_SETTINGS, ModelConfig

    if m.family == "walrus":
        _check_walrus(m)
        return
    if m.init_from is None:
        try:
            mcfg = ModelConfig.preset(m.preset, **m.overrides)
        except (ParameterError, TypeError) as exc:
            raise TrainConfigError(f"model: {exc}") from None
        from physviz.model.registry import PHYSVIZ_FIELDS

        need = len(PHYSVIZ_FIELDS) if m.registry == "physviz" else MPP_SLOTS
        if mcfg.n_states < need:
            raise TrainConfigError(
                f"model.registry={m.registry!r} needs at least {need} field slots but the model has "
                f"n_states={mcfg.n_states}; raise model.overrides.n_states or use registry 'mpp'."
            )
        return
    if is_bundled_name(m.init_from):
        if init_checkpoint(m.init_from) is None:
            raise TrainConfigError(
                f"model.init_from={m.init_from!r} but this install ships no such bundled checkpoint "
                f"(bundled: {', '.join(bundled_names())}); give a .safetensors or MPP checkpoint path instead."
            )
    else:
        path = Path(m.init_from).expanduser()
        if not path.is_file():
            raise TrainConfigError(f"model.init_from {str(path)!r} does not exist (or is not a file); give a checkpoint file.")
        problem = checkpoint_file_problem(path)
        if problem:
            raise TrainConfigError(
                f"model.init_from {str(path)!r} is not a model checkpoint ({problem}); give a physviz .safetensors "
                "file or an MPP checkpoint."
            )
    unknown = sorted(set(m.overrides) - SETTINGS)
    if unknown:
        raise TrainConfigError(f"model.overrides has unknown setting(s) {unknown}; known: {sorted(SETTINGS)}.")
    bad = sorted(k for k in m.overrides if k in WEIGHT_SETTINGS)
    if bad:
        raise TrainConfigError(
            f"model.overrides {bad} are fixed by the weights in model.init_from; only options such as "
            "delta_prediction, jitter or pad_to_patch can change."
        )


def _check_walrus(m: ModelSection) -> None:
    """A Walrus model section: a known preset with known settings, or a checkpoint file with run-time options."""
    from dataclasses import fields

    from physviz.errors import ParameterError
    from physviz.model.walrus.config import preset

    if m.registry != "physviz":
        raise TrainConfigError(f"model.registry={m.registry!r} is for AViT models; Walrus uses its own field index map.")
    known = {f.name for f in fields(preset("tiny"))}
    unknown = sorted(set(m.overrides) - known)
    if unknown:
        raise TrainConfigError(f"model.overrides has unknown Walrus setting(s) {unknown}; known: {sorted(known)}.")
    if m.init_from is None:
        try:
            preset(m.preset, **m.overrides)
        except (ParameterError, TypeError) as exc:
            raise TrainConfigError(f"model: {exc}") from None
        return
    if is_bundled_name(m.init_from):
        raise TrainConfigError(f"model.init_from={m.init_from!r} is a bundled AViT; give a Walrus checkpoint or set family: avit.")
    path = Path(m.init_from).expanduser()
    if not path.is_file():
        raise TrainConfigError(f"model.init_from {str(path)!r} does not exist (or is not a file); give a Walrus "
                               "checkpoint (walrus.pt with extended_config.yaml beside it, or a physviz .safetensors).")
    problem = checkpoint_file_problem(path)
    if problem:
        raise TrainConfigError(f"model.init_from {str(path)!r} is not a model checkpoint ({problem}).")


def is_bundled_name(init_from: str) -> bool:
    """Whether an init_from names a checkpoint shipped with physviz ("bundled" or "bundled:NAME")."""
    return init_from == "bundled" or init_from.startswith("bundled:")


def bundled_names() -> list[str]:
    """The init_from names of the checkpoints shipped with physviz."""
    from physviz.model.pretrained import BUNDLED

    return [n if n == "bundled" else f"bundled:{n}" for n in BUNDLED]


def bundled_checkpoint(name: str = "bundled") -> Path | None:
    """A pretrained checkpoint shipped with physviz, if this install has it (no torch import)."""
    try:
        from physviz.model.pretrained import pretrained_path
    except ImportError:
        return None
    try:
        return pretrained_path(name)
    except Exception:  # not made yet / not installed / unknown name
        return None


def init_checkpoint(init_from: str) -> Path | None:
    """The file an init_from names: a bundled checkpoint by name (None if not shipped) or a path."""
    if is_bundled_name(init_from):
        return bundled_checkpoint(init_from.partition(":")[2] or "bundled")
    return Path(init_from).expanduser()


def checkpoint_file_problem(path: Path) -> str | None:
    """Why a file cannot be a model checkpoint from its first bytes (None if it can): safetensors or torch.save."""
    import json
    import zipfile

    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(9)
            if len(head) == 9 and head[8:9] == b"{":
                n = int.from_bytes(head[:8], "little")
                if not 0 < n <= size - 8:
                    return f"its safetensors header says {n} bytes but the file holds {size}"
                fh.seek(8)
                json.loads(fh.read(n))
                return None
        if zipfile.is_zipfile(path):
            return None  # torch.save's format (an MPP checkpoint)
        if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
            return None  # a legacy pickled torch checkpoint
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    except ValueError:
        return "its safetensors header is damaged"
    if size == 0:
        return "the file is empty"
    return "neither a safetensors file nor a torch checkpoint"


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
    if m.family == "walrus":
        return 3  # 2D fields run as 3D with a length-1 axis
    if m.init_from is None:
        from physviz.model.config import ModelConfig

        return ModelConfig.preset(m.preset, **m.overrides).n_spatial_dims
    path = init_checkpoint(m.init_from)
    if path is None:
        return None
    header = read_safetensors_header(path)
    if header and header.get("family") == "walrus":
        return 3
    if header and isinstance(header.get("config"), dict):
        return int(header["config"].get("n_spatial_dims", 2))
    return 2  # MPP checkpoints are 2D

