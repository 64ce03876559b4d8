"""hMLP stem (fields -> tokens) and hMLP decoder (tokens -> fields) of the MPP AViT.

Both are stacks of non-overlapping patch convolutions, so they run as reshapes and
matrix products, channels-last. The stem's first convolution is fused with the field
embedding (``space_bag``): both are linear and nothing lies between them, so one
kernel ``W1 . Wbag[:, ids]`` on the raw fields replaces the embedding at full
resolution plus a convolution over embed_dim/4 channels (same result, about 10x fewer
FLOPs at the first stage).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from physviz.model.layers import (
    PatchConv,
    PatchConvTranspose,
    RMSInstanceNorm,
    SubsampledLinear,
    derived,
    inplace_ok,
    unpatchify_channels_first,
    unpatchify_linear,
)


class HMLPStem(nn.Module):
    """Three patch convolutions with RMSInstanceNorm (and GELU between): keys ``in_proj.{0,1,3,4,6,7}``."""

    def __init__(self, dim_in: int, dim: int, strides: tuple[int, int, int], n_spatial: int) -> None:
        super().__init__()
        s1, s2, s3 = strides
        self.n_spatial = n_spatial
        self.in_proj = nn.Sequential(
            PatchConv(dim_in, dim_in, s1, n_spatial),
            RMSInstanceNorm(dim_in),
            nn.GELU(),
            PatchConv(dim_in, dim_in, s2, n_spatial),
            RMSInstanceNorm(dim_in),
            nn.GELU(),
            PatchConv(dim_in, dim, s3, n_spatial),
            RMSInstanceNorm(dim),
        )

    def first_kernel(self, bag: SubsampledLinear, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The fused (embedding, first conv) kernel (dim_in, C, k..) and its bias (dim_in,)."""
        conv: PatchConv = self.in_proj[0]
        w1 = conv.weight  # (q, q, k..)
        scale = bag.scale(len(ids))
        wbag = bag.weight[:, ids] * scale  # (q, C)
        q = w1.shape[0]
        kn = conv.k**self.n_spatial
        # K[o, c, k..] = sum_m w1[o, m, k..] * wbag[m, c]
        kernel = torch.matmul(w1.reshape(q, q, kn).transpose(1, 2), wbag)  # (q, k^n, C)
        kernel = kernel.transpose(1, 2).reshape(q, len(ids), *w1.shape[2:])
        bias = w1.reshape(q, q, kn).sum(-1) @ (bag.bias * scale)
        return kernel, bias

    def forward(self, x: torch.Tensor, bag: SubsampledLinear, ids: torch.Tensor) -> torch.Tensor:
        """Normalised fields (N, C, *S) channels-first -> tokens (N, *S/patch, dim) channels-last.

        Runs channels-first through strided convolutions (oneDNN/cuDNN), then turns the
        small token grid channels-last. A 3D stem given 2D fields uses its kernels summed over
        z: exactly what it computes on fields constant along z (Walrus's singleton-axis rule).
        """
        n = x.dim() - 2
        flat = n < self.n_spatial
        conv = F.conv2d if n == 2 else F.conv3d

        def w(t: torch.Tensor) -> torch.Tensor:
            return t.sum(-1) if flat else t

        params = (self.in_proj[0].weight, bag.weight, bag.bias)
        kernel, bias = derived(self, "first", params, lambda: self.first_kernel(bag, ids), key=tuple(ids.tolist()))
        h = conv(x, w(kernel), bias, stride=self.in_proj[0].k)
        h = _gelu(_scaled(h, self.in_proj[1].scale_cf(h, n)))
        h = conv(h, w(self.in_proj[3].weight), None, stride=self.in_proj[3].k)
        h = _gelu(_scaled(h, self.in_proj[4].scale_cf(h, n)))
        h = conv(h, w(self.in_proj[6].weight), None, stride=self.in_proj[6].k)
        h = _scaled(h, self.in_proj[7].scale_cf(h, n))
        return h.permute(0, *range(2, 2 + n), 1).contiguous()


class HMLPOutput(nn.Module):
    """Two transposed patch convolutions with RMSInstanceNorm and GELU, then the field-specific head.

    Keys: ``out_proj.{0,1,3,4}``, ``out_kernel`` (dim/4, n_states, k..) and ``out_bias`` (n_states);
    the head uses only the columns of the fields present.
    """

    def __init__(self, dim: int, n_states: int, strides: tuple[int, int, int], n_spatial: int) -> None:
        super().__init__()
        s1, s2, s3 = strides
        q = dim // 4
        self.n_spatial, self.k_out = n_spatial, s1
        self.out_proj = nn.Sequential(
            PatchConvTranspose(dim, q, s3, n_spatial),
            RMSInstanceNorm(q),
            nn.GELU(),
            PatchConvTranspose(q, q, s2, n_spatial),
            RMSInstanceNorm(q),
            nn.GELU(),
        )
        kernel, bias = new_head(q, n_states, s1, n_spatial)
        self.out_kernel = nn.Parameter(kernel)
        self.out_bias = nn.Parameter(bias)

    def forward(self, z: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Tokens (N, *S', dim) channels-last -> fields (N, C, *S) channels-first (normalised units)."""
        n = z.dim() - 2
        if n < self.n_spatial:
            # a 3D decoder on a 2D token grid: its kernels averaged over z (the z-mean of its 3D output
            # when that output is linear in them), so 2D fields come back 2D
            h = unpatchify_linear(z, self.out_proj[0].weight.mean(-1), self.out_proj[0].k, n)
            h = _gelu(_scaled(h, self.out_proj[1].scale(h, n)))
            h = unpatchify_linear(h, self.out_proj[3].weight.mean(-1), self.out_proj[3].k, n)
            h = _gelu(_scaled(h, self.out_proj[4].scale(h, n)))
            return unpatchify_channels_first(h, self.out_kernel[:, ids].mean(-1), self.out_bias[ids], self.k_out, n)
        h = self.out_proj[0](z)
        h = _gelu(_scaled(h, self.out_proj[1].scale(h, n)))
        h = self.out_proj[3](h)
        h = _gelu(_scaled(h, self.out_proj[4].scale(h, n)))
        kernel, bias = derived(self, "head", (self.out_kernel, self.out_bias),
                               lambda: (self.out_kernel[:, ids], self.out_bias[ids]), key=tuple(ids.tolist()))
        return unpatchify_channels_first(h, kernel, bias, self.k_out, n)


def _scaled(h: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """h * scale, in place when no gradient is recorded."""
    return h.mul_(scale) if inplace_ok() else h * scale


def _gelu(h: torch.Tensor) -> torch.Tensor:
    """GELU (exact), in place when no gradient is recorded."""
    return torch.ops.aten.gelu_(h) if inplace_ok() else F.gelu(h)


def new_head(dim_in: int, n_out: int, k: int, n_spatial: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh weights of a transposed-conv head, PyTorch's default init: (dim_in, n_out, k..), (n_out,)."""
    weight = torch.empty(dim_in, n_out, *([k] * n_spatial))
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    fan_in = n_out * k**n_spatial
    bias = torch.empty(n_out).uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
    return weight, bias
