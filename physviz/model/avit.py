"""The MPP AViT space-time transformer, 2D and 3D in one class, with Walrus-style options.

Layout: ``model(x, field_ids, bcs)`` takes ``x`` of shape (B, T, C, *spatial), batch
first and time second, ``field_ids`` (C,) registry indices (one field set per batch,
as in MPP) and ``bcs`` (n_spatial_dims,) with ``bcs[i] = 1`` when spatial axis i is
periodic; it returns the next frame (B, C, *spatial).

``forward_mpp(x, state_labels, bcs)`` takes MPP's own layout (T, B, C, H, W),
state_labels (B, C) and bcs (B, 2), where MPP applies ``bcs[:, 0]`` to its last axis
(W) and ``bcs[:, 1]`` to H; so ``forward_mpp`` passes ``bcs[0].flip(0)`` to ``forward``.

Steps (MPP's, REFERENCE A): per-sample, per-field normalisation over time and space
(unbiased std + 1e-7, statistics held constant for the gradient); field embedding and
hMLP stem per frame; blocks of time attention then axial space attention; hMLP
decoder with the field-specific head; de-normalisation of the last frame. Only the
last frame is returned, so the last block computes only the last frame's time-attention
queries and space block, and only the last frame is decoded (the result is the same).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from physviz.errors import ParameterError, SchemaError, UnknownFieldError
from physviz.model.attention import SpaceTimeBlock
from physviz.model.config import ModelConfig
from physviz.model.layers import RMSInstanceNorm, SubsampledLinear
from physviz.model.refine import PixelRefiner, refiner_flops
from physviz.model.registry import FieldRegistry
from physviz.model.runtime import tune_cpu_allocator
from physviz.model.stem import HMLPOutput, HMLPStem, new_head

AXES = ("x", "y", "z")


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


class AViT(nn.Module):
    """MPP's Axial ViT: RevIN, field embedding, hMLP stem, space-time blocks, field-specific decoder."""

    def __init__(self, config: ModelConfig | str | None = None, registry: FieldRegistry | str | None = None,
                 **overrides: Any) -> None:
        super().__init__()
        if isinstance(config, str):
            config = ModelConfig.preset(config)
        cfg = config if config is not None else ModelConfig()
        if overrides:
            cfg = cfg.replace(**overrides)
        cfg.validate()
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
        self.metadata: dict[str, Any] = {}
        self._registry: FieldRegistry | None = None
        self.registry = registry if registry is not None else _default_registry(cfg.n_states)

    # -- registry ------------------------------------------------------------
    @property
    def registry(self) -> FieldRegistry:
        """The field registry (field name -> embedding index) bound to this model."""
        assert self._registry is not None
        return self._registry

    @registry.setter
    def registry(self, value: FieldRegistry | str) -> None:
        reg = FieldRegistry.preset(value) if isinstance(value, str) else value
        if reg.n_slots > self.config.n_states:
            raise ParameterError(
                f"Field registry {reg.name!r} has {reg.n_slots} slots but the model only {self.config.n_states}; "
                f"widen the model first with model.expand_fields({reg.n_slots - self.config.n_states})."
            )
        reg.n_slots = self.config.n_states
        if self._registry is not None:
            self._registry.unbind(self)
        reg.bind(self)
        self._registry = reg

    def _registry_grew(self, k: int) -> None:
        """Registry callback: a field was added beyond the model's slots."""
        self.expand_fields(k)

    def field_ids(self, names: Sequence[str], family: str | None = None, append: bool = False) -> torch.Tensor:
        """Registry indices of field names as a LongTensor on the model's device."""
        ids = self.registry.lookup_fields(list(names), family=family, append=append)
        return torch.tensor(ids, dtype=torch.long, device=self.space_bag.weight.device)

    def expand_fields(self, k: int) -> None:
        """Add `k` embedding slots (field embedding columns and decoder head rows), keeping old ones.

        Like MPP's ``expand_projections``; new slots get a fresh default init. As in MPP,
        the embedding scale sqrt(n_states / n_fields) follows the new slot count, so
        predictions for old fields shift slightly until fine-tuned. The parameters are
        replaced: build the optimizer after calling this.
        """
        if k < 1:
            raise ParameterError(f"expand_fields(k={k}): k must be at least 1.")
        old = self.config.n_states
        bag = self.space_bag
        dev, dtype = bag.weight.device, bag.weight.dtype
        new_bag = SubsampledLinear(old + k, bag.dim_out).to(device=dev, dtype=dtype)
        head_w, head_b = new_head(self.debed.out_kernel.shape[0], old + k, self.debed.k_out, self.config.n_spatial_dims)
        head_w, head_b = head_w.to(device=dev, dtype=dtype), head_b.to(device=dev, dtype=dtype)
        with torch.no_grad():
            new_bag.weight[:, :old] = bag.weight
            new_bag.bias.copy_(bag.bias)
            head_w[:, :old] = self.debed.out_kernel
            head_b[:old] = self.debed.out_bias
        self.space_bag = new_bag
        self.debed.out_kernel = nn.Parameter(head_w)
        self.debed.out_bias = nn.Parameter(head_b)
        if self.refine is not None:
            self.refine.expand(k)
        self.config = self.config.replace(n_states=old + k)
        if self._registry is not None and self._registry.n_slots < old + k:
            self._registry.n_slots = old + k

    def add_refiner(self, width: int) -> None:
        """Graft a fresh full-resolution refiner (`PixelRefiner`) of `width` channels; predictions are unchanged until it trains."""
        if width == self.config.refine_width:
            return
        if self.refine is not None:
            raise ParameterError(
                f"This model already has a refiner of width {self.config.refine_width}; its width is fixed by its weights."
            )
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ParameterError(f"add_refiner(width={width!r}): the width must be a positive whole number.")
        w = self.space_bag.weight
        self.refine = PixelRefiner(self.config.n_states, width, self.config.n_spatial_dims).to(device=w.device, dtype=w.dtype)
        self.refine.train(self.training)
        self.config = self.config.replace(refine_width=width)

    def reset_refiner(self) -> None:
        """Replace the refiner by a fresh zero-initialised one of the same width (the transformer's prediction is kept)."""
        if self.refine is None:
            raise ParameterError("This model has no refiner to reset (its refine_width is 0).")
        w = self.space_bag.weight
        self.refine = PixelRefiner(self.config.n_states, self.config.refine_width, self.config.n_spatial_dims).to(
            device=w.device, dtype=w.dtype)
        self.refine.train(self.training)

    def copy_field_slots(self, pairs: dict[int, int]) -> None:
        """Give field slot `dst` the per-field weights of slot `src`, for each dst: src in `pairs`.

        Those are the embedding column, the decoder head's kernel and bias and, with a refiner, its
        input kernels and head row: a new field starts as a pretrained analogue (a compressible
        density as a shallow-water height: the shallow-water equations are isentropic gas
        dynamics with gamma 2) instead of from a random init.
        """
        n = self.config.n_states
        for dst, src in pairs.items():
            for slot in (dst, src):
                if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < n:
                    raise ParameterError(f"copy_field_slots: slot {slot!r} is not one of this model's {n} field slots.")
        with torch.no_grad():
            for dst, src in pairs.items():
                self.space_bag.weight[:, dst] = self.space_bag.weight[:, src]
                self.debed.out_kernel[:, dst] = self.debed.out_kernel[:, src]
                self.debed.out_bias[dst] = self.debed.out_bias[src]
                if self.refine is not None:
                    self.refine.w_in[:, :, dst] = self.refine.w_in[:, :, src]
                    self.refine.w_out[dst] = self.refine.w_out[src]
                    self.refine.b_out[dst] = self.refine.b_out[src]

    def blend_fresh(self, fraction: float, seed: int = 0) -> None:
        """Move every parameter `fraction` of the way to a fresh init of the same config (a softened warm start).

        ``fraction`` 0 keeps the weights, 1 is a new model drawn from `seed`. Like Ash & Adams'
        shrink-and-perturb (2020), it gives a pretrained network back some of a fresh one's trainability.
        """
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
            raise ParameterError(f"blend_fresh(fraction={fraction!r}): the fraction must be a number in [0, 1].")
        if fraction == 0:
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            fresh = AViT(self.config)
        new = dict(fresh.named_parameters())
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.lerp_(new[name].to(device=p.device, dtype=p.dtype), float(fraction))

    # -- fine-tuning helpers (MPP's) -----------------------------------------
    def freeze_middle(self) -> None:
        """Train only the field embedding and the decoder head."""
        for p in self.parameters():
            p.requires_grad = False
        for p in (*self.space_bag.parameters(), self.debed.out_kernel, self.debed.out_bias):
            p.requires_grad = True
        if self.refine is not None:
            self.refine.requires_grad_(True)

    def freeze_processor(self) -> None:
        """Train only embedding, stem and decoder."""
        self.unfreeze()
        for p in self.blocks.parameters():
            p.requires_grad = False

    def unfreeze(self) -> None:
        """Train everything (except the RMS-norm biases MPP never uses)."""
        unused = {id(m.bias) for m in self.modules() if isinstance(m, RMSInstanceNorm)}
        for p in self.parameters():
            p.requires_grad = id(p) not in unused

    # -- inputs --------------------------------------------------------------
    def _check(self, x: Any, field_ids: Any, bcs: Any) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
        """Validate and convert inputs; return x, ids (C,) on x's device, bcs as ints."""
        cfg = self.config
        n = cfg.n_spatial_dims
        if not torch.is_tensor(x):
            x = torch.as_tensor(np.asarray(x))
        if not x.is_floating_point():
            x = x.to(self.space_bag.weight.dtype)
        if n == 3 and x.dim() == 5:
            n = 2  # 2D fields through a 3D model
        elif x.dim() != 3 + n:
            names = ", ".join(AXES[:n])
            raise SchemaError(
                f"The model input has shape {tuple(x.shape)} ({x.dim()} dims), but this {n}D model takes "
                f"(batch, time, fields, {names}) = {3 + n} dims; "
                + ("add a batch axis with x[None]." if x.dim() == 2 + n else f"use a {x.dim() - 3}D model for this data.")
            )
        B, T, C, *S = x.shape
        ids = torch.as_tensor(field_ids)
        if ids.dim() == 2:
            if ids.shape[0] > 1 and not bool((ids == ids[:1]).all()):
                raise ParameterError("field_ids differ between samples; every sample of a batch must hold the same fields (as in MPP).")
            ids = ids[0]
        if ids.dim() != 1 or ids.dtype in (torch.float16, torch.float32, torch.float64, torch.bool):
            raise ParameterError(f"field_ids must be a 1-D list of integer registry indices, got shape {tuple(ids.shape)} {ids.dtype}.")
        if len(ids) != C:
            raise ParameterError(
                f"field_ids names {len(ids)} fields but the input has {C} field channels (dim 2 of shape {tuple(x.shape)}); "
                "give one registry index per channel."
            )
        id_list = ids.tolist()
        bad = [i for i in id_list if not 0 <= i < cfg.n_states]
        if bad:
            raise UnknownFieldError(
                f"field_ids {bad} are outside the model's {cfg.n_states} embedding slots (0..{cfg.n_states - 1}); "
                "add fields with model.registry.add(name)."
            )
        if len(set(id_list)) != len(id_list):
            raise ParameterError(f"field_ids {id_list} repeat a field; each channel must be a different field.")
        b = torch.as_tensor(bcs)
        if b.dim() == 1:
            b = b[None]
        if b.dim() != 2 or b.shape[1] != n or b.shape[0] not in (1, B):
            raise ParameterError(
                f"bcs must hold one flag per spatial axis ({n} for this model), or a (batch, {n}) array; "
                f"got shape {tuple(torch.as_tensor(bcs).shape)}."
            )
        if b.shape[0] > 1 and not bool((b == b[:1]).all()):
            raise ParameterError("bcs differ between samples; every sample of a batch must share boundary conditions.")
        bc = tuple(int(v) for v in b[0].tolist())
        if any(v not in (0, 1) for v in bc):
            raise ParameterError(f"bcs {list(bc)} must be 1 (periodic) or 0 (not periodic) per spatial axis.")
        p = cfg.patch_size
        off = [AXES[i] for i, s in enumerate(S) if s % p]
        if off and not cfg.pad_to_patch:
            sizes = "x".join(map(str, S))
            down = "x".join(str(max(p, s // p * p)) for s in S)
            up = "x".join(str(-(-s // p) * p) for s in S)
            raise ParameterError(
                f"Resolution {sizes} is not a multiple of the patch size {p} along {', '.join(off)}; "
                f"set pad_to_patch=True in the model config (model.config.pad_to_patch) to pad and crop back, "
                f"or resample to {down} or {up}."
            )
        if T < 1 or any(s < 1 for s in S):
            raise SchemaError(f"The model input has an empty axis: shape {tuple(x.shape)}.")
        return x, ids.to(device=x.device, dtype=torch.long), bc

    # -- forward -------------------------------------------------------------
    def forward(self, x: torch.Tensor, field_ids: Any, bcs: Any) -> torch.Tensor:
        """Next frame (B, C, *S) from x (B, T, C, *S), field registry indices (C,) and periodic flags.

        A 3D model also takes 2D fields (B, T, C, H, W), with bcs for x and y: its stem uses
        the 3D kernels summed over z (what they compute on fields constant along z, as Walrus
        treats singleton axes), the blocks attend over the 2D token grid, and the decoder uses
        its kernels averaged over z. So one model trains on 2D and 3D data.
        """
        x, ids, bc = self._check(x, field_ids, bcs)
        if x.device.type == "cpu" and not torch.is_grad_enabled():
            tune_cpu_allocator()
        shifts = None
        if self.training and self.config.jitter:
            shifts = torch.randint(0, self.config.patch_size, (len(bc),)).tolist()
        return self._forward(x, ids, bc, shifts)

    def forward_mpp(self, x: torch.Tensor, state_labels: Any, bcs: Any) -> torch.Tensor:
        """MPP's calling convention: x (T, B, C, H, W), state_labels (B, C), bcs (B, 2) -> (B, C, H, W)."""
        b = torch.as_tensor(bcs)
        b = b[0] if b.dim() == 2 else b
        return self.forward(x.transpose(0, 1), state_labels, b.flip(0))

    def predict(self, x: torch.Tensor, field_ids: Any, bcs: Any, *, jitter_seed: int | None = None,
                ensemble: int | None = None, shifts: Sequence[Sequence[int]] | None = None) -> torch.Tensor:
        """Next frame, averaged over an ensemble of patch-jittered passes.

        Jitter applies when ``shifts`` or ``jitter_seed`` is given, ``ensemble > 1``, or
        ``config.jitter`` is on. Each member draws one shift in [0, patch) per axis from a
        generator seeded with ``jitter_seed`` (``config.jitter_seed`` if None; random if
        both are None): periodic axes are rolled, others padded by the shift on the low
        side (and up to a patch multiple on the high side), and the prediction is
        cropped/rolled back. ``shifts`` gives the per-member shifts explicitly.
        """
        cfg = self.config
        x, ids, bc = self._check(x, field_ids, bcs)
        n, p = len(bc), cfg.patch_size
        k = cfg.ensemble if ensemble is None else int(ensemble)
        if k < 1:
            raise ParameterError(f"ensemble={k} must be at least 1.")
        seed = jitter_seed if jitter_seed is not None else cfg.jitter_seed
        if shifts is not None:
            members = [[int(s) for s in m] for m in shifts]
            if not members or any(len(m) != n for m in members):
                raise ParameterError(f"shifts must be a list of ensemble members, each with {n} per-axis shifts.")
        elif jitter_seed is not None or k > 1 or cfg.jitter:
            gen = torch.Generator()
            if seed is None:
                gen.seed()
            else:
                gen.manual_seed(int(seed))
            members = torch.randint(0, p, (k, n), generator=gen).tolist()
        else:
            return self._forward(x, ids, bc, None)
        out = None
        for m in members:
            y = self._forward(x, ids, bc, m)
            out = y if out is None else out + y
        return out / len(members)

    def _forward(self, x: torch.Tensor, ids: torch.Tensor, bc: tuple[int, ...], shifts: Sequence[int] | None) -> torch.Tensor:
        """The model on checked inputs; `shifts` jitters the patch grid (None: no jitter)."""
        cfg = self.config
        B, T, C, *S = x.shape
        n = len(S)
        with torch.no_grad():
            mean, centred, var = _input_moments(x, n)
            std = var.sqrt() + 1e-7
        # the centred input is reused unless a gradient must flow back to x
        xn = (x - mean).div_(std) if x.requires_grad else centred.div_(std)
        plan = self._pad_plan(S, bc, shifts)
        xp = self._pad(xn, plan) if plan is not None else xn
        Sp = xp.shape[3:]
        z = self.embed(xp.reshape(B * T, C, *Sp), self.space_bag, ids)
        z = z.reshape(B, T, *z.shape[1:])
        use_ckpt = cfg.gradient_checkpointing and torch.is_grad_enabled()
        last = len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            if use_ckpt:
                z = checkpoint(blk, z, bc, i == last, use_reentrant=False)
            else:
                z = blk(z, bc, i == last)
        y = self.debed(z[:, -1], ids)  # (B, C, *Sp), normalised units
        if plan is not None:
            y = self._unpad(y, plan)
        if self.refine is not None:
            y = self.refine(xn, y, ids, bc)
        base = x[:, -1] if cfg.delta_prediction else mean[:, 0]
        return torch.addcmul(base, y, std[:, 0])

    # -- padding and jitter ----------------------------------------------------
    def _pad_plan(self, S: Sequence[int], bc: Sequence[int], shifts: Sequence[int] | None) -> list[tuple[bool, int, int, int]] | None:
        """Per axis (periodic, roll, pad_low, pad_high); None when nothing is to be done."""
        p = self.config.patch_size
        plan = []
        for i, (size, periodic) in enumerate(zip(S, bc)):
            s = 0 if shifts is None else int(shifts[i]) % p
            if periodic:
                plan.append((True, s, 0, (-size) % p))
            else:
                plan.append((False, 0, s, (-(size + s)) % p))
        return None if all(t[1:] == (0, 0, 0) for t in plan) else plan

    def _pad(self, x: torch.Tensor, plan: list[tuple[bool, int, int, int]]) -> torch.Tensor:
        """Roll periodic axes and pad every axis of (B, T, C, *S) as planned (wrap where periodic)."""
        mode = self.config.pad_mode
        for i, (periodic, roll, low, high) in enumerate(plan):
            dim = 3 + i
            size = x.shape[dim]
            if roll:
                x = torch.roll(x, roll, dims=dim)
            if not (low or high):
                continue
            parts = []
            if periodic:
                if high > size:
                    raise ParameterError(f"Axis {AXES[i]} has {size} points, too few to wrap-pad by {high}.")
                parts = [x, x.narrow(dim, 0, high)]
            elif mode == "reflect":
                if max(low, high) >= size:
                    raise ParameterError(
                        f"Axis {AXES[i]} has {size} points, too few to reflect-pad by {max(low, high)}; "
                        "use pad_mode='zeros' in the model config."
                    )
                if low:
                    parts.append(x.narrow(dim, 1, low).flip(dim))
                parts.append(x)
                if high:
                    parts.append(x.narrow(dim, size - 1 - high, high).flip(dim))
            else:
                shape = list(x.shape)
                if low:
                    shape[dim] = low
                    parts.append(x.new_zeros(shape))
                parts.append(x)
                if high:
                    shape[dim] = high
                    parts.append(x.new_zeros(shape))
            x = torch.cat(parts, dim=dim)
        return x

    def _unpad(self, y: torch.Tensor, plan: list[tuple[bool, int, int, int]]) -> torch.Tensor:
        """Undo _pad on a prediction (B, C, *S)."""
        for i, (_periodic, roll, low, high) in enumerate(plan):
            dim = 2 + i
            if low or high:
                y = y.narrow(dim, low, y.shape[dim] - low - high)
            if roll:
                y = torch.roll(y, -roll, dims=dim)
        return y

    def extra_repr(self) -> str:
        c = self.config
        return (f"embed_dim={c.embed_dim}, heads={c.num_heads}, blocks={c.processor_blocks}, n_states={c.n_states}, "
                f"patch={c.patch_size}, {c.n_spatial_dims}D")

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())


def _default_registry(n_states: int) -> FieldRegistry:
    """MPP's registry for 12 slots, ours for 20 or more, else an empty one."""
    from physviz.model.registry import PHYSVIZ_FIELDS

    if n_states == 12:
        return FieldRegistry.mpp()
    if n_states >= len(PHYSVIZ_FIELDS):
        return FieldRegistry.physviz(n_slots=n_states)
    return FieldRegistry([], n_slots=n_states, name="custom")


def flops(config: ModelConfig, T: int, spatial: Sequence[int], n_fields: int, batch: int = 1,
          executed: bool = True) -> int:
    """Multiply-add FLOPs (2 per MAC) of one forward pass, matmuls and attention only.

    ``executed=True`` counts what this implementation runs (fused embedding, last block
    and decoder on the last frame only); False counts MPP's formulation (embedding at
    full resolution, every frame through every block and the decoder). Attention is
    counted as axial (2 * 2 * L * d per token and axis), although frames of at most 64
    tokens run it as a dense masked product (more arithmetic, less time).

    Per block and frame of N tokens (d = embed_dim, m = MLP width, T frames, L_a axis
    lengths): time attention 8Nd^2 + 4NTd, space attention 8Nd^2 + 4Nd*sum(L_a),
    MLP 4Ndm.
    """
    d, q, n = config.embed_dim, config.embed_dim // 4, config.n_spatial_dims
    s1, s2, s3 = config.stem_strides
    pix = math.prod(spatial)
    tok = pix // config.patch_size**n
    frames = batch * T
    mlp = config.mlp_dim

    def stem(frames_: int) -> int:
        f = 0
        if executed:
            f += 2 * (pix // s1**n) * (n_fields * s1**n) * q
        else:
            f += 2 * pix * n_fields * q + 2 * (pix // s1**n) * (q * s1**n) * q
        f += 2 * (pix // (s1 * s2) ** n) * (q * s2**n) * q
        f += 2 * tok * (q * s3**n) * d
        return f * frames_

    def decoder(frames_: int) -> int:
        f = 2 * tok * d * q * s3**n + 2 * (tok * s3**n) * q * q * s2**n + 2 * (pix // s1**n) * q * n_fields * s1**n
        return f * frames_

    def temporal(tq: int) -> int:
        qkv = 2 * batch * tok * d * d * (2 * T + tq)  # keys and values for every frame, queries for tq
        att = 2 * 2 * batch * tok * tq * T * d
        out = 2 * batch * tq * tok * d * d
        return qkv + att + out

    def spatial_block(fr: int) -> int:
        side = [s // config.patch_size for s in spatial]
        att = sum(2 * 2 * fr * tok * L * d for L in side)
        return fr * tok * (2 * d * 3 * d + 2 * d * d + 2 * 2 * d * mlp) + att

    total = stem(frames)
    blocks = config.processor_blocks
    if executed:
        total += (blocks - 1) * (temporal(T) + spatial_block(frames)) + temporal(1) + spatial_block(batch)
        total += decoder(batch)
    else:
        total += blocks * (temporal(T) + spatial_block(frames)) + decoder(frames)
    if config.refine_width:
        total += batch * refiner_flops(config.refine_width, n_fields, spatial)
    return int(total)
