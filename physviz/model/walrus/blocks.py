"""Walrus's space-time split block: causal time attention with a T5 relative bias, then full space attention.

Tokens are channels-last, (T, B, h, w, d, C) with (h, w, d) the token grid (d = 1 for 2D).

- Time attention, at every token over the T frames: RMS group norm, one 1x1 projection to
  q, k, v (head-major: per head q, k, v of ``head_dim``), LayerNorm on q and k, T5 relative
  position bias (32 buckets; one-sided when causal), and when causal a mask of -inf above
  the diagonal (``causal_mask``, the least certain detail of the reference, can switch it
  off); output projection and residual.
- Space attention, over all tokens of a frame: RMS group norm, one fused linear giving the
  SwiGLU feed-forward input and q, k, v; LayerNorm on q and k; 3D axial rotary embedding
  ("pixel" frequencies over positions in [-1, 1] per axis, a quarter of each head's
  channels per axis, interleaved pairs); attention and feed-forward in parallel, summed
  into the residual.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from physviz.model.walrus.encoder import RMSGroupNorm


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth over the first axis (training only)."""
    if rate <= 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


def time_buckets(length: int, num_buckets: int, max_distance: int, causal: bool, device: torch.device) -> torch.Tensor:
    """T5 bucket of every (query, key) pair of `length` frames: one-sided (past only) when causal."""
    pos = torch.arange(length, device=device)
    n = pos[:, None] - pos[None, :]  # query - key
    ret = torch.zeros_like(n)
    if causal:
        n = n.clamp(min=0)
    else:
        num_buckets //= 2
        ret = (n < 0).long() * num_buckets
        n = n.abs()
    max_exact = num_buckets // 2
    large = max_exact + (
        torch.log(n.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    ).long()
    large = large.clamp(max=num_buckets - 1)
    return ret + torch.where(n < max_exact, n, large)


class RelativePositionBias(nn.Module):
    """Learned bias per T5 bucket and head."""

    def __init__(self, heads: int, num_buckets: int = 32, max_distance: int = 32) -> None:
        super().__init__()
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.relative_attention_bias = nn.Embedding(num_buckets, heads)

    def forward(self, length: int, causal: bool, mask: bool) -> torch.Tensor:
        """(heads, T, T) bias; -inf on future keys when `mask`."""
        weight = self.relative_attention_bias.weight
        b = time_buckets(length, self.num_buckets, self.max_distance, causal, weight.device)
        bias = weight[b].permute(2, 0, 1)
        if mask:
            future = torch.ones(length, length, dtype=torch.bool, device=weight.device).triu(1)
            bias = bias.masked_fill(future, float("-inf"))
        return bias


class TimeAttention(nn.Module):
    """Attention over time at every token (causal when the model is), with residual."""

    def __init__(self, hidden: int, heads: int, groups: int, causal: bool, causal_mask: bool,
                 num_buckets: int = 32, max_distance: int = 32, drop_path: float = 0.0) -> None:
        super().__init__()
        self.heads, self.causal, self.causal_mask, self.rate = heads, causal, causal_mask, drop_path
        self.norm1 = RMSGroupNorm(heads, hidden)
        self.input_head = nn.Conv3d(hidden, 3 * hidden, 1)
        self.output_head = nn.Conv3d(hidden, hidden, 1)
        hd = hidden // heads
        self.qnorm = nn.LayerNorm(hd)
        self.knorm = nn.LayerNorm(hd)
        self.rel_pos_bias = RelativePositionBias(heads, num_buckets, max_distance)

    def forward(self, z: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """z (T, B, *grid, C) -> same shape (only the last frame when `last_only`)."""
        T, B, *G, C = z.shape
        N, H = math.prod(G), self.heads
        hd = C // H
        h = self.norm1.channels_last(z.reshape(T * B, N, C))
        qkv = F.linear(h, self.input_head.weight.view(3 * C, C), self.input_head.bias)
        qkv = qkv.view(T, B, N, H, 3, hd).permute(4, 1, 2, 3, 0, 5)  # (3, B, N, H, T, hd)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if last_only:
            q = q[..., -1:, :]
        q = F.layer_norm(q, (hd,), self.qnorm.weight, self.qnorm.bias, self.qnorm.eps)
        k = F.layer_norm(k, (hd,), self.knorm.weight, self.knorm.bias, self.knorm.eps)
        bias = self.rel_pos_bias(T, self.causal, self.causal and self.causal_mask).to(q.dtype)
        if last_only:
            bias = bias[:, -1:, :]
        scores = torch.matmul(q, k.transpose(-1, -2)).mul_(1.0 / math.sqrt(hd)).add_(bias)
        att = torch.matmul(torch.softmax(scores, dim=-1), v)  # (B, N, H, Tq, hd)
        Tq = att.shape[-2]
        att = att.permute(3, 0, 1, 2, 4).reshape(Tq, B, N, C)
        out = F.linear(att, self.output_head.weight.view(C, C), self.output_head.bias)
        out = drop_path(out, self.rate, self.training)
        return z[T - Tq:] + out.view(Tq, B, *G, C)


class AxialRotary(nn.Module):
    """3D axial rotary embedding with "pixel" frequencies (positions in [-1, 1] along each axis)."""

    def __init__(self, dim: int, max_freq: float = 256.0) -> None:
        super().__init__()
        freqs = torch.linspace(1.0, max_freq / 2, dim // 2) * math.pi
        self.register_buffer("freqs", freqs)

    def angles(self, grid: tuple[int, ...]) -> torch.Tensor:
        """Rotation angle of every token and rotated pair, (tokens, len(grid) * n_freqs)."""
        f = self.freqs.float()
        parts = []
        for a, n in enumerate(grid):
            pos = torch.linspace(-1.0, 1.0, n, device=f.device)
            ang = pos[:, None] * f[None, :]
            shape = [1] * len(grid) + [f.numel()]
            shape[a] = n
            parts.append(ang.view(shape).expand(*grid, f.numel()))
        return torch.cat(parts, dim=-1).reshape(math.prod(grid), -1)


def rotate(t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the leading interleaved pairs of t (..., N, heads, hd) by angles with cos/sin (N, 1, P)."""
    P = cos.shape[-1]
    head = t[..., : 2 * P].unflatten(-1, (P, 2))
    x1, x2 = head[..., 0], head[..., 1]
    rot = torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)
    return torch.cat((rot, t[..., 2 * P:]), dim=-1)


class SpaceAttention(nn.Module):
    """Full attention over a frame's tokens in parallel with a SwiGLU feed-forward, from one fused linear."""

    def __init__(self, hidden: int, heads: int, groups: int, ff_dim: int, max_freq: float = 256.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.heads, self.ff_dim, self.rate = heads, ff_dim, drop_path
        hd = hidden // heads
        self.norm1 = RMSGroupNorm(heads, hidden)
        self.fused_ff_qkv = nn.Linear(hidden, ff_dim + 3 * hidden)
        self.ff_out = nn.Linear(ff_dim // 2, hidden)
        self.attn_out = nn.Linear(hidden, hidden, bias=False)
        self.q_norm = nn.LayerNorm(hd)
        self.k_norm = nn.LayerNorm(hd)
        self.rotary_emb = AxialRotary(hd // 4, max_freq)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (M, *grid, C) -> same shape."""
        M, *G, C = z.shape
        N, H = math.prod(G), self.heads
        hd = C // H
        x = z.reshape(M, N, C)
        f = F.linear(self.norm1.channels_last(x), self.fused_ff_qkv.weight, self.fused_ff_qkv.bias)
        ff, q, k, v = f.split([self.ff_dim, C, C, C], dim=-1)
        q = F.layer_norm(q.unflatten(-1, (H, hd)), (hd,), self.q_norm.weight, self.q_norm.bias, self.q_norm.eps)
        k = F.layer_norm(k.unflatten(-1, (H, hd)), (hd,), self.k_norm.weight, self.k_norm.bias, self.k_norm.eps)
        ang = self.rotary_emb.angles(tuple(G)).unsqueeze(1)
        cos, sin = ang.cos().to(q.dtype), ang.sin().to(q.dtype)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        v = v.unflatten(-1, (H, hd))
        att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        att = att.transpose(1, 2).reshape(M, N, C)
        a, gate = ff.chunk(2, dim=-1)
        out = F.linear(att, self.attn_out.weight) + F.linear(F.silu(gate) * a, self.ff_out.weight, self.ff_out.bias)
        out = drop_path(out, self.rate, self.training)
        return z + out.view(M, *G, C)


class SpaceTimeBlock(nn.Module):
    """Time attention, then space attention on every frame."""

    def __init__(self, hidden: int, heads: int, time_heads: int, groups: int, ff_dim: int, causal: bool,
                 causal_mask: bool, num_buckets: int, max_distance: int, max_freq: float, drop_path: float) -> None:
        super().__init__()
        self.space_mixing = SpaceAttention(hidden, heads, groups, ff_dim, max_freq, drop_path)
        self.time_mixing = TimeAttention(hidden, time_heads, groups, causal, causal_mask, num_buckets,
                                         max_distance, drop_path)

    def forward(self, z: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """z (T, B, *grid, C) -> same shape (only the last frame when `last_only`)."""
        z = self.time_mixing(z, last_only)
        T, B = z.shape[:2]
        return self.space_mixing(z.reshape(T * B, *z.shape[2:])).view(z.shape)
