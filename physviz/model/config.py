"""Model configuration: one typed dataclass (`physviz.typed_config`), named presets, YAML/JSON in and out.

The stem rule: the hMLP stem has three non-overlapping patch convolutions
(kernel = stride) whose strides multiply to the patch size. The last two always
halve the grid and the first takes the rest, so `patch_size` must be a multiple
of 4 and the strides are ``(patch_size // 4, 2, 2)``: 16 -> (4, 2, 2) as in MPP,
8 -> (2, 2, 2), 4 -> (1, 2, 2). The decoder mirrors them: (2, 2, patch_size // 4).

The config holds what a checkpoint stores: the shapes and the behaviour of the weights.
Run-time knobs are not part of it: gradient checkpointing is ``model.gradient_checkpointing``,
and ensembles and jitter seeds are arguments of ``model.predict`` and of the rollouts.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

from physviz.errors import ParameterError
from physviz.typed_config import Config, check_fields, read_text_or_path, setting

RUNTIME_KNOBS = {
    "gradient_checkpointing": "it is a run-time switch: set model.gradient_checkpointing = True "
                              "(in a train config, model.gradient_checkpointing: true)",
    "ensemble": "pass ensemble=K to model.predict(...) or physviz.rollout(...)",
    "jitter_seed": "pass jitter_seed=S to model.predict(...) or physviz.rollout(...)",
}


@dataclass
class ModelConfig(Config):
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
    - ``step_scale``: the unit of the predicted delta. "std": the field's standard deviation
      over the context window. "context" (Walrus): the RMS of the frame-to-frame change in the
      context (plus 1e-3 std), so a slowly evolving field gets small steps; one context
      frame falls back to "std". Needs ``delta_prediction``.
    - ``jitter``: patch jittering: random patch-grid shifts in each training step, and in
      ``model.predict`` when no ``jitter_seed`` is given.
    - ``pad_to_patch``: accept any resolution: pad each axis up to the next patch multiple,
      run, crop back. Periodic axes are padded by wrapping, others by ``pad_mode``
      ("reflect", or "zeros", i.e. the window mean since padding happens after the
      per-sample normalisation).
    - ``norm_floor``: RMSInstanceNorm divides by max(std, norm_floor * rms) + eps instead of
      std + eps (0, MPP's choice, keeps exact parity); with a floor, a frame whose fields are
      all uniform (a pattern that died out) no longer gets amplified by 1/eps into inf/NaN.
    - ``context_frames``: default number of input frames (rollouts).
    - ``refine_width``: channels of the full-resolution refinement of the decoded delta
      (`physviz.model.refine.PixelRefiner`); 0, MPP's architecture, has none.
    - ``refine_step``: the refiner sees the last frame-to-frame change, in the unit of the
      predicted change, in place of the frame before last. With ``step_scale`` "context" that
      input reads the same at any speed, so "go on as the context went" carries over to a
      field far slower than the training data. Needs a refiner.
    """

    config_name: ClassVar[str] = "model config"
    config_error: ClassVar[type[ParameterError]] = ParameterError

    embed_dim: int = setting(192, min=1)
    num_heads: int = setting(3, min=1)
    head_dim: int = setting(64, min=1)
    processor_blocks: int = setting(12, min=1)
    n_states: int = setting(12, min=1)
    patch_size: int = setting(16, min=4)
    mlp_ratio: float = setting(4.0, above=0)
    drop_path: float = setting(0.0, min=0, below=1)
    layer_scale_init: float = setting(1e-6, above=0)
    norm_floor: float = setting(0.0, min=0, below=1)
    bias_type: Literal["rel", "none"] = "rel"
    num_buckets: int = setting(32, min=4)
    max_distance: int = setting(32, min=1)
    periodic_bias: Literal["mpp", "modular"] = "mpp"
    n_spatial_dims: Literal[2, 3] = 2
    delta_prediction: bool = False
    step_scale: Literal["std", "context"] = "std"
    jitter: bool = False
    pad_to_patch: bool = False
    pad_mode: Literal["reflect", "zeros"] = "reflect"
    context_frames: int = setting(16, min=1)
    refine_width: int = setting(0, min=0)
    refine_step: bool = False

    def __post_init__(self) -> None:
        check_fields(self)
        self.validate()

    @classmethod
    def refuse_key(cls, key: str, label: str) -> str:
        """The message for a setting that is not a model config setting (run-time knobs say where they went)."""
        if key in RUNTIME_KNOBS:
            return f"{key!r} is not a model config setting: {RUNTIME_KNOBS[key]}."
        return f"Unknown model config setting {label!r}; known: {', '.join(sorted(SETTINGS))}."

    # -- derived -----------------------------------------------------------
    @property
    def stem_strides(self) -> tuple[int, int, int]:
        """Strides (= kernels) of the three stem stages; their product is the patch size."""
        return (self.patch_size // 4, 2, 2)

    @property
    def mlp_dim(self) -> int:
        """Hidden width of the MLP."""
        return int(self.embed_dim * self.mlp_ratio)

    # -- rules over several settings --------------------------------------------
    def validate(self) -> "ModelConfig":
        """Check the rules that tie settings together (each setting alone is checked on construction)."""

        def bad(name: str, why: str) -> ParameterError:
            return ParameterError(f"Model config {name}={getattr(self, name)!r} is invalid: {why}.")

        if self.embed_dim != self.num_heads * self.head_dim:
            raise ParameterError(
                f"Model config embed_dim={self.embed_dim} must equal num_heads*head_dim "
                f"= {self.num_heads}*{self.head_dim} = {self.num_heads * self.head_dim}; change one of them."
            )
        if self.embed_dim % 4:
            raise bad("embed_dim", "it must be a multiple of 4 (the stem works at embed_dim/4 channels)")
        if self.patch_size % 4:
            raise bad("patch_size", "it must be a multiple of 4 (stem strides are patch_size/4, 2, 2), e.g. 4, 8 or 16")
        if self.mlp_dim < 1:
            raise bad("mlp_ratio", "it must give an MLP of at least one channel (embed_dim * mlp_ratio >= 1)")
        if self.step_scale == "context" and not self.delta_prediction:
            raise bad("step_scale", "'context' scales a predicted change, so it needs delta_prediction=True")
        if self.refine_step and not self.refine_width:
            raise bad("refine_step", "it changes the refiner's input, so it needs refine_width > 0")
        if self.num_buckets % 2:
            raise bad("num_buckets", "it must be an even number of at least 4 (bidirectional T5 buckets)")
        if self.max_distance <= self.num_buckets // 4:
            raise bad("max_distance", f"it must exceed num_buckets/4 = {self.num_buckets // 4}")
        return self

    # -- presets and (de)serialisation ----------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "ModelConfig":
        """A named preset ('tiny', 'Ti', 'S', 'B', 'L'), optionally with overrides."""
        key = _PRESET_ALIASES.get(name.lower(), name)
        if key not in PRESETS:
            raise ParameterError(f"Unknown model preset {name!r}; choose one of {sorted(PRESETS)}.")
        return cls.from_dict({**PRESETS[key], **overrides})

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """JSON text; also written (atomically) to `path` if given."""
        text = json.dumps(self.to_dict(), indent=1, sort_keys=True)
        if path is not None:
            from physviz.fields.atomic import write_text_atomic

            write_text_atomic(path, text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike[str]) -> "ModelConfig":
        """Read a config from JSON text or a .json file."""
        text = read_text_or_path(text_or_path, cls.config_name, ParameterError)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParameterError(f"The model config is not valid JSON ({exc}).") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "ModelConfig":
        """Read a config file, JSON or YAML by its suffix."""
        path = Path(path)
        return cls.from_json(path) if path.suffix.lower() == ".json" else cls.from_yaml(path)


SETTINGS = frozenset(f.name for f in fields(ModelConfig))
# Settings fixed by the weights; the others (options) may be overridden when a checkpoint loads.
WEIGHT_SETTINGS = ("embed_dim", "num_heads", "head_dim", "processor_blocks", "n_states", "patch_size", "mlp_ratio",
                   "num_buckets", "n_spatial_dims", "bias_type")

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
