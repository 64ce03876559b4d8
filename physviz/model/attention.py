"""Attention of the MPP AViT: T5 relative bias, time attention and axial space attention.

Tensors are channels-last, (B, T, *S, d). The QKV projection keeps MPP's head-major
weight layout ``[h0: q k v | h1: q k v | ...]`` (for key parity) and runs as three
products so q, k and v come out contiguous as (..., heads, head_dim).

Attention is batched over every line at once on strided views (no copies):
``F.scaled_dot_product_attention`` for long sequences; two plain batched products
where the sequences are short (time attention with a small score tensor, and frames of
at most 64 tokens, where the per-axis attentions become one dense product with
-inf masks across lines). All paths compute the same function (tests compare them).

In inference (no autograd recording) the blocks update the token stream in place and
cache tensors derived from parameters (split projections, scaled affines, biases); the
time block's instance norms are folded into the projections around its attention, and
q/k LayerNorms reduce to RMS scalings of rows centred by the weights (see `_QKV`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from physviz.model.cpu_kernels import usable
from physviz.model.layers import MLP, InstanceNorm, RMSInstanceNorm, derived, drop_path, inplace_ok, linear


def relative_buckets(length: int, bc: int, num_buckets: int, max_distance: int, periodic: str) -> torch.Tensor:
    """T5 bidirectional bucket of every (query, key) pair on an axis of `length` tokens, (L, L) long.

    Offsets are key - query. With ``bc == 1`` (periodic) they are wrapped first: "mpp" as
    MPP does it (beyond +-L//2 taken modulo L//2), "modular" into [-L//2, L//2).
    """
    pos = torch.arange(length, dtype=torch.long)
    rel = pos[None, :] - pos[:, None]
    if bc == 1:
        half = length // 2
        if periodic == "mpp":
            low, high = rel < -half, rel > half
            rel = torch.where(low, torch.remainder(rel, max(half, 1)), rel)
            rel = torch.where(high, torch.remainder(rel, -max(half, 1)), rel)
        else:
            rel = torch.remainder(rel + half, length) - half
    n = -rel
    half_buckets = num_buckets // 2
    ret = (n < 0).long() * half_buckets
    n = n.abs()
    max_exact = half_buckets // 2
    is_small = n < max_exact
    # Same float32 ops as T5/MPP so bucket edges land identically.
    large = max_exact + (
        torch.log(n.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact) * (half_buckets - max_exact)
    ).long()
    large = torch.clamp(large, max=half_buckets - 1)
    return ret + torch.where(is_small, n, large)


class RelativePositionBias(nn.Module):
    """A learned bias per head and T5 bucket: ``relative_attention_bias`` is Embedding(buckets, heads)."""

    def __init__(self, n_heads: int, num_buckets: int = 32, max_distance: int = 32, periodic: str = "mpp") -> None:
        super().__init__()
        self.num_buckets, self.max_distance, self.periodic = num_buckets, max_distance, periodic
        self.relative_attention_bias = nn.Embedding(num_buckets, n_heads)
        self._cache: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    def buckets(self, length: int, bc: int, device: torch.device) -> torch.Tensor:
        """Cached bucket indices (L, L) on `device`."""
        key = (length, int(bc), device)
        hit = self._cache.get(key)
        if hit is None:
            hit = relative_buckets(length, int(bc), self.num_buckets, self.max_distance, self.periodic).to(device)
            self._cache[key] = hit
        return hit

    def forward(self, length: int, bc: int = 0) -> torch.Tensor:
        """The additive bias (1, heads, L, L)."""
        table = self.relative_attention_bias.weight

        def make() -> torch.Tensor:
            values = F.embedding(self.buckets(length, bc, table.device), table)  # (L, L, H)
            return values.permute(2, 0, 1).unsqueeze(0).contiguous()

        return derived(self, "bias", (table,), make, key=(length, int(bc)))

    def line_buckets(self, shape: tuple[int, ...], axis: int, bc: int, device: torch.device) -> torch.Tensor:
        """Cached (P, P) bucket indices over a whole token grid for attention along `axis`.

        Pairs on the same line along `axis` get the bucket of their offset; all other
        pairs get ``num_buckets``, the index of a -inf row (they do not attend).
        """
        key = (shape, axis, int(bc), device)
        hit = self._cache.get(key)
        if hit is None:
            grids = torch.meshgrid(*[torch.arange(s) for s in shape], indexing="ij")
            coords = torch.stack([g.reshape(-1) for g in grids], 1)  # (P, n)
            others = [a for a in range(len(shape)) if a != axis]
            same = (coords[:, None, others] == coords[None, :, others]).all(-1)
            line = relative_buckets(shape[axis], int(bc), self.num_buckets, self.max_distance, self.periodic)
            idx = line[coords[:, None, axis], coords[None, :, axis]]
            hit = torch.where(same, idx, torch.full_like(idx, self.num_buckets)).to(device)
            self._cache[key] = hit
        return hit

    def line_mask(self, shape: tuple[int, ...], axis: int, bc: int) -> torch.Tensor:
        """Additive mask (1, heads, P, P): the bias along `axis` within lines, -inf across lines."""
        weight = self.relative_attention_bias.weight

        def make() -> torch.Tensor:
            table = torch.cat((weight, weight.new_full((1, weight.shape[1]), float("-inf"))))
            values = F.embedding(self.line_buckets(shape, axis, bc, weight.device), table)  # (P, P, H)
            return values.permute(2, 0, 1).unsqueeze(0).contiguous()

        return derived(self, "line", (weight,), make, key=(shape, axis, int(bc)))


class Projection(nn.Module):
    """A 1x1 convolution applied channels-last (weight kept as (out, in, 1, ..) for key parity)."""

    def __init__(self, dim_in: int, dim_out: int, n_spatial: int) -> None:
        super().__init__()
        conv = nn.Conv2d(dim_in, dim_out, 1)  # PyTorch's default init
        self.weight = nn.Parameter(conv.weight.detach().reshape(dim_out, dim_in, *([1] * n_spatial)).clone())
        self.bias = nn.Parameter(conv.bias.detach().clone())

    def matrix(self) -> torch.Tensor:
        """The weight as (out, in)."""
        return self.weight.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to the channels of (..., C)."""
        return F.linear(x, self.matrix(), self.bias)


class _QKV(nn.Module):
    """Shared parts of both attention blocks: QKV projection with qk LayerNorm, output projection."""

    def _init_qkv(self, dim: int, num_heads: int, n_spatial: int, cfg_bias: tuple[str, int, int, str]) -> None:
        self.num_heads, self.head_dim, self.n_spatial = num_heads, dim // num_heads, n_spatial
        self.input_head = Projection(dim, 3 * dim, n_spatial)
        self.output_head = Projection(dim, dim, n_spatial)
        self.qnorm = nn.LayerNorm(self.head_dim)
        self.knorm = nn.LayerNorm(self.head_dim)
        bias_type, buckets, max_distance, periodic = cfg_bias
        self.rel_pos_bias = RelativePositionBias(num_heads, buckets, max_distance, periodic) if bias_type == "rel" else None

    def qkv(self, h: torch.Tensor, h_q: torch.Tensor | None = None, fold: InstanceNorm | None = None,
            v_bias: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., d) -> q, k, v, each (..., heads, hd); q and k layer-normed, q pre-scaled by hd^-1/2.

        With autograd the head-major rows of the projection ``[h0: q k v | h1: q k v | ...]``
        are split into three products, so q and k come out contiguous for the fused
        LayerNorm. In inference one product makes all three, and q, k, v are strided views
        of it (per token ``[h0: q k v | ...]``: tokens and heads still merge into one
        stride, which the attention's batched products take as they are).
        ``h_q`` (a part of ``h``) restricts the queries to it. ``fold``: ``h`` is standardized
        but not yet scaled by that norm's affine, which is folded into the projection here.
        ``v_bias=False`` leaves v's bias out (exact where an instance norm follows the attention).
        """
        H, hd = self.num_heads, self.head_dim
        params = (self.input_head.weight, self.input_head.bias, self.qnorm.weight, self.qnorm.bias)
        if fold is not None:
            params += (fold.weight, fold.bias)
        h_q = h if h_q is None else h_q
        if inplace_ok() and h_q is h:
            params += (self.knorm.weight, self.knorm.bias)
            w, b, gq, sq = derived(self, "qkv_fused", params, lambda: self._qkv_fused(fold, v_bias),
                                   key=(fold is not None, v_bias))
            kern = usable(h, w)
            if kern is not None:
                # fused kernel: bias, q/k RMS scaling and q's affine in one pass over the product
                y = torch.mm(h.reshape(-1, h.shape[-1]), w.t())
                kern.qkv_epilogue_(y, b, gq, sq, *self._rms_floats(), H)
                return y.view(*h.shape[:-1], H, 3, hd).unbind(-2)
            q, k, v = linear(h, w, b).unflatten(-1, (H, 3, hd)).unbind(-2)
            cq, ck = self._rms_constants(q)
            return _rms_rows_(q, cq).mul_(gq).add_(sq), _rms_rows_(k, ck), v
        if inplace_ok():
            params += (self.knorm.weight, self.knorm.bias)
            (wq, bq), (wk, bk), (wv, bv), (gq, sq) = derived(self, "qkv_centred", params,
                                                             lambda: self._qkv_weights(fold, centred=True), key=fold is not None)
            q = linear(h_q, wq, bq).unflatten(-1, (H, hd))
            cq, ck = self._rms_constants(q)
            q = _rms_rows_(q, cq).mul_(gq).add_(sq)
            k = _rms_rows_(linear(h, wk, bk).unflatten(-1, (H, hd)), ck)
            v = linear(h, wv, bv if v_bias else None).unflatten(-1, (H, hd))
            return q, k, v
        (wq, bq), (wk, bk), (wv, bv), (gq, sq) = derived(self, "qkv", params, lambda: self._qkv_weights(fold),
                                                         key=fold is not None)
        bv = bv if v_bias else None
        q = F.layer_norm(linear(h_q, wq, bq).unflatten(-1, (H, hd)), (hd,), gq, sq, self.qnorm.eps)
        k = F.layer_norm(linear(h, wk, bk).unflatten(-1, (H, hd)), (hd,), self.knorm.weight, self.knorm.bias, self.knorm.eps)
        v = linear(h, wv, bv).unflatten(-1, (H, hd))
        return q, k, v

    def _rms_constants(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sqrt(hd * eps) of the q and k LayerNorms as 0-d tensors of x's dtype and device (for `_rms_rows_`)."""
        hd = self.head_dim

        def make() -> tuple[torch.Tensor, torch.Tensor]:
            return tuple(torch.tensor((hd * n.eps) ** 0.5, dtype=x.dtype, device=x.device) for n in (self.qnorm, self.knorm))

        return derived(self, "rms_c", (self.qnorm.weight,), make, key=(x.dtype, x.device))

    def _rms_floats(self) -> tuple[float, float]:
        """sqrt(hd * eps) of the q and k LayerNorms (the constants of `_rms_rows_`) as floats."""
        return tuple((self.head_dim * n.eps) ** 0.5 for n in (self.qnorm, self.knorm))

    def _qkv_fused(self, fold: InstanceNorm | None, v_bias: bool) -> tuple[torch.Tensor, ...]:
        """The centred projection (see `_qkv_weights`) as one head-major matrix and bias, and q's affine."""
        (wq, bq), (wk, bk), (wv, bv), (gq, sq) = self._qkv_weights(fold, centred=True)
        H, hd = self.num_heads, self.head_dim
        bv = bv if v_bias else torch.zeros_like(bv)
        w = torch.stack([t.view(H, hd, -1) for t in (wq, wk, wv)], 1).reshape(3 * H * hd, -1)
        b = torch.stack([t.view(H, hd) for t in (bq, bk, bv)], 1).reshape(-1)
        return w.contiguous(), b.contiguous(), gq, sq

    def _qkv_weights(self, fold: InstanceNorm | None = None, centred: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-part (q, k, v) weights and biases out of the head-major projection, and q's scaled LayerNorm affine.

        ``centred`` (inference): q's and k's rows are centred per head, so the products come
        out with zero mean over head_dim and the LayerNorms reduce to an RMS scaling. k's
        LayerNorm affine is moved onto q: with k = k^ * g_k + b_k, q.k = (q * g_k).k^ + q.b_k,
        and q.b_k is the same for every key, so the softmax over keys does not see it.
        """
        H, hd = self.num_heads, self.head_dim
        w, b = self.input_head.matrix(), self.input_head.bias
        if fold is not None:
            w, b = fold.folded(w, b)
        w, b = w.reshape(H, 3, hd, -1), b.reshape(H, 3, hd)
        if centred:
            w = torch.cat((w[:, :2] - w[:, :2].mean(2, keepdim=True), w[:, 2:]), 1)
            b = torch.cat((b[:, :2] - b[:, :2].mean(2, keepdim=True), b[:, 2:]), 1)
        parts = [(w[:, i].reshape(H * hd, -1), b[:, i].reshape(-1)) for i in range(3)]
        s = hd**-0.5
        if centred:
            # `_rms_rows_` leaves out a factor sqrt(hd) on q and on k: both go onto q's affine
            gk = self.knorm.weight * (s * hd)
            return [*parts, (self.qnorm.weight * gk, self.qnorm.bias * (gk / hd**0.5))]
        return [*parts, (self.qnorm.weight * s, self.qnorm.bias * s)]

    def bias(self, length: int, bc: int = 0, repeat: int = 1) -> torch.Tensor | None:
        """Relative bias (1, repeat*heads, L, L) (tiled for merged batch-heads), or None."""
        if self.rel_pos_bias is None:
            return None
        mask = self.rel_pos_bias(length, bc)
        return mask.repeat(1, repeat, 1, 1) if repeat > 1 else mask

    def project_out(self, x: torch.Tensor, gamma: torch.Tensor, residual: torch.Tensor, rate: float,
                    fold: InstanceNorm | None = None) -> torch.Tensor:
        """residual + drop_path(gamma * output_head(x)), with the residual added inside the GEMM.

        ``fold``: ``x`` is standardized by that norm, whose affine is folded into the weights here.
        """
        def weights() -> tuple[torch.Tensor, torch.Tensor]:
            w, b = self.output_head.matrix(), self.output_head.bias
            if fold is not None:
                w, b = fold.folded(w, b)
            return w * gamma[:, None], b * gamma

        params = (self.output_head.weight, self.output_head.bias, gamma)
        if fold is not None:
            params += (fold.weight, fold.bias)
        w, b = derived(self, "out", params, weights, key=fold is not None)
        if rate > 0.0 and self.training:
            return residual + drop_path(F.linear(x, w, b), rate, True, 1)
        d = x.shape[-1]
        if inplace_ok() and residual.is_contiguous() and x.dtype == residual.dtype == w.dtype:
            # inference: accumulate into the stream itself (it is ours and not needed afterwards)
            out = residual.view(-1, d).addmm_(x.reshape(-1, d), w.t())
            return out.add_(b).view(residual.shape)
        out = torch.addmm(residual.reshape(-1, d), x.reshape(-1, d), w.t())
        return (out + b).view(residual.shape)


def _rms_rows_(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """x / hypot(|x| over the last dim, c), in place: with c = sqrt(n eps) that is LayerNorm(x) / sqrt(n) for rows
    already centred (n = x.shape[-1]; three ops instead of six, the sqrt(n) goes into the affine)."""
    return x.div_(torch.hypot(torch.linalg.vector_norm(x, 2, -1, keepdim=True), c))


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """SDPA on (batch, heads, L, hd) views (q pre-scaled), output back as (batch, L, heads, hd)."""
    if mask is not None and mask.dtype != q.dtype:
        mask = mask.to(q.dtype)  # autocast: the bias follows q's precision
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)
    return o.transpose(1, 2)


class TimeAttentionBlock(_QKV):
    """MPP's time block: InstanceNorm -> QKV -> qk-norm -> attention over T -> InstanceNorm -> out, layer scale.

    There is no MLP. Each spatial token attends over the frames (bidirectional, T5 bias).
    """

    def __init__(self, dim: int, num_heads: int, n_spatial: int, drop_path: float = 0.0,
                 layer_scale: float = 1e-6, bias: tuple[str, int, int, str] = ("rel", 32, 32, "mpp")) -> None:
        super().__init__()
        self._init_qkv(dim, num_heads, n_spatial, bias)
        self.norm1 = InstanceNorm(dim)
        self.norm2 = InstanceNorm(dim)
        self.gamma = nn.Parameter(layer_scale * torch.ones(dim))
        self.drop_path = drop_path

    # attention whose score tensor has at most this many entries skips the fused kernel
    small_scores = 1 << 21

    def forward(self, z: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, T, *S, d) -> same shape, or (B, 1, *S, d) with only the last frame's queries."""
        B, T, *S, d = z.shape
        P = math.prod(S)
        H = self.num_heads
        zf = z.reshape(B, T, P, d)
        # inference: the norms' affines are folded into the projections around the attention
        fold = inplace_ok()
        h = self.norm1.standardize(zf, 1) if fold else self.norm1(zf, 1)
        q, k, v = self.qkv(h, h[:, -1:] if last_only else None, self.norm1 if fold else None,
                           v_bias=not fold)  # (B, T or 1, P, H, hd)
        Tq = 1 if last_only else T
        bias = self.bias(T)
        if bias is not None and last_only:
            bias = bias[:, :, -1:, :]
        o = self._time_attention(q, k, v, bias)
        o = o.reshape(B, Tq, P, d)
        o = self.norm2.standardize(o, 1) if fold else self.norm2(o, 1)
        res = zf[:, -1:] if last_only else zf
        return self.project_out(o, self.gamma, res, self.drop_path, self.norm2 if fold else None).reshape(B, Tq, *S, d)

    def _time_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Attention over T of q (B, Tq, P, H, hd) and k, v (B, T, P, H, hd) -> (B, Tq, P*H, hd)."""
        B, Tq, P, H, _ = q.shape
        T = k.shape[1]
        # (B, T, P, H, hd) -> (B, P*H, T, hd): tokens and heads merge into one strided dim (no copy)
        q, k, v = (t.flatten(2, 3).transpose(1, 2) for t in (q, k, v))
        if B * P * H * Tq * T <= self.small_scores:
            # short sequences: plain batched products beat the fused kernel's per-sequence overhead
            scores = torch.matmul(q, k.transpose(-1, -2))  # (B, P*H, Tq, T)
            if bias is not None:
                scores = (scores.view(B, P, H, Tq, T) + bias.to(scores.dtype).view(1, 1, H, Tq, T)).view(B, P * H, Tq, T)
            return torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2)
        return _attend(q, k, v, None if bias is None else bias.repeat(1, P, 1, 1))


class AxialAttentionBlock(_QKV):
    """MPP's space block: axial attention along each spatial axis (same q, k, v), averaged, then the MLP.

    RMSInstanceNorm pre-norm -> QKV -> qk-norm -> attention along every axis (periodic
    wrap of the bias where bc == 1) -> mean -> RMSInstanceNorm -> out -> gamma_att,
    residual; then MLP on the stream -> RMSInstanceNorm (post-norm) -> gamma_mlp, residual.
    """

    def __init__(self, dim: int, num_heads: int, n_spatial: int, mlp_dim: int, drop_path: float = 0.0,
                 layer_scale: float = 1e-6, bias: tuple[str, int, int, str] = ("rel", 32, 32, "mpp")) -> None:
        super().__init__()
        self._init_qkv(dim, num_heads, n_spatial, bias)
        self.norm1 = RMSInstanceNorm(dim)
        self.norm2 = RMSInstanceNorm(dim)
        self.mlp_norm = RMSInstanceNorm(dim)
        self.gamma_att = nn.Parameter(layer_scale * torch.ones(dim))
        self.gamma_mlp = nn.Parameter(layer_scale * torch.ones(dim))
        self.mlp = MLP(dim, mlp_dim)
        self.drop_path = drop_path

    # frames of at most this many tokens take the dense path (faster there, slower beyond)
    dense_max_tokens = 64

    def forward(self, z: torch.Tensor, bcs: tuple[int, ...]) -> torch.Tensor:
        """(B, T, *S, d) -> same shape; bcs[i] = 1 marks spatial axis i periodic."""
        B, T, *S, d = z.shape
        n = len(S)
        N = B * T
        zf = z.reshape(N, *S, d)
        q, k, v = self.qkv(self.norm1(zf, n))  # (N, *S, H, hd)
        if math.prod(S) <= self.dense_max_tokens:
            acc = self._dense_axial(q, k, v, tuple(S), bcs)
        else:
            acc = self._axial(q, k, v, tuple(S), bcs)
        x = acc.reshape(N, *S, d)
        # norm2 of the mean over axes: (x/n) / (std(x/n) + eps) == x / (std(x) + n*eps)
        scale = self.norm2.scale(x, n, eps_mult=float(n))
        x = x.mul_(scale) if inplace_ok() else x * scale
        zf = self.project_out(x, self.gamma_att, zf, self.drop_path)
        m = self.mlp(zf)
        scale = self.mlp_norm.scale(m, n, extra=self.gamma_mlp)
        if inplace_ok() and self.drop_path == 0.0:
            zf = zf.addcmul_(m, scale)
        else:
            zf = zf + drop_path(m * scale, self.drop_path, self.training, 1)
        return zf.reshape(B, T, *S, d)

    def _axial(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, S: tuple[int, ...],
               bcs: tuple[int, ...]) -> torch.Tensor:
        """Sum over axes of attention along each axis; SDPA batched over every line at once."""
        N, H, hd = q.shape[0], self.num_heads, self.head_dim
        n = len(S)
        acc = None
        for axis in range(n - 1, -1, -1):
            pre, length, post = math.prod(S[:axis]), S[axis], math.prod(S[axis + 1:])
            # (N, *S, H, hd) -> (N*pre, post*H, L, hd): a strided view, rows batched, no copy
            qa, ka, va = (t.reshape(N * pre, length, post * H, hd).transpose(1, 2) for t in (q, k, v))
            o = _attend(qa, ka, va, self.bias(length, bcs[axis], post)).reshape(N, *S, H, hd)
            if acc is None:
                acc = o if o.is_contiguous() else o.contiguous()
            elif inplace_ok():
                acc.add_(o)
            else:
                acc = acc + o
        return acc

    def _dense_axial(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, S: tuple[int, ...],
                     bcs: tuple[int, ...]) -> torch.Tensor:
        """The same sum for small frames as one dense product: softmax(QK^T + mask_axis) summed over axes, times V.

        Each mask holds the relative bias within lines along its axis and -inf across
        lines, so every softmax equals that axis' attention; for frames of a few dozen
        tokens two batched matrix products beat thousands of tiny per-line attentions
        (and softmaxes over rows of a few entries, measured slower still).
        """
        N, H, hd = q.shape[0], self.num_heads, self.head_dim
        P = math.prod(S)
        # per head, (N, P, hd) views with row stride H*hd are BLAS operands as they are (no copies)
        qh = q.reshape(N, P, H, hd).unbind(2)  # H views (N, P, hd)
        kh = k.reshape(N, P, H, hd).permute(2, 0, 3, 1).unbind(0)  # H views (N, hd, P)
        vh = v.reshape(N, P, H, hd).unbind(2)
        if inplace_ok():
            scores = q.new_empty(H, N, P, P)
            for qq, kk, out in zip(qh, kh, scores.unbind(0)):
                torch.bmm(qq, kk, out=out)
        else:
            scores = torch.stack([torch.bmm(qq, kk) for qq, kk in zip(qh, kh)])
        # scores: (H, N, P, P), q is pre-scaled
        probs = None
        for axis in range(len(S)):
            if self.rel_pos_bias is not None:
                mask = self.rel_pos_bias.line_mask(S, axis, bcs[axis])
            else:
                mask = _line_mask_nobias(S, axis, scores.device, scores.dtype)
            mask = mask.to(scores.dtype).transpose(0, 1)  # (H or 1, 1, P, P)
            last = axis == len(S) - 1
            logits = scores.add_(mask) if (last and inplace_ok()) else scores + mask
            p = torch.softmax(logits, dim=-1)
            if probs is None:
                probs = p
            elif inplace_ok():
                probs.add_(p)
            else:
                probs = probs + p
        o = torch.cat([torch.bmm(pp, vv) for pp, vv in zip(probs.unbind(0), vh)], -1)  # (N, P, H*hd)
        return o.reshape(N, *S, H, hd)


def _line_mask_nobias(shape: tuple[int, ...], axis: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(1, 1, P, P) mask: 0 within lines along `axis`, -inf across (bias_type 'none')."""
    grids = torch.meshgrid(*[torch.arange(s) for s in shape], indexing="ij")
    coords = torch.stack([g.reshape(-1) for g in grids], 1)
    others = [a for a in range(len(shape)) if a != axis]
    same = (coords[:, None, others] == coords[None, :, others]).all(-1)
    mask = torch.zeros(same.shape, dtype=dtype).masked_fill_(~same, float("-inf"))
    return mask[None, None].to(device)


class SpaceTimeBlock(nn.Module):
    """Time attention then axial space attention (MPP's SpaceTimeBlock)."""

    def __init__(self, dim: int, num_heads: int, n_spatial: int, mlp_dim: int, drop_path: float = 0.0,
                 layer_scale: float = 1e-6, bias: tuple[str, int, int, str] = ("rel", 32, 32, "mpp")) -> None:
        super().__init__()
        self.temporal = TimeAttentionBlock(dim, num_heads, n_spatial, drop_path, layer_scale, bias)
        self.spatial = AxialAttentionBlock(dim, num_heads, n_spatial, mlp_dim, drop_path, layer_scale, bias)

    def forward(self, z: torch.Tensor, bcs: tuple[int, ...], last_only: bool = False) -> torch.Tensor:
        """(B, T, *S, d) -> (B, T or 1, *S, d)."""
        return self.spatial(self.temporal(z, last_only), bcs)
