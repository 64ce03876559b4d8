"""Small layers of the MPP AViT, written channels-last: tensors are (N, *spatial, C).

Parameter names and shapes follow MPP's modules so official state dicts load
strictly (weights of patch convolutions keep the Conv2d/Conv3d layout).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from physviz.model.cpu_kernels import usable


def spatial_dims(x: torch.Tensor, n_spatial: int) -> tuple[int, ...]:
    """Dims of the spatial axes of a channels-last (..., *spatial, C) tensor."""
    return tuple(range(x.dim() - 1 - n_spatial, x.dim() - 1))


def channel_blocks(x: torch.Tensor, n_spatial: int) -> tuple[torch.Tensor, tuple[int, ...]] | None:
    """x (..., *spatial, C) as a contiguous (N, P, C) view and the kept-dims shape of its statistics; None if not a view."""
    if not x.is_contiguous():
        return None
    lead, C = x.shape[:x.dim() - 1 - n_spatial], x.shape[-1]
    return x.view(-1, math.prod(x.shape[len(lead):-1]), C), (*lead, *([1] * n_spatial), C)


def inplace_ok() -> bool:
    """True when no autograd graph is being recorded, so temporaries may be overwritten."""
    return not torch.is_grad_enabled()


def derived(module: nn.Module, name: str, params: tuple[torch.Tensor, ...], fn, key: object = None):
    """``fn()`` (tensors derived from parameters), cached on `module` while no gradient is recorded.

    The cache entry is reused while the parameters keep their storage and version
    (optimizer steps, ``load_state_dict`` and ``.to()`` all invalidate it). With
    autograd recording, ``fn()`` is always recomputed so gradients flow.
    """
    if torch.is_grad_enabled():
        return fn()
    cache = module.__dict__.setdefault("_derived_cache", {})
    stamp = tuple((p._version, p.data_ptr(), p.dtype, p.device) for p in params)
    hit = cache.get((name, key))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    with torch.inference_mode(False), torch.no_grad():
        value = fn()
    cache[(name, key)] = (stamp, value)
    return value


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """F.linear; in inference the bias is added in place after the product.

    (addmm broadcasts the bias into the output with a slow strided copy on CPU; a
    separate vectorised add is several times cheaper.)
    """
    if bias is None or not inplace_ok() or x.device.type != "cpu":
        return F.linear(x, weight, bias)
    out = torch.mm(x.reshape(-1, x.shape[-1]), weight.t())
    return out.add_(bias).view(*x.shape[:-1], weight.shape[0])


def moments(x: torch.Tensor, dims: tuple[int, ...], correction: int,
            keep_centred: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Mean, centred x (if asked) and variance over `dims` (kept), two-pass.

    Two plain reductions are much faster on CPU than torch.std/var_mean over
    non-innermost dims (Welford kernels), and as accurate.
    """
    count = math.prod(x.shape[d] for d in dims)
    mean = x.mean(dims, keepdim=True)
    centred = x - mean
    # (torch.linalg.vector_norm over these dims is ~20x slower than a product and a sum)
    if keep_centred or not inplace_ok():
        sq = centred * centred
    else:
        sq, centred = centred.mul_(centred), None
    var = sq.sum(dims, keepdim=True) / max(count - correction, 1)
    return mean, centred, var


# Floor of a variance before its square root: sqrt's gradient at 0 is infinite, and a
# field constant over a frame (a pattern that died out) would turn every gradient to NaN.
_TINY = 1e-30


class RMSInstanceNorm(nn.Module):
    """MPP's RMSInstanceNorm: x / (std over space + eps) * weight; no mean subtraction.

    The std is the unbiased one over the spatial axes of each sample and channel.
    ``bias`` exists only so MPP checkpoints load: MPP never uses it.
    """

    def __init__(self, dim: int, eps: float = 1e-8, floor: float = 0.0) -> None:
        super().__init__()
        self.eps = eps
        # std floor relative to the RMS (0 in MPP): a uniform input is not blown up by 1/eps
        self.floor = floor
        self.weight = nn.Parameter(torch.ones(dim))
        # never used (as in MPP); frozen so DDP and optimizers need not handle a gradient-less parameter
        self.bias = nn.Parameter(torch.zeros(dim), requires_grad=False)

    def _denominator(self, mean: torch.Tensor, var: torch.Tensor, eps_mult: float) -> torch.Tensor:
        """std + eps, the std floored at ``floor * rms`` when a floor is set (gradient-safe at var = 0)."""
        std = var.clamp_min(_TINY).sqrt()
        if self.floor > 0:
            std = torch.maximum(std, self.floor * (mean * mean + var).clamp_min(_TINY).sqrt())
        return std + self.eps * eps_mult

    def scale(self, x: torch.Tensor, n_spatial: int, eps_mult: float = 1.0, extra: torch.Tensor | None = None) -> torch.Tensor:
        """The per-(sample, channel) factor weight / (std + eps*eps_mult) [* extra]."""
        dims = spatial_dims(x, n_spatial)
        kern = usable(x, self.weight)
        blocks = channel_blocks(x, n_spatial) if kern is not None else None
        if blocks is not None:
            # fused kernel: mean and centred sum of squares in two read-only passes
            mean, m2 = kern.channel_moments(blocks[0])
            var = m2.div_(max(blocks[0].shape[1] - 1, 1))
            w = self.weight if extra is None else self.weight * extra
            return (w / self._denominator(mean, var, eps_mult)).view(blocks[1])
        if self.floor == 0 and inplace_ok():
            # inference: w / (sqrt(ss / (n-1)) + eps) == w * sqrt(n-1) / (sqrt(ss) + eps * sqrt(n-1)), fewer small ops
            k = math.sqrt(max(math.prod(x.shape[d] for d in dims) - 1, 1))
            centred = x - x.mean(dims, keepdim=True)
            den = centred.mul_(centred).sum(dims, keepdim=True).sqrt_().add_(self.eps * eps_mult * k)
            w = self.weight * k if extra is None else self.weight * (extra * k)
            return w / den
        mean, _, var = moments(x, dims, correction=1, keep_centred=False)
        w = self.weight if extra is None else self.weight * extra
        return w / self._denominator(mean, var, eps_mult)

    def scale_cf(self, x: torch.Tensor, n_spatial: int) -> torch.Tensor:
        """The factor weight / (std + eps) for a channels-first (N, C, *S) tensor, shape (N, C, 1..)."""
        mean, _, var = moments(x, tuple(range(2, 2 + n_spatial)), correction=1, keep_centred=False)
        return self.weight.view(-1, *([1] * n_spatial)) / self._denominator(mean, var, 1.0)

    def forward(self, x: torch.Tensor, n_spatial: int) -> torch.Tensor:
        """Normalise a channels-last tensor over its `n_spatial` axes."""
        return x * self.scale(x, n_spatial)


class InstanceNorm(nn.Module):
    """Affine instance norm over space (nn.InstanceNorm2d/3d, no running stats), channels-last."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def standardize(self, x: torch.Tensor, n_spatial: int) -> torch.Tensor:
        """(x - mean) / sqrt(var + eps), without the affine (for a consumer that folds it into its weights)."""
        kern = usable(x)
        blocks = channel_blocks(x, n_spatial) if kern is not None else None
        if blocks is not None:
            return kern.instance_standardize(blocks[0], self.eps).view(x.shape)
        _, centred, var = moments(x, spatial_dims(x, n_spatial), correction=0)
        scale = torch.rsqrt(var.add_(self.eps)) if inplace_ok() else torch.rsqrt(var + self.eps)
        return centred.mul_(scale) if inplace_ok() else centred * scale

    def folded(self, weight: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """A linear map (out, in) + bias applied after this norm, with the norm's affine folded in."""
        b = weight @ self.bias
        return weight * self.weight, (b if bias is None else b + bias)

    def forward(self, x: torch.Tensor, n_spatial: int) -> torch.Tensor:
        """(x - mean) / sqrt(var + eps) * weight + bias, statistics over the spatial axes."""
        _, centred, var = moments(x, spatial_dims(x, n_spatial), correction=0)
        scale = torch.rsqrt(var + self.eps) * self.weight
        if inplace_ok():
            return centred.mul_(scale).add_(self.bias)
        return torch.addcmul(self.bias, centred, scale)


class SubsampledLinear(nn.Module):
    """MPP's field embedding: a linear map whose input columns are picked by field index.

    ``forward(x, ids)`` is ``sqrt(n_states/len(ids)) * (x @ weight[:, ids].T + bias)``:
    the scale corrects the init for the subset of fields present, and multiplies the bias too.
    """

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.dim_in, self.dim_out = dim_in, dim_out
        self.weight = nn.Parameter(torch.empty(dim_out, dim_in))
        self.bias = nn.Parameter(torch.empty(dim_out))
        bound = 1.0 / math.sqrt(dim_in)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def scale(self, n_fields: int) -> float:
        """The subsampling scale sqrt(dim_in / n_fields)."""
        return (self.dim_in / n_fields) ** 0.5

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Embed channels-last fields (..., C) with the columns of the fields `ids`."""
        return self.scale(len(ids)) * F.linear(x, self.weight[:, ids], self.bias)


class PatchConv(nn.Module):
    """A non-overlapping patch convolution (kernel = stride), no bias, Conv2d/3d weight layout."""

    def __init__(self, dim_in: int, dim_out: int, k: int, n_spatial: int) -> None:
        super().__init__()
        self.k, self.n_spatial = k, n_spatial
        self.weight = nn.Parameter(torch.empty(dim_out, dim_in, *([k] * n_spatial)))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def matrix(self) -> torch.Tensor:
        """The weight as (k^n * dim_in, dim_out) for patches flattened as (k.., dim_in)."""
        n = self.n_spatial
        w = self.weight.permute(0, *range(2, 2 + n), 1)
        return w.reshape(w.shape[0], -1).t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, *S, C) -> (N, *S/k, dim_out)."""
        if self.k == 1:
            return x @ self.matrix()
        return patchify(x, self.k, self.n_spatial) @ self.matrix()


class PatchConvTranspose(nn.Module):
    """A non-overlapping transposed patch convolution, no bias, ConvTranspose weight layout (in, out, k..)."""

    def __init__(self, dim_in: int, dim_out: int, k: int, n_spatial: int) -> None:
        super().__init__()
        self.k, self.n_spatial = k, n_spatial
        self.weight = nn.Parameter(torch.empty(dim_in, dim_out, *([k] * n_spatial)))
        # PyTorch's ConvTranspose default init (fan_in computed from dim 1)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, *S, C) -> (N, *S*k, dim_out)."""
        return unpatchify_linear(x, self.weight, self.k, self.n_spatial)


def patchify(x: torch.Tensor, k: int, n: int) -> torch.Tensor:
    """Channels-last (N, *S, C) -> (N, *S/k, k^n*C), each patch flattened as (k.., C)."""
    N, *S, C = x.shape
    shape = [N]
    for s in S:
        shape += [s // k, k]
    x = x.reshape(*shape, C)
    outer = [1 + 2 * i for i in range(n)]
    inner = [2 + 2 * i for i in range(n)]
    x = x.permute(0, *outer, *inner, 1 + 2 * n)
    return x.reshape(N, *(s // k for s in S), (k**n) * C)


def patchify_channels_first(x: torch.Tensor, k: int, n: int) -> torch.Tensor:
    """Channels-first (N, C, *S) -> channels-last patches (N, *S/k, C*k^n), flattened as (C, k..)."""
    N, C, *S = x.shape
    shape = [N, C]
    for s in S:
        shape += [s // k, k]
    x = x.reshape(shape)
    outer = [2 + 2 * i for i in range(n)]
    inner = [3 + 2 * i for i in range(n)]
    x = x.permute(0, *outer, 1, *inner)
    return x.reshape(N, *(s // k for s in S), C * k**n)


def unpatchify_linear(x: torch.Tensor, weight: torch.Tensor, k: int, n: int) -> torch.Tensor:
    """Transposed patch conv, channels-last out: (N, *S, Cin) x (Cin, Cout, k..) -> (N, *S*k, Cout)."""
    N, *S, Cin = x.shape
    Cout = weight.shape[1]
    w = weight.permute(0, *range(2, 2 + n), 1).reshape(Cin, -1)  # (Cin, k.. * Cout)
    y = (x @ w).reshape(N, *S, *([k] * n), Cout)
    # (N, S1, .., Sn, k1, .., kn, C) -> (N, S1, k1, .., Sn, kn, C)
    order = [0]
    for i in range(n):
        order += [1 + i, 1 + n + i]
    y = y.permute(*order, 1 + 2 * n)
    return y.reshape(N, *(s * k for s in S), Cout)


def unpatchify_channels_first(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, k: int, n: int) -> torch.Tensor:
    """Transposed patch conv with bias, channels-first out: (N, *S, Cin) -> (N, Cout, *S*k)."""
    N, *S, Cin = x.shape
    Cout = weight.shape[1]
    y = (x @ weight.reshape(Cin, -1)).reshape(N, *S, Cout, *([k] * n))
    # (N, S1..Sn, C, k1..kn) -> (N, C, S1, k1, .., Sn, kn)
    order = [0, 1 + n]
    for i in range(n):
        order += [1 + i, 2 + n + i]
    y = y.permute(*order).reshape(N, Cout, *(s * k for s in S))
    return y + bias.view(Cout, *([1] * n))


class MLP(nn.Module):
    """fc1 -> GELU -> fc2 (MPP's MLP)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to the last dim."""
        if inplace_ok():
            h = torch.ops.aten.gelu_(linear(x, self.fc1.weight, self.fc1.bias))
        else:
            h = F.gelu(self.fc1(x))
        return linear(h, self.fc2.weight, self.fc2.bias)


def drop_path(x: torch.Tensor, p: float, training: bool, sample_dims: int = 2) -> torch.Tensor:
    """Stochastic depth: zero whole (batch, time) samples of a branch with probability p."""
    if p <= 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty(x.shape[:sample_dims] + (1,) * (x.dim() - sample_dims)).bernoulli_(keep)
    return x * mask / keep
