"""Walrus's configuration: one typed dataclass, the released sizes, presets, and the reader of Walrus's own config files.

`WalrusConfig` holds what the weights and the forward depend on. ``RELEASED`` is the
configuration of the released checkpoint (Hugging Face ``polymathic-ai/walrus``,
``extended_config.yaml``): hidden 1408, 40 blocks, 16 heads, intermediate 352, 67 field
slots, base kernels (8, 4) per axis, causal in time, patch jitter with the periodic fixed
jitterer. `from_reference` reads the ``model`` section of a Walrus config (the Hydra
``extended_config.yaml``, or the parity fixture's ``config.json``) into a `WalrusConfig`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from physviz.errors import ParameterError
from physviz.typed_config import Config, setting

KERNEL = [[8, 4], [8, 4], [8, 4]]
KERNEL_SCALES = [[2, 2], [4, 2], [4, 4], [8, 4]]


@dataclass
class WalrusConfig(Config):
    """Hyper-parameters and options of the Walrus space-time transformer.

    - ``hidden_dim``, ``num_heads`` (space attention), ``time_heads`` (time attention): width and heads.
    - ``intermediate_dim``: channels between the two strided convolutions of encoder and decoder.
    - ``mlp_dim``: SwiGLU input width of the fused feed-forward (0: 4 * hidden_dim).
    - ``processor_blocks``: number of space-time blocks; ``n_states``: field slots (3 are the
      boundary-flag channels: 0 closed boundary, 1 open boundary, 2 bias correction).
    - ``groups``: group count of the RMS group norms (stored for the checkpoint's config;
      the norm is per channel over space, so it does not change the result).
    - ``projection_dim``: stored for the checkpoint's config (the jitterer it sizes has no weights).
    - ``base_kernel``: (first, second) kernel per axis of the encoder (the decoder mirrors it).
    - ``kernel_scales_seq``: the stride pairs of Walrus's random-stride training (kept for the config).
    - ``include_d``: which weight sets exist (2: 2D fields, 3: 3D fields).
    - ``causal_in_time``: one prediction after every input frame (else only after the last).
    - ``causal_mask``: mask future frames in time attention (-inf above the diagonal); the
      least certain detail of the reference, so it can be switched off.
    - ``num_buckets``/``max_distance``: T5 relative-position buckets of the time attention.
    - ``jitter``: Walrus's patch jitter (the periodic fixed jitterer): random rolls of the
      padded input and of the token grid on periodic axes.
    - ``drop_path``: stochastic depth, linearly 0 .. drop_path over blocks (training only).
    - ``input_field_drop``: probability of dropping a whole input field (training only).
    - ``extra_dims``: boundary-flag channels appended to the fields (3).
    - ``context_frames``: default number of input frames (6, as Walrus trains 2D data).
    - ``min_axis_points``: fewest points an axis longer than 1 may have (smaller is refused).
    - ``tokens_2d``/``tokens_3d``: target tokens per axis of the stride choice.
    """

    config_name: ClassVar[str] = "Walrus config"
    config_error: ClassVar[type[ParameterError]] = ParameterError

    hidden_dim: int = setting(1408, min=1)
    intermediate_dim: int = setting(352, min=1)
    projection_dim: int = setting(48, min=1)
    processor_blocks: int = setting(40, min=1)
    num_heads: int = setting(16, min=1)
    time_heads: int = setting(16, min=1)
    mlp_dim: int = setting(0, min=0)
    n_states: int = setting(67, min=4)
    groups: int = setting(16, min=1)
    base_kernel: list[list[int]] = field(default_factory=lambda: [list(k) for k in KERNEL])
    kernel_scales_seq: list[list[int]] = field(default_factory=lambda: [list(k) for k in KERNEL_SCALES])
    include_d: list[int] = field(default_factory=lambda: [2, 3])
    causal_in_time: bool = True
    causal_mask: bool = True
    num_buckets: int = setting(32, min=2)
    max_distance: int = setting(32, min=2)
    rope_max_freq: float = setting(256.0, above=0)
    jitter: bool = True
    drop_path: float = setting(0.05, min=0, below=1)
    input_field_drop: float = setting(0.0, min=0, below=1)
    extra_dims: int = setting(3, min=3, max=3)
    activation: Literal["silu", "gelu"] = "silu"
    context_frames: int = setting(6, min=2)
    min_axis_points: int = setting(4, min=2)
    tokens_2d: int = setting(32, min=1)
    tokens_3d: int = setting(16, min=1)

    @property
    def ff_dim(self) -> int:
        """Width of the feed-forward part of the fused linear (SwiGLU input)."""
        return self.mlp_dim or 4 * self.hidden_dim

    @property
    def head_dim(self) -> int:
        """Channels per space-attention head."""
        return self.hidden_dim // self.num_heads

    def validate(self) -> WalrusConfig:
        """Rules over several settings."""
        for name, heads in (("num_heads", self.num_heads), ("time_heads", self.time_heads)):
            if self.hidden_dim % heads:
                raise ParameterError(f"hidden_dim {self.hidden_dim} is not a multiple of {name} {heads}.")
        if self.head_dim // 4 < 2:
            raise ParameterError(f"head_dim {self.head_dim} is too small for 3D axial rotary embedding (needs >= 8).")
        if self.ff_dim % 2:
            raise ParameterError(f"mlp_dim {self.ff_dim} must be even (SwiGLU halves it).")
        if len(self.base_kernel) != 3 or any(len(k) != 2 or min(k) < 1 for k in self.base_kernel):
            raise ParameterError(f"base_kernel must be three [first, second] kernel pairs, got {self.base_kernel}.")
        bad = [d for d in self.include_d if d not in (2, 3)]
        if bad or not self.include_d:
            raise ParameterError(f"include_d must list weight sets among [2, 3], got {self.include_d}.")
        return self

    def __post_init__(self) -> None:
        self.validate()


# The released checkpoint (walrus.pt, 1,286,199,047 parameters in 857 tensors).
RELEASED: dict[str, Any] = {
    "hidden_dim": 1408, "intermediate_dim": 352, "projection_dim": 48, "processor_blocks": 40,
    "num_heads": 16, "time_heads": 16, "mlp_dim": 0, "n_states": 67, "groups": 16,
    "base_kernel": [[8, 4], [8, 4], [8, 4]], "kernel_scales_seq": [[2, 2], [4, 2], [4, 4], [8, 4]],
    "include_d": [2, 3], "causal_in_time": True, "causal_mask": True, "jitter": True,
    "drop_path": 0.05, "input_field_drop": 0.0, "activation": "silu",
}

PRESETS: dict[str, dict[str, Any]] = {
    "released": RELEASED,
    # the parity fixture's sizes with the released field slots: 5.9M parameters (tiny: 2.6M)
    "small": {**RELEASED, "hidden_dim": 128, "intermediate_dim": 32, "processor_blocks": 2, "num_heads": 4,
              "time_heads": 4, "groups": 16},
    "tiny": {**RELEASED, "hidden_dim": 64, "intermediate_dim": 16, "processor_blocks": 2, "num_heads": 4,
             "time_heads": 4, "groups": 16},
}


def preset(name: str, **overrides: Any) -> WalrusConfig:
    """A named configuration ('released', 'small', 'tiny') with settings overridden."""
    if name not in PRESETS:
        raise ParameterError(f"Unknown Walrus preset {name!r}; choose from {', '.join(PRESETS)}.")
    return WalrusConfig.from_dict({**PRESETS[name], **overrides})


# -- Walrus's own config files -------------------------------------------------------------------
_INTERP = re.compile(r"^\$\{([A-Za-z0-9_.]+)\}$")


def _resolve(value: Any, root: Mapping[str, Any]) -> Any:
    """Resolve a whole-value OmegaConf reference ``${a.b}`` against the document (others stay as they are)."""
    if isinstance(value, str):
        m = _INTERP.match(value.strip())
        if m:
            node: Any = root
            for part in m.group(1).split("."):
                if not isinstance(node, Mapping) or part not in node:
                    return value
                node = node[part]
            return _resolve(node, root)
    return value


def _get(section: Mapping[str, Any], path: str, root: Mapping[str, Any], default: Any = None) -> Any:
    node: Any = section
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = _resolve(node[part], root)
    return node


def _kernels(value: Any, label: str) -> list[list[int]]:
    try:
        pairs = [[int(a), int(b)] for a, b in value]
    except (TypeError, ValueError):
        raise ParameterError(f"The Walrus config's {label} must be a list of [first, second] kernel pairs, got {value!r}.") from None
    return pairs


_UNSUPPORTED = {
    "encoder.learned_pad": (True, "only learned boundary padding is implemented"),
    "decoder.learned_pad": (True, "only learned boundary padding is implemented"),
    "encoder.variable_downsample": (True, "only variable strides are implemented"),
    "encoder.variable_deterministic_ds": (True, "only the deterministic stride choice is implemented"),
    "use_periodic_fixed_jitter": (True, "only the periodic fixed jitterer is implemented"),
    "processor.time_mixing.bias_type": ("rel", "only the T5 relative bias is implemented in time attention"),
    "max_d": (3, "Walrus pads every input to 3 spatial axes"),
    "dim_key_override": (None, "the weight set is picked by the input's dimensionality"),
}


def from_reference(doc: Mapping[str, Any], label: str = "the Walrus config") -> WalrusConfig:
    """A `WalrusConfig` from Walrus's own config (a mapping with a ``model`` section, or the section itself)."""
    root = dict(doc)
    model = root.get("model", root)
    if not isinstance(model, Mapping) or "hidden_dim" not in model:
        raise ParameterError(f"{label} has no Walrus model section (expected 'model: {{hidden_dim: ..., encoder: ...}}').")
    for path, (want, why) in _UNSUPPORTED.items():
        got = _get(model, path, root, want)
        if got != want and not (want is True and got in (1, "true", "True")):
            raise ParameterError(f"{label} sets model.{path}={got!r}; physviz's Walrus needs {want!r} ({why}).")
    override = _get(model, "override_dimensionality", root, 0)
    if override not in (0, None):
        raise ParameterError(f"{label} sets model.override_dimensionality={override!r}; physviz's Walrus needs 0 "
                             "(the weight set is picked by how many axes are longer than 1).")
    act = str(_get(model, "encoder.activation", root, "torch.nn.SiLU")).lower()
    activation = "gelu" if "gelu" in act else "silu"
    mlp = _get(model, "processor.space_mixing.mlp_dim", root, None)
    hidden = _get(model, "hidden_dim", root)
    heads = _get(model, "processor.space_mixing.num_heads", root, 12)
    data: dict[str, Any] = {
        "hidden_dim": hidden,
        "intermediate_dim": _get(model, "intermediate_dim", root, 192),
        "projection_dim": _get(model, "projection_dim", root, 96),
        "processor_blocks": _get(model, "processor_blocks", root, 8),
        "num_heads": heads,
        "time_heads": _get(model, "processor.time_mixing.num_heads", root, heads),
        "mlp_dim": int(mlp) if mlp else 0,
        "n_states": _get(model, "n_states", root, 4),
        "groups": _get(model, "groups", root, 12),
        "base_kernel": _kernels(_get(model, "encoder.base_kernel_size3d", root, KERNEL), "encoder.base_kernel_size3d"),
        "kernel_scales_seq": _kernels(_get(model, "encoder.kernel_scales_seq", root, KERNEL_SCALES), "encoder.kernel_scales_seq"),
        "include_d": list(_get(model, "include_d", root, [2, 3])),
        "causal_in_time": bool(_get(model, "causal_in_time", root, False)),
        "jitter": bool(_get(model, "jitter_patches", root, True)),
        "drop_path": _get(model, "drop_path", root, 0.2),
        "input_field_drop": _get(model, "input_field_drop", root, 0.1),
        "activation": activation,
    }
    decoder = _get(model, "decoder.base_kernel_size3d", root, None)
    if decoder is not None and _kernels(decoder, "decoder.base_kernel_size3d") != data["base_kernel"]:
        raise ParameterError(f"{label}: the decoder's base_kernel_size3d {decoder} differs from the encoder's; "
                             "physviz's Walrus mirrors the encoder's kernels in the decoder.")
    return WalrusConfig.from_dict(data)
