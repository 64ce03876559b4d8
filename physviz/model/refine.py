"""Full-resolution refinement of the decoded delta: a small convolution net after the decoder.

The transformer sees the fields through patch tokens (8x8 points each in the tiny model),
so detail finer than a patch, and the seams between patches, must be rebuilt by the
decoder from one token. `PixelRefiner` adds a correction computed at every grid point
from the last two normalised input frames and the decoded delta: a k^n convolution,
GELU, a depthwise k^n convolution and a 1x1 layer, GELU and a 1x1 output head (a
receptive field of 2k-1 points per axis, 5 for k=3, at little cost in 3D). As in MPP's stem and decoder its first
kernel and its head are indexed by field slot, so one refiner serves every field set.
The head starts at zero: a refiner grafted onto a trained model leaves its predictions
unchanged until it is trained. Periodic axes are padded by wrapping, others by
replicating the edge. A 3D refiner on 2D fields uses its kernels summed over z, the
stem's rule, so one model refines 2D and 3D data.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

N_INPUTS = 3  # frame t-1 (or the change from it to frame t: refine_step), frame t and the decoded delta, per field


class PixelRefiner(nn.Module):
    """Delta correction: k^n conv, GELU, depthwise k^n + 1x1, GELU, 1x1 head; keys ``w_in b_in w_dw b_dw w_mid b_mid w_out b_out``."""

    def __init__(self, n_states: int, width: int, n_spatial: int, kernel: int = 3) -> None:
        super().__init__()
        self.n_spatial, self.kernel = n_spatial, kernel
        self.w_in = nn.Parameter(self._fresh_in(width, n_states))
        self.b_in = nn.Parameter(torch.zeros(width))
        self.w_dw = nn.Parameter(torch.randn(width, 1, *([kernel] * n_spatial)) / kernel**n_spatial)
        self.b_dw = nn.Parameter(torch.zeros(width))
        self.w_mid = nn.Parameter(torch.randn(width, width) * math.sqrt(2.0 / width))
        self.b_mid = nn.Parameter(torch.zeros(width))
        self.w_out = nn.Parameter(torch.zeros(n_states, width))
        self.b_out = nn.Parameter(torch.zeros(n_states))

    def _fresh_in(self, width: int, slots: int) -> torch.Tensor:
        """He-initialised input kernels for `slots` field slots (fan-in: about four fields per dataset)."""
        fan_in = N_INPUTS * 4 * self.kernel**self.n_spatial
        return torch.randn(width, N_INPUTS, slots, *([self.kernel] * self.n_spatial)) * math.sqrt(2.0 / fan_in)

    def expand(self, k: int) -> None:
        """Add `k` field slots, keeping the old ones: fresh input kernels (as a new refiner's) and zero head rows.

        The zero head rows leave every prediction unchanged; the random input kernels let a new
        field's correction train from the first step (with zero kernels and a zero head, the
        gradient of both is zero but for a constant offset, and the new slots barely learn).
        """
        w_in = torch.cat([self.w_in.detach(), self._fresh_in(self.w_in.shape[0], k).to(self.w_in)], dim=2)
        w_out = self.w_out.new_zeros(self.w_out.shape[0] + k, self.w_out.shape[1])
        b_out = self.b_out.new_zeros(self.b_out.shape[0] + k)
        with torch.no_grad():
            w_out[: self.w_out.shape[0]] = self.w_out
            b_out[: self.b_out.shape[0]] = self.b_out
        self.w_in, self.w_out, self.b_out = nn.Parameter(w_in), nn.Parameter(w_out), nn.Parameter(b_out)

    def forward(self, frames: torch.Tensor, delta: torch.Tensor, ids: torch.Tensor, bc: Sequence[int],
                step: torch.Tensor | None = None) -> torch.Tensor:
        """Refined delta (B, C, *S) from normalised input frames (B, T, C, *S) and the decoded delta (B, C, *S);
        `step` (B, C, *S), when given, takes the place of the frame before last as the first input."""
        B, T, C, *S = frames.shape
        n = len(S)
        prev = step if step is not None else frames[:, -2] if T > 1 else frames[:, -1]
        inp = torch.cat([prev, frames[:, -1], delta], dim=1)  # (B, 3C, *S)
        w, dw = self.w_in[:, :, ids], self.w_dw
        if n < self.n_spatial:
            w, dw = w.sum(-1), dw.sum(-1)
        w = w.reshape(w.shape[0], N_INPUTS * C, *w.shape[3:])
        conv = F.conv2d if n == 2 else F.conv3d
        r = self.kernel // 2
        h = F.gelu(conv(pad_fields(inp, r, bc), w, self.b_in))
        hp = pad_fields(h, r, bc)
        if n == 3:  # oneDNN's depthwise conv3d is ~8x faster channels-last
            hp = hp.contiguous(memory_format=torch.channels_last_3d)
        h = conv(hp, dw, self.b_dw, groups=h.shape[1])
        ones = (1,) * n
        h = F.gelu(conv(h, self.w_mid.view(*self.w_mid.shape, *ones), self.b_mid))
        out = conv(h, self.w_out[ids].view(C, -1, *ones), self.b_out[ids])
        return delta + out


def pad_fields(x: torch.Tensor, r: int, bc: Sequence[int]) -> torch.Tensor:
    """Pad the spatial axes of (B, C, *S) by `r` points: wrapped where periodic, edge-replicated elsewhere."""
    if r == 0:
        return x
    for i, periodic in enumerate(bc):
        dim = 2 + i
        size = x.shape[dim]
        if periodic:
            lo, hi = x.narrow(dim, size - r, r), x.narrow(dim, 0, r)
        else:
            lo = x.narrow(dim, 0, 1).expand(*x.shape[:dim], r, *x.shape[dim + 1:])
            hi = x.narrow(dim, size - 1, 1).expand(*x.shape[:dim], r, *x.shape[dim + 1:])
        x = torch.cat([lo, x, hi], dim=dim)
    return x


def refiner_flops(width: int, n_fields: int, spatial: Sequence[int], kernel: int = 3) -> int:
    """Forward FLOPs of one refiner pass on one sample."""
    points = math.prod(spatial)
    taps = kernel ** len(spatial)
    macs = width * N_INPUTS * n_fields * taps + width * taps + width * width + n_fields * width
    return 2 * macs * points
