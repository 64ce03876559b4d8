"""Model configuration: one validated dataclass, named presets, YAML/JSON in and out.

The stem rule: the hMLP stem has three non-overlapping patch convolutions
(kernel = stride) whose strides multiply to the patch size. The last two always
halve the grid and the first takes the rest, so `patch_size` must be a multiple
of 4 and the strides are ``(patch_size // 4, 2, 2)``: 16 -> (4, 2, 2) as in MPP,
8 -> (2, 2, 2), 4 -> (1, 2, 2). The decoder mirrors them: (2, 2, patch_size // 4).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from physviz.errors import ParameterError

BIAS_TYPES = ("rel", "none")
PERIODIC_BIAS = ("mpp", "modular")
PAD_MODES = ("reflect", "zeros")


@dataclass
class ModelConfig:
    """Hyper-parameters and options of the space-time transformer (MPP AViT family).

    - ``embed_dim``, ``num_heads``, ``head_dim``: width; ``embed_dim == num_heads * head_dim``
      (MPP: head_dim 64 for every size).
    - ``processor_blocks``: number of space-time blocks.
    - ``n_states``: field-embedding slots (rows of the field embedding and decoder head).
    - ``patch_size``: tokens are patch_size**ndim points; a multiple of 4 (see the module doc).
    - ``mlp_ratio``: MLP width over embed_dim (4 in MPP).
    - ``drop_path``: stochastic depth, linearly 0 .. drop_path over blocks (training only).
    - ``bias_type``: "rel" (T5 relative position bias, MPP) or "none".
    - ``num_buckets``/``max_distance``: T5 bias buckets (MPP: 32/32, the latter the
      effective static default, not the 128 stored in MPP's module).
    - ``periodic_bias``: how offsets wrap on periodic axes. "mpp" reproduces MPP exactly
      (offsets beyond L//2 are taken modulo L//2 and -L//2; antipodal pairs keep their
      sign), "modular" maps every offset into [-L//2, L//2) so the bias depends only on
      the offset modulo L and the model is exactly equivariant to rolls by whole patches.
    - ``n_spatial_dims``: 2 or 3 (Conv3d-shaped stem/decoder, attention over x, y and z).
    - ``delta_prediction``: output = last input frame + predicted normalised delta * std
      (Walrus); off: output = prediction * std + mean (MPP).
    - ``jitter``: patch jittering in training (random shifts each step); ``jitter_seed``
      and ``ensemble`` are the defaults of ``model.predict``.
    - ``pad_to_patch``: accept any resolution: pad each axis up to the next patch multiple,
      run, crop back. Periodic axes are padded by wrapping, others by ``pad_mode``
      ("reflect", or "zeros", i.e. the window mean since padding happens after the
      per-sample normalisation).
    - ``gradient_checkpointing``: recompute each block in the backward pass.
    - ``norm_floor``: RMSInstanceNorm divides by max(std, norm_floor * rms) + eps instead of
      std + eps (0, MPP's choice, keeps exact parity); with a floor, a frame whose fields are
      all uniform (a pattern that died out) no longer gets amplified by 1/eps into inf/NaN.
    - ``context_frames``: default number of input frames (rollouts).
    - ``refine_width``: channels of the full-resolution refinement of the decoded delta
      (`physviz.model.refine.PixelRefiner`); 0, MPP's architecture, has none.
    """

    embed_dim: int = 192
    num_heads: int = 3
    head_dim: int = 64
    processor_blocks: int = 12
    n_states: int = 12
    patch_size: int = 16
    mlp_ratio: float = 4.0
    drop_path: float = 0.0
    layer_scale_init: float = 1e-6
    norm_floor: float = 0.0
    bias_type: str = "rel"
    num_buckets: int = 32
    max_distance: int = 32
    periodic_bias: str = "mpp"
    n_spatial_dims: int = 2
    delta_prediction: bool = False
    jitter: bool = False
    jitter_seed: int | None = None
    ensemble: int = 1
    pad_to_patch: bool = False
    pad_mode: str = "reflect"
    gradient_checkpointing: bool = False
    context_frames: int = 16
    refine_width: int = 0

    def __post_init__(self) -> None:
        self.validate()

    # -- derived -----------------------------------------------------------
    @property
    def stem_strides(self) -> tuple[int, int, int]:
        """Strides (= kernels) of the three stem stages; their product is the patch size."""
        return (self.patch_size // 4, 2, 2)

    @property
    def mlp_dim(self) -> int:
        """Hidden width of the MLP."""
        return int(self.embed_dim * self.mlp_ratio)

    # -- validation --------------------------------------------------------
    def validate(self) -> "ModelConfig":
        """Check every value; raise ParameterError naming the setting and what to do."""

        def bad(name: str, why: str) -> ParameterError:
            return ParameterError(f"Model config {name}={getattr(self, name)!r} is invalid: {why}.")

        ints = ("embed_dim", "num_heads", "head_dim", "processor_blocks", "n_states", "patch_size",
                "num_buckets", "max_distance", "n_spatial_dims", "ensemble", "context_frames")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad(name, "it must be an integer")
            if value < 1:
                raise bad(name, "it must be at least 1")
        if isinstance(self.refine_width, bool) or not isinstance(self.refine_width, int) or self.refine_width < 0:
            raise bad("refine_width", "it must be a whole number, 0 for no refinement head")
        for name in ("delta_prediction", "jitter", "pad_to_patch", "gradient_checkpointing"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "it must be true or false")
        if self.embed_dim != self.num_heads * self.head_dim:
            raise ParameterError(
                f"Model config embed_dim={self.embed_dim} must equal num_heads*head_dim "
                f"= {self.num_heads}*{self.head_dim} = {self.num_heads * self.head_dim}; change one of them."
            )
        if self.embed_dim % 4:
            raise bad("embed_dim", "it must be a multiple of 4 (the stem works at embed_dim/4 channels)")
        if self.patch_size % 4:
            raise bad("patch_size", "it must be a multiple of 4 (stem strides are patch_size/4, 2, 2), e.g. 4, 8 or 16")
        if self.n_spatial_dims not in (2, 3):
            raise bad("n_spatial_dims", "it must be 2 or 3")
        for name in ("mlp_ratio", "drop_path", "layer_scale_init", "norm_floor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise bad(name, "it must be a finite number")
        if self.mlp_ratio <= 0 or int(self.embed_dim * self.mlp_ratio) < 1:
            raise bad("mlp_ratio", "it must be positive")
        if not 0.0 <= self.drop_path < 1.0:
            raise bad("drop_path", "it must lie in [0, 1)")
        if not 0.0 <= self.norm_floor < 1.0:
            raise bad("norm_floor", "it must lie in [0, 1)")
        if self.layer_scale_init <= 0:
            raise bad("layer_scale_init", "it must be positive")
        if self.bias_type not in BIAS_TYPES:
            raise bad("bias_type", f"choose one of {list(BIAS_TYPES)}")
        if self.periodic_bias not in PERIODIC_BIAS:
            raise bad("periodic_bias", f"choose one of {list(PERIODIC_BIAS)}")
        if self.pad_mode not in PAD_MODES:
            raise bad("pad_mode", f"choose one of {list(PAD_MODES)}")
        if self.num_buckets < 4 or self.num_buckets % 2:
            raise bad("num_buckets", "it must be an even number of at least 4 (bidirectional T5 buckets)")
        if self.max_distance <= self.num_buckets // 4:
            raise bad("max_distance", f"it must exceed num_buckets/4 = {self.num_buckets // 4}")
        if self.jitter_seed is not None and (isinstance(self.jitter_seed, bool) or not isinstance(self.jitter_seed, int)):
            raise bad("jitter_seed", "it must be an integer or null")
        return self

    # -- presets and (de)serialisation ----------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "ModelConfig":
        """A named preset ('tiny', 'Ti', 'S', 'B', 'L'), optionally with overrides."""
        key = _PRESET_ALIASES.get(name.lower(), name)
        if key not in PRESETS:
            raise ParameterError(f"Unknown model preset {name!r}; choose one of {sorted(PRESETS)}.")
        return cls.from_dict({**PRESETS[key], **overrides})

    def replace(self, **changes: Any) -> "ModelConfig":
        """A copy with some settings changed (validated)."""
        unknown = sorted(set(changes) - _FIELD_NAMES)
        if unknown:
            raise ParameterError(f"Unknown model config setting(s) {unknown}; known: {sorted(_FIELD_NAMES)}.")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every setting."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Build from a dict; unknown keys are an error (a typo must not pass silently)."""
        if not isinstance(data, dict):
            raise ParameterError(f"A model config must be a mapping of settings, not {type(data).__name__}.")
        unknown = sorted(set(data) - _FIELD_NAMES)
        if unknown:
            raise ParameterError(f"Unknown model config setting(s) {unknown}; known: {sorted(_FIELD_NAMES)}.")
        data = dict(data)
        for key in ("mlp_ratio", "drop_path", "layer_scale_init", "norm_floor"):
            if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
                data[key] = float(data[key])
        return cls(**data)

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text; also written (atomically) to `path` if given."""
        text = json.dumps(self.to_dict(), indent=1, sort_keys=True)
        if path is not None:
            _write(path, text)
        return text

    def to_yaml(self, path: str | Path | None = None) -> str:
        """YAML text; also written (atomically) to `path` if given."""
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            _write(path, text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> "ModelConfig":
        """Read a config from JSON text or a .json file."""
        text = _read(text_or_path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParameterError(f"The model config is not valid JSON ({exc}).") from None
        return cls.from_dict(data)

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> "ModelConfig":
        """Read a config from YAML text or a .yaml/.yml file."""
        import yaml

        text = _read(text_or_path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ParameterError(f"The model config is not valid YAML ({exc}).") from None
        return cls.from_dict(data or {})

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        """Read a config file, JSON or YAML by its suffix."""
        path = Path(path)
        return cls.from_json(path) if path.suffix.lower() == ".json" else cls.from_yaml(path)


_FIELD_NAMES = {f.name for f in fields(ModelConfig)}

# MPP's released sizes (config/mpp_avit_{ti,s,b,L}_config.yaml); drop_path 0.2 is what
# MPP's AViT actually applies in training (its builder ignores the YAML value).
_MPP = {"n_states": 12, "patch_size": 16, "head_dim": 64, "drop_path": 0.2}
PRESETS: dict[str, dict[str, Any]] = {
    # Small enough to pretrain and test on a laptop CPU.
    "tiny": {"embed_dim": 128, "num_heads": 4, "head_dim": 32, "processor_blocks": 4, "n_states": 24,
             "patch_size": 8, "periodic_bias": "modular", "drop_path": 0.0, "norm_floor": 1e-3},
    "Ti": {**_MPP, "embed_dim": 192, "num_heads": 3, "processor_blocks": 12},
    "S": {**_MPP, "embed_dim": 384, "num_heads": 6, "processor_blocks": 12},
    "B": {**_MPP, "embed_dim": 768, "num_heads": 12, "processor_blocks": 12},
    "L": {**_MPP, "embed_dim": 1024, "num_heads": 16, "processor_blocks": 24},
}
_PRESET_ALIASES = {"tiny": "tiny", "ti": "Ti", "s": "S", "b": "B", "l": "L"}


def _read(text_or_path: str | Path) -> str:
    """Text of a file if the argument names one, else the argument itself."""
    if isinstance(text_or_path, Path):
        if not text_or_path.is_file():
            raise ParameterError(f"Model config file {str(text_or_path)!r} does not exist.")
        return text_or_path.read_text()
    text = str(text_or_path)
    if "\n" not in text and len(text) < 4096:
        candidate = Path(text)
        if candidate.suffix.lower() in (".json", ".yaml", ".yml"):
            if not candidate.is_file():
                raise ParameterError(f"Model config file {text!r} does not exist.")
            return candidate.read_text()
    return text


def _write(path: str | Path, text: str) -> None:
    """Write text atomically."""
    from physviz.fields.atomic import write_text_atomic

    write_text_atomic(path, text)
