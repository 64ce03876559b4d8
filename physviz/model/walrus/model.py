"""The Walrus model (PolymathicAI, arXiv 2511.15684) as a physviz model family.

Two calling conventions:

- ``model.forward_walrus(x, state_labels, bcs)``: the reference's. ``x`` (T, B, C, *spatial)
  already normalised, 2D as (T, B, C, H, W) and 3D as (T, B, C, H, W, D); ``state_labels``
  (C,) each field's slot in the field index map; ``bcs`` (B, 3, 2) or (3, 2) Walrus codes
  per axis [low, high] (0 wall, 1 open, 2 periodic; the first sample's are used). Returns
  the normalised change to the next frame, (T, B, C, *spatial) when causal in time (one
  prediction after every input frame), else (1, B, C, *spatial).
- ``model(x, field_ids, bcs)`` (`PhysicsModel`): ``x`` (B, T, C, *spatial) in physical
  units, returns the next frame (B, C, *spatial). Per sample and field, over the window:
  ``s = max(rms(x), 1e-5)``, ``d = max(rms(x[1:] - x[:-1]), 1e-5)``; the network sees
  ``x / s`` and the next frame is ``x[-1] + y[-1] * d`` (delta prediction: the step size
  is set by the change seen in the context). ``bcs``: one flag per axis (1 periodic, 0
  wall), ``"periodic"``/``"wall"``/``"open"`` per axis or ``[low, high]``, a mapping
  ``{"x": ..., "y": ...}``, or Walrus codes (n, 2) / (B, n, 2).

Any grid: strides are chosen per axis for about 32 tokens per axis in 2D and 16 in 3D,
as the reference's table gives them where it has the length, and by `padding.choose_strides`
elsewhere (see `physviz.model.walrus.padding`; docs/walrus.md says how this differs from
the public code, which refuses e.g. 2D axes of 64 and 3D axes of 32).

Parity is with a reference assembled from the public code (the fixture
``walrus_small``), not yet checked against the released weights.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from physviz.errors import ParameterError, SchemaError, UnknownFieldError
from physviz.model.family import PhysicsModel
from physviz.model.registry import FieldRegistry
from physviz.model.walrus.blocks import SpaceTimeBlock
from physviz.model.walrus.config import WalrusConfig, preset
from physviz.model.walrus.encoder import Decoder, Encoder
from physviz.model.walrus.jitter import block_rolls, input_rolls, make_generator
from physviz.model.walrus.padding import (
    BC_NAMES,
    PERIODIC,
    AxisPlan,
    crop,
    pad_and_flag,
    plan_axes,
    wrap_periodic,
)

AXES = ("x", "y", "z")
BOUNDARY_LABELS = (2, 0, 1)  # slots of the appended channels: bias correction, closed, open
WEIGHT_SETTINGS = ("hidden_dim", "intermediate_dim", "processor_blocks", "num_heads", "time_heads", "mlp_dim",
                   "n_states", "base_kernel", "include_d", "num_buckets", "activation", "extra_dims")
RMS_FLOOR = 1e-5


def _bc_code(value: Any, where: str) -> int:
    if isinstance(value, str):
        text = value.strip().lower()
        if text not in BC_NAMES:
            raise ParameterError(f"{where}: boundary condition {value!r} is not one of wall, open, periodic.")
        return BC_NAMES[text]
    code = int(value)
    if code not in (0, 1, 2):
        raise ParameterError(f"{where}: Walrus boundary code {code} is not 0 (wall), 1 (open) or 2 (periodic).")
    return code


def walrus_bcs(bcs: Any, n_axes: int) -> list[list[int]]:
    """Walrus [low, high] codes for 3 axes from the boundary conditions of `n_axes` spatial axes.

    Accepts one periodic flag per axis (1 periodic, 0 wall), a name or [low, high] names per
    axis, a mapping from axis name ("x", "y", "z") to those, or Walrus codes (n, 2) / (B, n, 2)
    (0 wall, 1 open, 2 periodic; every sample must share them). Axes past `n_axes` are periodic
    (they have length 1 and take no padding).
    """
    if bcs is None:
        raise ParameterError("Walrus needs boundary conditions: one per spatial axis (1/'periodic', 0/'wall', 'open').")
    if isinstance(bcs, Mapping):
        missing = [a for a in AXES[:n_axes] if a not in bcs]
        if missing:
            raise ParameterError(f"Boundary conditions {dict(bcs)!r} name no condition for axes {missing}.")
        rows: list[Any] = [bcs[a] for a in AXES[:n_axes]]
        out = [_pair(r, f"boundary condition of axis {a!r}") for r, a in zip(rows, AXES)]
    else:
        if isinstance(bcs, str):
            raise ParameterError(f"Boundary conditions must be one per spatial axis, got the string {bcs!r}.")
        if torch.is_tensor(bcs) or isinstance(bcs, np.ndarray) or (
                isinstance(bcs, Sequence) and all(not isinstance(v, str) and not isinstance(v, Sequence) for v in bcs)):
            arr = np.asarray(bcs.detach().cpu() if torch.is_tensor(bcs) else bcs)
            if arr.dtype.kind not in "iub":
                raise ParameterError(f"Boundary conditions must be integers (flags or Walrus codes), got {arr.dtype}.")
            arr = arr.astype(np.int64)
            if arr.ndim == 3:
                if not (arr == arr[:1]).all():
                    raise ParameterError("Boundary conditions differ between samples; every sample of a batch shares them.")
                arr = arr[0]
            if arr.ndim == 2 and arr.shape[-1] == 2 and arr.shape[0] in (n_axes, 3):
                out = [[_bc_code(v, "bcs") for v in row] for row in arr.tolist()][:n_axes]
            elif arr.ndim in (1, 2):
                if arr.ndim == 2:
                    if not (arr == arr[:1]).all():
                        raise ParameterError("Periodic flags differ between samples; every sample of a batch shares them.")
                    arr = arr[0]
                if len(arr) != n_axes:
                    raise ParameterError(f"Boundary conditions give {len(arr)} flags for {n_axes} spatial axes.")
                bad = [int(v) for v in arr if v not in (0, 1)]
                if bad:
                    raise ParameterError(f"Periodic flags must be 0 or 1, got {bad}; give Walrus codes as [low, high] pairs.")
                out = [[PERIODIC, PERIODIC] if v else [0, 0] for v in arr.tolist()]
            else:
                raise ParameterError(f"Boundary conditions of shape {arr.shape} are not understood.")
        else:
            rows = list(bcs)
            if len(rows) != n_axes:
                raise ParameterError(f"Boundary conditions give {len(rows)} entries for {n_axes} spatial axes.")
            out = [_pair(r, f"boundary condition of axis {AXES[i]!r}") for i, r in enumerate(rows)]
    if len(out) != n_axes:
        raise ParameterError(f"Boundary conditions give {len(out)} axes for {n_axes} spatial axes.")
    for lo, hi in out:
        if (lo == PERIODIC) != (hi == PERIODIC):
            raise ParameterError(f"An axis is periodic on one side only ({lo}, {hi}); periodic applies to both sides.")
    return out + [[PERIODIC, PERIODIC]] * (3 - n_axes)


def _pair(value: Any, where: str) -> list[int]:
    if isinstance(value, (list, tuple)) or (torch.is_tensor(value) and value.dim() == 1):
        items = list(value)
        if len(items) != 2:
            raise ParameterError(f"{where}: give one condition or [low, high], got {value!r}.")
        return [_bc_code(v, where) for v in items]
    if isinstance(value, str):
        c = _bc_code(value, where)
        return [c, c]
    flag = int(value)
    if flag not in (0, 1):
        raise ParameterError(f"{where}: a periodic flag is 0 or 1, got {value!r}.")
    return [PERIODIC, PERIODIC] if flag else [0, 0]


class Walrus(PhysicsModel):
    """Walrus: variable-stride encoder, causal space-time blocks, decoder; 2D and 3D fields in one model."""

    family: ClassVar[str] = "walrus"
    config_class: ClassVar[type[WalrusConfig]] = WalrusConfig
    weight_settings: ClassVar[tuple[str, ...]] = WEIGHT_SETTINGS

    config: WalrusConfig

    def __init__(self, config: WalrusConfig | Mapping[str, Any] | str | None = None,
                 registry: FieldRegistry | str | None = None, **overrides: Any) -> None:
        super().__init__()
        if isinstance(config, str):
            cfg = preset(config)
        elif isinstance(config, Mapping):
            cfg = WalrusConfig.from_dict(dict(config))
        else:
            cfg = config if config is not None else WalrusConfig()
        cfg = cfg.replace(**overrides) if overrides else cfg
        self.config = cfg
        c = cfg
        self.encoder_dummy = nn.Parameter(torch.ones(1))
        self.embed = nn.ModuleDict({
            str(d): Encoder(c.n_states, c.intermediate_dim, c.hidden_dim, c.base_kernel, c.groups, c.activation)
            for d in sorted(c.include_d)})
        rates = np.linspace(0, c.drop_path, c.processor_blocks)
        self.blocks = nn.ModuleList(
            SpaceTimeBlock(c.hidden_dim, c.num_heads, c.time_heads, c.groups, c.ff_dim, c.causal_in_time,
                           c.causal_mask, c.num_buckets, c.max_distance, c.rope_max_freq, float(rates[i]))
            for i in range(c.processor_blocks))
        self.debed = nn.ModuleDict({
            str(d): Decoder(c.hidden_dim, c.intermediate_dim, c.n_states, c.base_kernel, c.groups, c.activation)
            for d in sorted(c.include_d)})
        if registry is None:
            from physviz.model.walrus.released import default_registry

            registry = default_registry(c.n_states)
        self.registry = registry

    # -- the family interface ------------------------------------------------------------------
    @property
    def n_field_slots(self) -> int:
        """Field slots of the embedding and decoder (the first three are the boundary-flag channels)."""
        return self.config.n_states

    @property
    def context_frames(self) -> int:
        """Default number of input frames."""
        return self.config.context_frames

    @property
    def n_spatial_dims(self) -> int:
        """3: 2D fields run as 3D with a length-1 axis."""
        return 3

    @property
    def patch_size(self) -> int:
        """Fewest points along an axis longer than 1 (strides adapt to the grid, so this is the smallest grid)."""
        return self.config.min_axis_points

    @property
    def pads_to_patch(self) -> bool:
        """Any grid is accepted (strides are chosen per axis, padded where needed)."""
        return True

    @property
    def min_context_frames(self) -> int:
        """2: the step size is set by the change between context frames."""
        return 2

    @property
    def predicts_every_frame(self) -> bool:
        """True when causal in time: one pass predicts the frame after every input frame."""
        return bool(self.config.causal_in_time)

    def boundary_input(self, conditions: Mapping[str, Any] | None, axes: Sequence[str]) -> Any:
        """Walrus [low, high] codes per axis from checked conditions (wall, open, periodic; missing: wall)."""
        conds = conditions or {}
        return walrus_bcs([conds.get(a, "wall") for a in axes], len(axes))[:len(axes)]

    def idle_parameters(self, data_dims: set[int]) -> list[nn.Parameter]:
        """The encoder and decoder weight sets of dims no data has (2D data never reaches embed.3 / debed.3)."""
        idle: list[nn.Parameter] = []
        for key in self.embed:
            if int(key) not in data_dims:
                idle += list(self.embed[key].parameters()) + list(self.debed[key].parameters())
        return idle

    def field_parameters(self) -> list[nn.Parameter]:
        """The field embedding (first encoder kernels) and the decoder's output kernels and biases."""
        params: list[nn.Parameter] = []
        for enc in self.embed.values():
            params.append(enc.proj1.weight)
        for dec in self.debed.values():
            params += [dec.proj2.weight, dec.proj2.bias]
        return params

    def processor_parameters(self) -> list[nn.Parameter]:
        """The space-time blocks."""
        return list(self.blocks.parameters())

    def field_ids(self, names: Sequence[str], family: str | None = None) -> torch.Tensor:
        """Field slots of physviz field names; an unknown name raises with the closest Walrus fields."""
        try:
            return super().field_ids(names, family)
        except UnknownFieldError:
            from physviz.model.walrus.released import unknown_fields_error

            raise unknown_fields_error(names, self.registry) from None

    def token_grid(self, spatial: Sequence[int], bcs: Any = None) -> tuple[int, ...]:
        """Tokens per axis the model makes of a grid (bcs default: periodic)."""
        n = len(spatial)
        codes = walrus_bcs(bcs if bcs is not None else [1] * n, n)
        shape = list(spatial) + [1] * (3 - n)
        plans = self._plans(shape, codes, jitter=False)
        return tuple(p.tokens for p in plans[:n])

    # -- inputs --------------------------------------------------------------------------------
    def _plans(self, shape: Sequence[int], codes: Sequence[Sequence[int]], jitter: bool) -> list[AxisPlan]:
        c = self.config
        return plan_axes(shape, codes, c.base_kernel, tokens_2d=c.tokens_2d, tokens_3d=c.tokens_3d,
                         min_points=c.min_axis_points, jitter=jitter)

    def _labels(self, field_ids: Any, channels: int) -> torch.Tensor:
        ids = torch.as_tensor(field_ids)
        if ids.dim() == 2:
            if ids.shape[0] > 1 and not bool((ids == ids[:1]).all()):
                raise ParameterError("field_ids differ between samples; every sample of a batch holds the same fields.")
            ids = ids[0]
        if ids.dim() != 1 or ids.is_floating_point() or ids.dtype == torch.bool:
            raise ParameterError(f"field_ids must be a 1-D list of integer field slots, got shape {tuple(ids.shape)} {ids.dtype}.")
        if len(ids) != channels:
            raise ParameterError(f"field_ids names {len(ids)} fields but the input has {channels} field channels.")
        lst = ids.tolist()
        n = self.config.n_states
        bad = [i for i in lst if not 3 <= i < n]
        if bad:
            raise UnknownFieldError(
                f"field slots {bad} are not field slots of this Walrus model (fields use slots 3..{n - 1}; "
                "0, 1, 2 are the boundary flags)."
            )
        if len(set(lst)) != len(lst):
            raise ParameterError(f"field_ids {lst} repeat a field; each channel must be a different field.")
        return ids.to(device=self.encoder_dummy.device, dtype=torch.long)

    def _window(self, x: Any) -> torch.Tensor:
        if not torch.is_tensor(x):
            x = torch.as_tensor(np.asarray(x))
        if not x.is_floating_point():
            x = x.float()
        if x.dim() not in (5, 6):
            raise SchemaError(
                f"The Walrus input has shape {tuple(x.shape)}; it takes (batch, time, fields, x, y[, z]) "
                "(2D or 3D fields)."
            )
        if any(s < 1 for s in x.shape):
            raise SchemaError(f"The Walrus input has an empty axis: shape {tuple(x.shape)}.")
        return x.to(self.encoder_dummy.dtype)

    # -- the network ---------------------------------------------------------------------------
    def _network(self, x: torch.Tensor, labels: torch.Tensor, codes: Sequence[Sequence[int]], *,
                 last_only: bool, jitter: bool, gen: torch.Generator | None) -> torch.Tensor:
        """Normalised deltas (T', B, C, *spatial) from normalised frames x (T, B, C, *spatial)."""
        n_in = x.dim() - 3
        while x.dim() < 6:
            x = x.unsqueeze(-1)
        T, B, C, *S = x.shape
        plans = self._plans(S, codes, jitter)
        key = str(sum(not p.singleton for p in plans))
        if key not in self.embed:
            raise ParameterError(f"This Walrus model has no {key}D weights (include_d={self.config.include_d}).")
        xe = (x * self.encoder_dummy).reshape(T * B, C, *S)
        if self.training and self.config.input_field_drop > 0:
            p = self.config.input_field_drop / C
            keep = xe.new_empty(B, C).bernoulli_(1 - p) / (1 - p)
            xe = xe * keep.repeat(T, 1).view(T * B, C, 1, 1, 1)
        xe = pad_and_flag(xe, plans, codes)
        rolls = input_rolls(plans, gen) if jitter else [0, 0, 0]
        if any(rolls):
            xe = torch.roll(xe, rolls, dims=(2, 3, 4))
        xe = wrap_periodic(xe, plans)
        lab = torch.cat([labels, torch.tensor(BOUNDARY_LABELS, dtype=labels.dtype, device=labels.device)])
        tok = self.embed[key](xe, lab, plans)
        z = tok.view(T, B, *tok.shape[1:]).permute(0, 1, 3, 4, 5, 2).contiguous()  # (T, B, h, w, d, C)
        shifts = block_rolls(plans, len(self.blocks), gen) if jitter else None
        total = [0, 0, 0]
        use_ckpt = self.gradient_checkpointing and torch.is_grad_enabled()
        last = len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            if shifts is not None and any(shifts[i]):
                z = torch.roll(z, shifts[i], dims=(2, 3, 4))
                total = [a + b for a, b in zip(total, shifts[i])]
            lo = last_only and i == last
            z = checkpoint(blk, z, lo, use_reentrant=False) if use_ckpt else blk(z, lo)
        if any(total):
            z = torch.roll(z, [-t for t in total], dims=(2, 3, 4))
        if not self.config.causal_in_time:
            z = z[-1:]
        Tz = z.shape[0]
        zt = z.permute(0, 1, 5, 2, 3, 4).reshape(Tz * B, z.shape[-1], *z.shape[2:5])
        y = self.debed[key](zt, labels, plans)
        y = crop(y, plans, wrapped=True)
        if any(rolls):
            y = torch.roll(y, [-r for r in rolls], dims=(2, 3, 4))
        y = crop(y, plans, wrapped=False)
        y = y.reshape(Tz, B, C, *S)
        for _ in range(3 - n_in):
            y = y.squeeze(-1)
        return y

    def forward_walrus(self, x: torch.Tensor, state_labels: Any, bcs: Any, metadata: Any = None, *,
                       jitter: bool | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """The reference's call: x (T, B, C, *spatial) normalised, state_labels (C,), bcs (B, 3, 2) Walrus codes.

        Returns the normalised change to the next frame: (T, B, C, *spatial) when causal in
        time, else (1, B, C, *spatial). ``metadata`` is accepted for the reference's
        signature and unused. ``jitter`` defaults to ``config.jitter`` (as the reference's
        ``jitter_patches``); its rolls come from ``generator`` (or torch's default one).
        """
        x = torch.as_tensor(x)
        if x.dim() not in (5, 6):
            raise SchemaError(f"forward_walrus takes x (T, B, C, H, W[, D]); got shape {tuple(x.shape)}.")
        x = x.to(self.encoder_dummy.dtype)
        labels = self._labels(state_labels, x.shape[2])
        codes = walrus_bcs(bcs, x.dim() - 3) if not _is_codes(bcs) else _codes3(bcs)
        use = self.config.jitter if jitter is None else bool(jitter)
        return self._network(x, labels, codes, last_only=False, jitter=use, gen=generator)

    def _step(self, x: torch.Tensor, labels: torch.Tensor, codes: Sequence[Sequence[int]], jitter: bool,
              gen: torch.Generator | None, every_frame: bool = False) -> torch.Tensor:
        """Next frame (B, C, *S) from a window x (B, T, C, *S) in physical units (every_frame: (B, T, C, *S))."""
        B, T, C = x.shape[:3]
        if T < 2:
            raise ParameterError(
                f"Walrus needs at least 2 context frames (it scales its step by the change between frames); got {T}."
            )
        with torch.no_grad():
            flat = x.detach().reshape(B, T, C, -1)
            s = flat.square().mean(dim=(1, 3)).sqrt().clamp(min=RMS_FLOOR)
            d = (flat[:, 1:] - flat[:, :-1]).square().mean(dim=(1, 3)).sqrt().clamp(min=RMS_FLOOR)
        shape = (B, C) + (1,) * (x.dim() - 3)
        xn = x / s.view(B, 1, *shape[1:])
        if every_frame:
            y = self._network(xn.transpose(0, 1), labels, codes, last_only=False, jitter=jitter, gen=gen)
            return x + y.transpose(0, 1) * d.view(B, 1, *shape[1:])
        y = self._network(xn.transpose(0, 1), labels, codes, last_only=True, jitter=jitter, gen=gen)[-1]
        return x[:, -1] + y * d.view(shape)

    def forward(self, x: torch.Tensor, field_ids: Any, bcs: Any, *, every_frame: bool = False) -> torch.Tensor:
        """Next frame (B, C, *S) from a window (B, T, C, *S), field slots (C,) and boundary conditions.

        ``every_frame`` (causal models): the prediction after every input frame, (B, T, C, *S),
        entry t being frame t + 1, all from one pass (how a causal model trains on every frame).
        In training with ``config.jitter`` each call jitters the patch grid at random (as Walrus trains).
        """
        x = self._window(x)
        labels = self._labels(field_ids, x.shape[2])
        codes = walrus_bcs(bcs, x.dim() - 3)
        jitter = self.training and self.config.jitter
        if every_frame and not self.predicts_every_frame:
            raise ParameterError("every_frame=True needs a model causal in time (config.causal_in_time).")
        return self._step(x, labels, codes, jitter, None, every_frame)

    def predict(self, x: torch.Tensor, field_ids: Any, bcs: Any, *, ensemble: int = 1,
                jitter_seed: int | None = None) -> torch.Tensor:
        """Next frame, the mean of `ensemble` passes; jittered when ``config.jitter``, a seed or an ensemble is given.

        Member m draws its rolls from a generator seeded with ``jitter_seed + m`` (random when None).
        """
        if int(ensemble) < 1:
            raise ParameterError(f"ensemble={ensemble} must be at least 1.")
        x = self._window(x)
        labels = self._labels(field_ids, x.shape[2])
        codes = walrus_bcs(bcs, x.dim() - 3)
        jitter = self.config.jitter or jitter_seed is not None or ensemble > 1
        if not jitter:
            return self._step(x, labels, codes, False, None)
        total = None
        for m in range(int(ensemble)):
            gen = make_generator(None if jitter_seed is None else int(jitter_seed) + m)
            y = self._step(x, labels, codes, True, gen)
            total = y if total is None else total + y
        assert total is not None
        return total / int(ensemble)

    def extra_repr(self) -> str:
        c = self.config
        return (f"hidden={c.hidden_dim}, heads={c.num_heads}, blocks={c.processor_blocks}, n_states={c.n_states}, "
                f"causal={c.causal_in_time}, jitter={c.jitter}")


def _is_codes(bcs: Any) -> bool:
    """True for a (B, k, 2) or (k, 2) integer array (the reference's bcs)."""
    if isinstance(bcs, (Mapping, str)):
        return False
    try:
        arr = np.asarray(bcs.detach().cpu() if torch.is_tensor(bcs) else bcs)
    except (TypeError, ValueError):
        return False
    return arr.dtype.kind in "iu" and arr.ndim in (2, 3) and arr.shape[-1] == 2


def _codes3(bcs: Any) -> list[list[int]]:
    """The reference's bcs (B, k, 2) or (k, 2): the first sample's codes, completed to 3 axes."""
    arr = np.asarray(bcs.detach().cpu() if torch.is_tensor(bcs) else bcs).astype(np.int64)
    if arr.ndim == 3:
        arr = arr[0]
    rows = [[_bc_code(v, "bcs") for v in row] for row in arr.tolist()][:3]
    return rows + [[PERIODIC, PERIODIC]] * (3 - len(rows))


def num_parameters(model: nn.Module) -> int:
    """Parameters of a model (the rotary frequencies are buffers, not parameters)."""
    return sum(math.prod(p.shape) for p in model.parameters())
