"""Walrus's variable-stride encoder and transposed decoder (one weight set per dimensionality), and its RMS group norm.

Both hold 3D kernels and run on the axes longer than 1 only: on a length-1 axis the
encoder sums its kernel (what the 3D kernel computes on a field constant along that axis)
and the decoder averages it, so 2D fields run through the same Conv3d-shaped weights.
The encoder's first kernel takes the selected field columns of its weight (the field
embedding), with the field columns and the bias-correction column scaled by
``sqrt((n_states - 3) / n_fields)`` and no bias. The decoder selects the output channels
of the fields. On a periodic axis the decoder's transposed convolutions wrap: the tokens
are padded around by enough tokens to cover a kernel, and the result is cropped to the
padded input's extent (the public code pads ``(k - s) // s`` tokens, which is one token
short when the stride does not divide ``k - s``: strides 6, i.e. axis lengths 384 and 768
in 2D; there its output is 4 points shorter than its input).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from physviz.model.walrus.padding import AxisPlan, wrap_pad

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class RMSGroupNorm(nn.Module):
    """Per-channel RMS normalisation over space (``F.rms_norm`` with its default eps), times a weight, no bias.

    ``groups`` is kept for the config: normalising each channel over space does not depend on it.
    """

    def __init__(self, groups: int, channels: int) -> None:
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, C, *space) channels first."""
        y = F.rms_norm(x, x.shape[2:])
        return y * self.weight.view(-1, *([1] * (x.dim() - 2)))

    def channels_last(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, tokens, C) channels last: each channel normalised over the tokens."""
        ms = z.square().mean(dim=-2, keepdim=True)
        return z * torch.rsqrt(ms + torch.finfo(z.dtype).eps) * self.weight

    def extra_repr(self) -> str:
        return f"{self.groups}, {self.weight.numel()}"


def _activation(name: str) -> nn.Module:
    return nn.GELU() if name == "gelu" else nn.SiLU()


def _fold_singletons(weight: torch.Tensor, plans: Sequence[AxisPlan], reduce: str) -> torch.Tensor:
    """Drop the kernel axes of length-1 spatial axes: summed (encoder) or averaged (decoder)."""
    dims = [2 + i for i, p in enumerate(plans) if p.singleton]
    if not dims:
        return weight
    w = weight.sum(dim=dims) if reduce == "sum" else weight.mean(dim=dims)
    return w


def _squeeze(x: torch.Tensor, plans: Sequence[AxisPlan]) -> torch.Tensor:
    keep = [p.length if not p.singleton else None for p in plans]
    return x.reshape(*x.shape[:2], *[x.shape[2 + i] for i, k in enumerate(keep) if k is not None])


def _unsqueeze(x: torch.Tensor, plans: Sequence[AxisPlan]) -> torch.Tensor:
    it = iter(x.shape[2:])
    return x.reshape(*x.shape[:2], *[1 if p.singleton else next(it) for p in plans])


class Encoder(nn.Module):
    """Two strided convolutions with RMS group norms: fields (+3 flag channels) -> tokens of `hidden` channels."""

    def __init__(self, n_states: int, inner: int, hidden: int, kernels: Sequence[Sequence[int]], groups: int,
                 activation: str = "silu") -> None:
        super().__init__()
        self.kernels = [tuple(int(v) for v in k) for k in kernels]
        self.proj1 = nn.Conv3d(n_states, inner, tuple(k[0] for k in self.kernels), bias=False)
        self.norm1 = RMSGroupNorm(groups, inner)
        self.proj2 = nn.Conv3d(inner, hidden, tuple(k[1] for k in self.kernels), bias=False)
        self.norm2 = RMSGroupNorm(groups, hidden)
        self.act = _activation(activation)

    def field_weight(self, labels: torch.Tensor) -> torch.Tensor:
        """The first kernel's columns of `labels` (fields, then bias correction, closed, open), fields rescaled."""
        w = self.proj1.weight.index_select(1, labels)
        n_all, n_sel = self.proj1.weight.shape[1], len(labels)
        scale = math.sqrt((n_all - 3) / (n_sel - 3))
        factors = torch.ones(n_sel, dtype=w.dtype, device=w.device)
        factors[:-2] = scale
        return w * factors.view(1, -1, 1, 1, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor, plans: Sequence[AxisPlan]) -> torch.Tensor:
        """x (N, C + 3, *3 padded axes) -> tokens (N, hidden, *3 token axes)."""
        nd = sum(not p.singleton for p in plans)
        conv = _CONV[nd]
        s1 = tuple(p.strides[0] for p in plans if not p.singleton)
        s2 = tuple(p.strides[1] for p in plans if not p.singleton)
        w1 = _fold_singletons(self.field_weight(labels), plans, "sum")
        h = conv(_squeeze(x, plans), w1, None, s1)
        h = self.act(self.norm1(h))
        w2 = _fold_singletons(self.proj2.weight, plans, "sum")
        h = conv(h, w2, None, s2)
        h = self.act(self.norm2(h))
        return _unsqueeze(h, plans)


def _periodic_transpose(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                        strides: tuple[int, ...], periodic: Sequence[bool]) -> torch.Tensor:
    """Transposed convolution (kernel = weight's trailing dims) that wraps on the periodic axes.

    A periodic axis of L tokens is padded around by ceil((k - s) / s) tokens and the result
    cropped to L * s + k - s points starting at the first unpadded token's output.
    """
    ks = weight.shape[2:]
    pads = []
    for a, per in enumerate(periodic):
        k, s = int(ks[a]), strides[a]
        p = -(-(k - s) // s) if per and k > s else 0
        pads.append(p)
        if p:
            x = wrap_pad(x, 2 + a, p)
    lengths = [x.shape[2 + a] - 2 * p for a, p in enumerate(pads)]
    y = _CONV_T[len(strides)](x, weight, bias, strides)
    for a, p in enumerate(pads):
        if p:
            k, s = int(ks[a]), strides[a]
            y = y.narrow(2 + a, p * s, lengths[a] * s + k - s)
    return y


class Decoder(nn.Module):
    """Two strided transposed convolutions (mirroring the encoder): tokens -> the fields' channels."""

    def __init__(self, hidden: int, inner: int, n_states: int, kernels: Sequence[Sequence[int]], groups: int,
                 activation: str = "silu") -> None:
        super().__init__()
        self.kernels = [tuple(int(v) for v in k) for k in kernels]
        self.proj1 = nn.ConvTranspose3d(hidden, inner, tuple(k[1] for k in self.kernels), bias=False)
        self.norm1 = RMSGroupNorm(groups, inner)
        self.proj2 = nn.ConvTranspose3d(inner, n_states, tuple(k[0] for k in self.kernels))
        self.act = _activation(activation)

    def forward(self, z: torch.Tensor, labels: torch.Tensor, plans: Sequence[AxisPlan]) -> torch.Tensor:
        """z (N, hidden, *3 token axes) -> (N, C, *3 padded axes, periodic ones wrapped)."""
        periodic = [p.periodic for p in plans if not p.singleton]
        s1 = tuple(p.strides[0] for p in plans if not p.singleton)
        s2 = tuple(p.strides[1] for p in plans if not p.singleton)
        w1 = _fold_singletons(self.proj1.weight, plans, "mean")
        h = _periodic_transpose(_squeeze(z, plans), w1, None, s2, periodic)
        h = self.act(self.norm1(h))
        w2 = _fold_singletons(self.proj2.weight.index_select(1, labels), plans, "mean")
        bias = self.proj2.bias.index_select(0, labels) if self.proj2.bias is not None else None
        y = _periodic_transpose(h, w2, bias, s1, periodic)
        return _unsqueeze(y, plans)
