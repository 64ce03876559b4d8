"""The MPP AViT space-time transformer, 2D and 3D in one class, with Walrus-style options.

Layout: ``model(x, field_ids, bcs)`` takes ``x`` of shape (B, T, C, *spatial), batch
first and time second, ``field_ids`` (C,) registry indices (one field set per batch,
as in MPP) and ``bcs`` (n_spatial_dims,) with ``bcs[i] = 1`` when spatial axis i is
periodic; it returns the next frame (B, C, *spatial).

``forward_mpp(x, state_labels, bcs)`` takes MPP's own layout (T, B, C, H, W),
state_labels (B, C) and bcs (B, 2), where MPP applies ``bcs[:, 0]`` to its last axis
(W) and ``bcs[:, 1]`` to H; so ``forward_mpp`` passes ``bcs[0].flip(0)`` to ``forward``.

Steps, as in MPP's AViT (docs/model.md says where the parity facts come from):
per-sample, per-field normalisation over time and space (unbiased std + 1e-7,
statistics held constant for the gradient); field embedding and hMLP stem per frame;
blocks of time attention then axial space attention; hMLP decoder with the
field-specific head; de-normalisation of the last frame. Only the last frame is
returned, so the last block computes only the last frame's time-attention queries and
space block, and only the last frame is decoded (the result is the same).

Around the network: input checks in `physviz.model.inputs`, the patch grid (padding,
jitter shifts) in `physviz.model.padding` and `physviz.model.jitter`, weight surgery
(new field slots, a grafted refiner, freezing) in `physviz.model.surgery`, FLOP counts
in `physviz.model.flops`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from physviz.model.attention import SpaceTimeBlock
from physviz.model.config import WEIGHT_SETTINGS, ModelConfig
from physviz.model.family import PhysicsModel
from physviz.model.inputs import ModelInputs, check_inputs, check_patch_grid
from physviz.model.jitter import ensemble_mean, ensemble_shifts, training_shifts
from physviz.model.layers import RMSInstanceNorm, SubsampledLinear
from physviz.model.padding import pad, plan_padding, unpad
from physviz.model.refine import PixelRefiner
from physviz.model.registry import GENERIC, FieldRegistry
from physviz.model.stem import HMLPOutput, HMLPStem


def _input_moments(x: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean (B, 1, C, 1..), centred x and unbiased variance of x (B, T, C, *S) over time and space, per sample and field.

    The sums run over each frame's contiguous points (fast innermost reductions), then over
    time; the sum of squares is one norm per frame, without a squared copy of the input.
    """
    B, T, C = x.shape[:3]
    flat = x.reshape(B, T, C, -1)
    count = T * flat.shape[-1]
    shape = (B, 1, C, *([1] * n))
    mean = (flat.sum(-1).sum(1) / count).view(shape)
    centred = x - mean
    ss = torch.linalg.vector_norm(centred.reshape(B, T, C, -1), 2, -1).square_().sum(1)
    return mean, centred, (ss / max(count - 1, 1)).view(shape)


STEP_FLOOR = 1e-3


def _step_rms(x: torch.Tensor, n: int) -> torch.Tensor:
    """RMS over time and space of the frame-to-frame change of x (B, T, C, *S), per sample and field: (B, C, 1..)."""
    B, T, C = x.shape[:3]
    diff = (x[:, 1:] - x[:, :-1]).reshape(B, T - 1, C, -1)
    ms = torch.linalg.vector_norm(diff, 2, -1).square_().sum(1) / (diff.shape[1] * diff.shape[-1])
    return ms.sqrt_().view(B, C, *([1] * n))


class AViT(PhysicsModel):
    """MPP's Axial ViT: RevIN, field embedding, hMLP stem, space-time blocks, field-specific decoder."""

    family: ClassVar[str] = "avit"
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    weight_settings: ClassVar[tuple[str, ...]] = WEIGHT_SETTINGS

    config: ModelConfig

    def __init__(self, config: ModelConfig | str | None = None, registry: FieldRegistry | str | None = None,
                 **overrides: Any) -> None:
        super().__init__()
        if isinstance(config, str):
            config = ModelConfig.preset(config)
        cfg = (config if config is not None else ModelConfig()).replace(**overrides)
        self.config = cfg
        n, d = cfg.n_spatial_dims, cfg.embed_dim
        bias = (cfg.bias_type, cfg.num_buckets, cfg.max_distance, cfg.periodic_bias)
        rates = np.linspace(0, cfg.drop_path, cfg.processor_blocks)
        self.space_bag = SubsampledLinear(cfg.n_states, d // 4)
        self.embed = HMLPStem(d // 4, d, cfg.stem_strides, n)
        self.blocks = nn.ModuleList(
            SpaceTimeBlock(d, cfg.num_heads, n, cfg.mlp_dim, float(rates[i]), cfg.layer_scale_init, bias)
            for i in range(cfg.processor_blocks)
        )
        self.debed = HMLPOutput(d, cfg.n_states, cfg.stem_strides, n)
        self.refine = PixelRefiner(cfg.n_states, cfg.refine_width, n) if cfg.refine_width else None
        for m in self.modules():
            if isinstance(m, RMSInstanceNorm):
                m.floor = cfg.norm_floor
        self.registry = registry if registry is not None else _default_registry(cfg.n_states)

    # -- the family interface ------------------------------------------------------------------
    @property
    def n_field_slots(self) -> int:
        """Rows of the field embedding and of the decoder head."""
        return self.config.n_states

    @property
    def context_frames(self) -> int:
        """Default number of input frames."""
        return self.config.context_frames

    @property
    def n_spatial_dims(self) -> int:
        """2 or 3 (a 3D model also takes 2D fields)."""
        return self.config.n_spatial_dims

    @property
    def patch_size(self) -> int:
        """Points per token along each axis."""
        return self.config.patch_size

    @property
    def pads_to_patch(self) -> bool:
        """Whether grids off the patch multiple are padded and cropped back."""
        return self.config.pad_to_patch

    def field_parameters(self) -> list[nn.Parameter]:
        """Field embedding, decoder head and the refiner (MPP's fine-tuning of new fields trains these)."""
        params = [*self.space_bag.parameters(), self.debed.out_kernel, self.debed.out_bias]
        if self.refine is not None:
            params += list(self.refine.parameters())
        return params

    def processor_parameters(self) -> list[nn.Parameter]:
        """The space-time blocks."""
        return list(self.blocks.parameters())

    def unused_parameters(self) -> list[nn.Parameter]:
        """The RMS-norm biases: MPP's checkpoints hold them, its forward never uses them."""
        return [m.bias for m in self.modules() if isinstance(m, RMSInstanceNorm)]

    # -- forward -------------------------------------------------------------
    def _inputs(self, x: Any, field_ids: Any, bcs: Any) -> ModelInputs:
        """Checked inputs (`physviz.model.inputs`), the grid checked against the patch size."""
        generic = [self.registry.lookup(GENERIC)] if GENERIC in self.registry else []
        checked = check_inputs(x, field_ids, bcs, n_spatial_dims=self.config.n_spatial_dims,
                               n_slots=self.config.n_states, dtype=self.space_bag.weight.dtype, shared=generic)
        check_patch_grid(checked.x.shape[3:], self.config.patch_size, self.config.pad_to_patch)
        return checked

    def forward(self, x: torch.Tensor, field_ids: Any, bcs: Any) -> torch.Tensor:
        """Next frame (B, C, *S) from x (B, T, C, *S), field registry indices (C,) and periodic flags.

        A 3D model also takes 2D fields (B, T, C, H, W), with bcs for x and y: its stem uses
        the 3D kernels summed over z (what they compute on fields constant along z, as Walrus
        treats singleton axes), the blocks attend over the 2D token grid, and the decoder uses
        its kernels averaged over z. So one model trains on 2D and 3D data. In training with
        ``config.jitter`` each call shifts the patch grid at random.
        """
        x, ids, bc = self._inputs(x, field_ids, bcs)
        shifts = None
        if self.training and self.config.jitter:
            shifts = training_shifts(len(bc), self.config.patch_size)
        return self._forward(x, ids, bc, shifts)

    def forward_mpp(self, x: torch.Tensor, state_labels: Any, bcs: Any) -> torch.Tensor:
        """MPP's calling convention: x (T, B, C, H, W), state_labels (B, C), bcs (B, 2) -> (B, C, H, W)."""
        b = torch.as_tensor(bcs)
        b = b[0] if b.dim() == 2 else b
        return self.forward(x.transpose(0, 1), state_labels, b.flip(0))

    def predict(self, x: torch.Tensor, field_ids: Any, bcs: Any, *, ensemble: int = 1,
                jitter_seed: int | None = None, shifts: Sequence[Sequence[int]] | None = None) -> torch.Tensor:
        """Next frame, averaged over an ensemble of patch-jittered passes.

        Jitter applies when ``shifts`` or ``jitter_seed`` is given, ``ensemble > 1``, or
        ``config.jitter`` is on. Each member draws one shift in [0, patch) per axis from a
        generator seeded with ``jitter_seed`` (random if None): periodic axes are rolled,
        others padded by the shift on the low side (and up to a patch multiple on the high
        side), and the prediction is cropped/rolled back. ``shifts`` gives the per-member
        shifts explicitly. Without jitter it is the plain forward pass.
        """
        x, ids, bc = self._inputs(x, field_ids, bcs)
        members = ensemble_shifts(len(bc), self.config.patch_size, ensemble=ensemble, jitter_seed=jitter_seed,
                                  shifts=shifts, jitter=self.config.jitter)
        if members is None:
            return self._forward(x, ids, bc, None)
        return ensemble_mean(lambda m: self._forward(x, ids, bc, m), members)

    def _forward(self, x: torch.Tensor, ids: torch.Tensor, bc: tuple[int, ...], shifts: Sequence[int] | None) -> torch.Tensor:
        """The model on checked inputs; `shifts` jitters the patch grid (None: no jitter)."""
        cfg = self.config
        B, T, C, *S = x.shape
        n = len(S)
        with torch.no_grad():
            mean, centred, var = _input_moments(x, n)
            std = var.sqrt() + 1e-7
            # the unit of the predicted change: the field's spread, or (Walrus) its typical step in the context
            unit = std[:, 0]
            if cfg.step_scale == "context" and T > 1:
                unit = _step_rms(x, n) + STEP_FLOOR * std[:, 0]
        # the centred input is reused unless a gradient must flow back to x
        xn = (x - mean).div_(std) if x.requires_grad else centred.div_(std)
        plan = plan_padding(S, bc, cfg.patch_size, shifts)
        xp = pad(xn, plan, cfg.pad_mode) if plan is not None else xn
        Sp = xp.shape[3:]
        z = self.embed(xp.reshape(B * T, C, *Sp), self.space_bag, ids)
        z = z.reshape(B, T, *z.shape[1:])
        use_ckpt = self.gradient_checkpointing and torch.is_grad_enabled()
        last = len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            if use_ckpt:
                z = checkpoint(blk, z, bc, i == last, use_reentrant=False)
            else:
                z = blk(z, bc, i == last)
        y = self.debed(z[:, -1], ids)  # (B, C, *Sp), normalised units
        if plan is not None:
            y = unpad(y, plan)
        if self.refine is not None:
            step = None
            if cfg.refine_step:  # the context's last change, in the unit of the predicted one
                step = (x[:, -1] - x[:, -2]) / unit if T > 1 else torch.zeros_like(y)
            y = self.refine(xn, y, ids, bc, step)
        base = x[:, -1] if cfg.delta_prediction else mean[:, 0]
        return torch.addcmul(base, y, unit)

    def extra_repr(self) -> str:
        c = self.config
        return (f"embed_dim={c.embed_dim}, heads={c.num_heads}, blocks={c.processor_blocks}, n_states={c.n_states}, "
                f"patch={c.patch_size}, {c.n_spatial_dims}D")


def _default_registry(n_states: int) -> FieldRegistry:
    """MPP's registry for 12 slots, ours for 20 or more, else an empty one."""
    from physviz.model.registry import PHYSVIZ_FIELDS

    if n_states == 12:
        return FieldRegistry.mpp()
    if n_states >= len(PHYSVIZ_FIELDS):
        return FieldRegistry.physviz(n_slots=n_states)
    return FieldRegistry([], n_slots=n_states, name="custom")
