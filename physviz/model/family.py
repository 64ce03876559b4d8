"""The interface of a model family: what rollout, fine-tuning, checkpoints, benchmarks and the views use.

A family is a `PhysicsModel` subclass (an ``nn.Module``) that predicts the next frame
from a context window of fields, indexes its field embeddings through a shared
`FieldRegistry`, and saves and loads through `physviz.model.checkpoint`, which writes the
family's name into the file and builds the class `FAMILIES` names for it. Code above
the model package (rollout, the train loop, the views, the jobs) uses only this interface,
so a second family plugs in by subclassing `PhysicsModel` and adding one line to `FAMILIES`.

The layout of every call: ``x`` (batch, time, fields, *spatial), ``field_ids`` one
registry index per field channel, ``bcs`` one flag per spatial axis (1: periodic).
"""
from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from physviz.errors import ParameterError
from physviz.model.registry import FieldRegistry
from physviz.typed_config import Config

# family name (stored in checkpoint headers) -> "module:class"
FAMILIES: dict[str, str] = {"avit": "physviz.model.avit:AViT", "walrus": "physviz.model.walrus.model:Walrus"}
DEFAULT_FAMILY = "avit"


class PhysicsModel(nn.Module, metaclass=abc.ABCMeta):
    """A model of some family: next frame from a context window, over fields named by a registry.

    A family sets ``family`` (its name in `FAMILIES`), ``config_class`` (its `Config`,
    stored in checkpoints) and ``weight_settings`` (the config keys its weights fix, which
    a load may not override), and builds from ``cls(config, registry=registry)``.
    ``gradient_checkpointing`` (recompute blocks in the backward pass) is a run-time
    switch, not saved.
    """

    family: ClassVar[str] = ""
    config_class: ClassVar[type[Config]]
    weight_settings: ClassVar[tuple[str, ...]] = ()

    config: Any
    metadata: dict[str, Any]
    gradient_checkpointing: bool

    def __init__(self) -> None:
        super().__init__()
        self.metadata = {}
        self.gradient_checkpointing = False
        self._registry: FieldRegistry | None = None

    # -- what a family implements -----------------------------------------------------------
    @abc.abstractmethod
    def forward(self, x: torch.Tensor, field_ids: Any, bcs: Any) -> torch.Tensor:
        """Next frame (batch, fields, *spatial) from a window (batch, time, fields, *spatial)."""

    @abc.abstractmethod
    def predict(self, x: torch.Tensor, field_ids: Any, bcs: Any, *, ensemble: int = 1,
                jitter_seed: int | None = None) -> torch.Tensor:
        """Next frame for inference: the mean of `ensemble` passes (patch-jittered from `jitter_seed` where the family jitters)."""

    @property
    @abc.abstractmethod
    def n_field_slots(self) -> int:
        """Field embedding slots the weights hold (registry indices 0 .. n_field_slots - 1)."""

    @property
    @abc.abstractmethod
    def context_frames(self) -> int:
        """Default number of input frames (rollouts, fine-tuning windows)."""

    @property
    @abc.abstractmethod
    def n_spatial_dims(self) -> int:
        """Spatial dims of the model (a 3D model may also take 2D fields)."""

    @property
    @abc.abstractmethod
    def patch_size(self) -> int:
        """Points per token along each axis (1 for a model without patches); a grid needs at least one patch."""

    @property
    @abc.abstractmethod
    def pads_to_patch(self) -> bool:
        """Whether grids that are not a multiple of the patch size are padded (else refused)."""

    @abc.abstractmethod
    def field_parameters(self) -> list[nn.Parameter]:
        """The parameters that map fields in and out (trained alone under ``freeze="middle"``)."""

    @abc.abstractmethod
    def processor_parameters(self) -> list[nn.Parameter]:
        """The processor's parameters (frozen under ``freeze="processor"``, scaled by ``blocks_lr_scale``)."""

    def unused_parameters(self) -> list[nn.Parameter]:
        """Parameters that exist only so checkpoints load and never train."""
        return []

    # -- what a family may refine (defaults fit a patch model taking periodic flags) --------------
    def idle_parameters(self, data_dims: set[int]) -> list[nn.Parameter]:
        """Parameters that data of these spatial dims never reach (a weight set of other dims), left out of training."""
        return []

    @property
    def min_context_frames(self) -> int:
        """Fewest input frames a forward pass takes."""
        return 1

    @property
    def predicts_every_frame(self) -> bool:
        """Whether ``forward(x, ids, bcs, every_frame=True)`` returns a prediction after every input frame (causal in time)."""
        return False

    def token_grid(self, spatial: Sequence[int], bcs: Any = None) -> tuple[int, ...]:
        """Tokens per axis the model makes of a grid of `spatial` points (a partial patch counts as one)."""
        p = self.patch_size
        return tuple(max(1, -(-int(s) // p)) for s in spatial)

    def boundary_input(self, conditions: Mapping[str, Any] | None, axes: Sequence[str]) -> Any:
        """The ``bcs`` argument of `forward` for checked conditions (axis -> condition or [low, high]): periodic flags."""
        from physviz.fields.schema import periodic_flags

        return periodic_flags(conditions, list(axes))

    # -- shared by every family ----------------------------------------------------------------
    @property
    def registry(self) -> FieldRegistry:
        """The field registry (field name -> embedding slot) of this model."""
        if self._registry is None:
            raise ParameterError("This model has no field registry yet; set model.registry.")
        return self._registry

    @registry.setter
    def registry(self, value: FieldRegistry | str) -> None:
        reg = FieldRegistry.preset(value) if isinstance(value, str) else value
        slots = self.n_field_slots
        if reg.n_slots > slots:
            raise ParameterError(
                f"Field registry {reg.name!r} has {reg.n_slots} slots but the model only {slots}; widen the model "
                f"first with physviz.model.surgery.expand_fields(model, {reg.n_slots - slots})."
            )
        reg.n_slots = slots
        self._registry = reg

    def field_ids(self, names: Sequence[str], family: str | None = None) -> torch.Tensor:
        """Registry indices of field names as a LongTensor on the model's device (unknown names raise)."""
        ids = self.registry.lookup_fields(list(names), family=family)
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())


def family_class(name: str) -> type[PhysicsModel]:
    """The class of a model family by its name (as stored in checkpoint headers)."""
    if name not in FAMILIES:
        raise ParameterError(f"Unknown model family {name!r}; known families: {', '.join(sorted(FAMILIES))}.")
    module, attr = FAMILIES[name].split(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, PhysicsModel)):
        raise ParameterError(f"Model family {name!r} names {FAMILIES[name]}, which is not a PhysicsModel class.")
    return cls


def build_model(family: str, config: Mapping[str, Any] | Config, registry: FieldRegistry | str | None = None,
                **options: Any) -> PhysicsModel:
    """A fresh model of a family from its config (a mapping or the family's Config), `options` overriding settings."""
    cls = family_class(family)
    data = config.to_dict() if isinstance(config, Config) else dict(config)
    check_options(cls, options)
    cfg = cls.config_class.from_dict({**data, **options})
    return cls(cfg, registry=registry)  # type: ignore[call-arg]


def check_options(cls: type[PhysicsModel], options: Mapping[str, Any]) -> None:
    """Refuse load-time overrides of settings the weights fix."""
    fixed = sorted(k for k in options if k in cls.weight_settings)
    if fixed:
        raise ParameterError(
            f"Setting(s) {fixed} are fixed by the checkpoint's weights and cannot be overridden at load; "
            "only options such as delta_prediction, jitter or pad_to_patch can."
        )
