"""Weight surgery: new field slots, a grafted refiner, freezing presets. Each is an explicit step on a model.

- `ensure_field_slots(model, names)`: registry indices of a field set, appending unknown
  fields to the registry and widening the model when the registry outgrows it.
- `expand_fields(model, k)`: `k` more field slots (MPP's ``expand_projections``; Walrus: encoder
  columns and decoder rows).
- `average_slot(model, slot, sources)`: start a slot from the mean of others (the generic slot).
- `add_refiner(model, width)`: graft a fresh full-resolution refiner.
- `freeze(model, mode)`: MPP's fine-tuning presets ("none", "processor", "middle").

The functions replace parameters: build the optimizer after calling them.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import nn

from physviz.errors import ParameterError
from physviz.model.avit import AViT
from physviz.model.family import PhysicsModel
from physviz.model.layers import SubsampledLinear
from physviz.model.refine import PixelRefiner
from physviz.model.stem import new_head

FreezeMode = Literal["none", "processor", "middle"]
FREEZE_MODES: tuple[str, ...] = get_args(FreezeMode)


def _avit(model: PhysicsModel, what: str) -> AViT:
    """The model as an AViT, or a clear error for a family this step does not know."""
    if not isinstance(model, AViT):
        raise ParameterError(f"{what} works on AViT models; this model is of family {model.family!r}.")
    return model


def ensure_field_slots(model: PhysicsModel, names: Sequence[str], family: str | None = None) -> list[int]:
    """Registry indices of `names` (one family preferred); unknown fields get new registry entries.

    When the registry then holds more slots than the model, the model is widened by the
    difference (`expand_fields`), so every returned index has an embedding.
    """
    registry = model.registry
    ids = registry.lookup_fields(list(names), family=family, append=True)
    grow = registry.n_slots - model.n_field_slots
    if grow > 0:
        expand_fields(model, grow)
    return ids


def expand_fields(model: PhysicsModel, k: int) -> None:
    """Add `k` embedding slots (field embedding columns and decoder head rows), keeping old ones.

    Like MPP's ``expand_projections``; new slots get a fresh default init. As in MPP,
    the embedding scale sqrt(n_states / n_fields) follows the new slot count, so
    predictions for old fields shift slightly until fine-tuned. The registry's slot count
    follows the model's.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ParameterError(f"expand_fields(k={k!r}): k must be a whole number of at least 1.")
    if model.family == "walrus":
        _expand_walrus(model, k)
        return
    m = _avit(model, "expand_fields")
    old = m.config.n_states
    bag = m.space_bag
    dev, dtype = bag.weight.device, bag.weight.dtype
    new_bag = SubsampledLinear(old + k, bag.dim_out).to(device=dev, dtype=dtype)
    head_w, head_b = new_head(m.debed.out_kernel.shape[0], old + k, m.debed.k_out, m.config.n_spatial_dims)
    head_w, head_b = head_w.to(device=dev, dtype=dtype), head_b.to(device=dev, dtype=dtype)
    with torch.no_grad():
        new_bag.weight[:, :old] = bag.weight
        new_bag.bias.copy_(bag.bias)
        head_w[:, :old] = m.debed.out_kernel
        head_b[:old] = m.debed.out_bias
    m.space_bag = new_bag
    m.debed.out_kernel = nn.Parameter(head_w)
    m.debed.out_bias = nn.Parameter(head_b)
    if m.refine is not None:
        m.refine.expand(k)
    m.config = m.config.replace(n_states=old + k)
    registry = m.registry
    registry.n_slots = max(registry.n_slots, old + k)


def _expand_walrus(model: PhysicsModel, k: int) -> None:
    """Walrus: `k` more columns of each encoder's first kernel (``embed.*.proj1.weight``) and rows of each decoder's output (``debed.*.proj2``).

    New columns and rows get the convolutions' default init; the field-embedding scale
    sqrt((n_states - 3) / n_fields) follows the new slot count.
    """
    m = model
    old = int(m.config.n_states)
    for enc in m.embed.values():  # type: ignore[attr-defined]
        conv = enc.proj1
        w = conv.weight
        fresh = nn.Conv3d(old + k, conv.out_channels, conv.kernel_size, bias=False).to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            fresh.weight[:, :old] = w
        conv.in_channels = old + k
        conv.weight = nn.Parameter(fresh.weight.detach(), requires_grad=w.requires_grad)
    for dec in m.debed.values():  # type: ignore[attr-defined]
        conv = dec.proj2
        w = conv.weight
        fresh_t = nn.ConvTranspose3d(conv.in_channels, old + k, conv.kernel_size).to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            fresh_t.weight[:, :old] = w
            fresh_t.bias[:old] = conv.bias
        conv.out_channels = old + k
        conv.weight = nn.Parameter(fresh_t.weight.detach(), requires_grad=w.requires_grad)
        conv.bias = nn.Parameter(fresh_t.bias.detach(), requires_grad=conv.bias.requires_grad)
    m.config = m.config.replace(n_states=old + k)
    registry = m.registry
    registry.n_slots = max(registry.n_slots, old + k)


def _slot_params(model: PhysicsModel) -> list[tuple[torch.Tensor, int]]:
    """The model's parameters indexed by field slot, each with its slot axis."""
    if model.family == "walrus":
        out = [(enc.proj1.weight, 1) for enc in model.embed.values()]  # type: ignore[attr-defined]
        for dec in model.debed.values():  # type: ignore[attr-defined]
            out += [(dec.proj2.weight, 1), (dec.proj2.bias, 0)]
        return out
    m = _avit(model, "average_slot")
    out = [(m.space_bag.weight, 1), (m.debed.out_kernel, 1), (m.debed.out_bias, 0)]
    if m.refine is not None:
        out += [(m.refine.w_in, 2), (m.refine.w_out, 0), (m.refine.b_out, 0)]
    return out


def average_slot(model: PhysicsModel, slot: int, sources: Sequence[int]) -> None:
    """Set field slot `slot` to the mean of the `sources` slots' (every parameter indexed by field slot: AViT's
    embedding columns, decoder head rows and refiner kernels; Walrus's first encoder and last decoder kernels)."""
    idx = sorted({int(i) for i in sources})
    lo = 3 if model.family == "walrus" else 0  # Walrus slots 0-2 are its boundary flags
    n = int(model.n_field_slots)
    if not idx or not all(lo <= i < n for i in [*idx, slot]):
        raise ParameterError(f"average_slot: slot {slot} and sources {idx} must be field slots of this model "
                             f"({lo}..{n - 1}), with at least one source.")
    with torch.no_grad():
        for p, axis in _slot_params(model):
            p.select(axis, slot).copy_(p.index_select(axis, torch.tensor(idx, device=p.device)).mean(axis))


def add_refiner(model: PhysicsModel, width: int) -> None:
    """Graft a fresh full-resolution refiner (`PixelRefiner`) of `width` channels; predictions are unchanged until it trains."""
    m = _avit(model, "add_refiner")
    if width == m.config.refine_width:
        return
    if m.refine is not None:
        raise ParameterError(
            f"This model already has a refiner of width {m.config.refine_width}; its width is fixed by its weights."
        )
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ParameterError(f"add_refiner(width={width!r}): the width must be a positive whole number.")
    w = m.space_bag.weight
    m.refine = PixelRefiner(m.config.n_states, width, m.config.n_spatial_dims).to(device=w.device, dtype=w.dtype)
    m.refine.train(m.training)
    m.config = m.config.replace(refine_width=width)


def freeze(model: PhysicsModel, mode: FreezeMode) -> None:
    """Set which parameters train: "none" all (but the unused ones), "processor" all but the processor, "middle" only the field layers.

    "middle" trains what maps fields in and out (MPP: field embedding and decoder head; here
    also the refiner), "processor" adds the stem and the decoder's shared layers.
    """
    if mode not in FREEZE_MODES:
        raise ParameterError(f"freeze mode {mode!r} is not one of {', '.join(FREEZE_MODES)}.")
    unused = {id(p) for p in model.unused_parameters()}
    if mode == "middle":
        train = {id(p) for p in model.field_parameters()}
    else:
        frozen = {id(p) for p in model.processor_parameters()} if mode == "processor" else set()
        train = {id(p) for p in model.parameters()} - frozen - unused
    for p in model.parameters():
        p.requires_grad = id(p) in train
