"""Training losses (VRMSE squared, MPP's normalised MSE, MSE, MAE), the rollout (pushforward) loss and the one-step VRMSE of validation."""
from __future__ import annotations

from collections.abc import Callable

import torch

EPS = 1e-7
VMSE_FLOOR = 1e-2  # uniform-field floor of vmse, as a fraction of the dataset variance


def _scaled(pred: torch.Tensor, target: torch.Tensor, scale: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if scale is None:
        return pred, target
    shape = (1, -1) + (1,) * (pred.dim() - 2)
    s = scale.to(pred.dtype).view(shape)
    return pred / s, target / s


def loss_fn(pred: torch.Tensor, target: torch.Tensor, kind: str = "nmse", scale: torch.Tensor | None = None) -> torch.Tensor:
    """Loss of a prediction (B, C, *S) against the target.

    "vmse": VRMSE squared, per sample and field (see `vmse_loss`); "nmse": MPP's
    ``mean_S(res^2) / (1e-7 + mean_S(tar^2))`` per sample and field, averaged (invariant to
    field scale, but a field's mean counts as signal); "mse"/"mae": on fields divided by
    ``scale`` (stats.yaml std).
    """
    spatial = tuple(range(2, pred.dim()))
    if kind == "nmse":
        res = (pred - target).pow(2).mean(spatial)
        return (res / (EPS + target.pow(2).mean(spatial))).mean()
    if kind == "vmse":
        return vmse_loss(pred, target, scale)
    p, t = _scaled(pred, target, scale)
    if kind == "mse":
        return (p - t).pow(2).mean()
    if kind == "mae":
        return (p - t).abs().mean()
    raise ValueError(f"unknown loss {kind!r}")


def vmse_loss(pred: torch.Tensor, target: torch.Tensor, scale: torch.Tensor | None = None,
              floor: float = VMSE_FLOOR) -> torch.Tensor:
    """The square of VRMSE as a loss: ``mean_S(res^2) / max(var_S(target), floor)`` per sample and field.

    The denominator is the target's own spatial variance (what VRMSE divides by), so a field
    with a large mean (a water height near 1, a density) weighs as much as a zero-mean one;
    MPP's nmse divides by ``mean_S(target^2)`` and all but ignores such fields' dynamics. A
    sample whose field is (nearly) uniform is floored at ``floor`` times the dataset's variance
    (``scale``, the stats.yaml std, squared) or, without stats, times the field's mean variance
    over the batch.
    """
    spatial = tuple(range(2, pred.dim()))
    res = (pred - target).pow(2).mean(spatial)
    var = target.var(dim=spatial, unbiased=False)
    if scale is not None:
        low = (floor * scale.to(pred.dtype).pow(2)).view(1, -1)
    else:
        low = floor * var.detach().mean(0, keepdim=True)
    return (res / torch.maximum(var, low + EPS)).mean()


def vrmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample VRMSE (B,): sqrt(MSE / (var(target) + eps)) per field, the_well's definition, averaged over fields."""
    spatial = tuple(range(2, pred.dim()))
    mse = (pred - target).pow(2).mean(spatial)
    var = target.var(dim=spatial, unbiased=True) if target[0, 0].numel() > 1 else torch.zeros_like(mse)
    return torch.sqrt(mse / (var + EPS)).mean(1)


def rollout_loss(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, kind: str = "vmse",
                 scale: torch.Tensor | None = None, gradient: str = "last") -> torch.Tensor:
    """Loss of a K-frame rollout from context x (B, T, C, *S) against y (B, K, C, *S), the model fed its own frames.

    ``gradient`` 'last' is the pushforward trick: frames 1..K-1 are rolled out without
    gradient and the loss is that of frame K, so the model learns to correct its own errors
    at the cost of one step's memory. 'all' back-propagates through the rollout and averages
    the loss of every frame.
    """
    k = y.shape[1]
    ctx = x
    if gradient == "last":
        with torch.no_grad():
            for _ in range(k - 1):
                ctx = torch.cat([ctx[:, 1:], forward(ctx).to(ctx.dtype)[:, None]], dim=1)
        return loss_fn(forward(ctx).float(), y[:, -1], kind, scale)
    if gradient != "all":
        raise ValueError(f"unknown rollout gradient {gradient!r}")
    total = torch.zeros((), dtype=torch.float32, device=x.device)
    for j in range(k):
        pred = forward(ctx)
        total = total + loss_fn(pred.float(), y[:, j], kind, scale)
        ctx = torch.cat([ctx[:, 1:], pred.to(ctx.dtype)[:, None]], dim=1)
    return total / k
