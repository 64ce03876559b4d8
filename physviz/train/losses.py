"""Training losses (MPP's normalised MSE, MSE, MAE) and the one-step VRMSE of validation."""
from __future__ import annotations

import torch

EPS = 1e-7


def _scaled(pred: torch.Tensor, target: torch.Tensor, scale: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if scale is None:
        return pred, target
    shape = (1, -1) + (1,) * (pred.dim() - 2)
    s = scale.to(pred.dtype).view(shape)
    return pred / s, target / s


def loss_fn(pred: torch.Tensor, target: torch.Tensor, kind: str = "nmse", scale: torch.Tensor | None = None) -> torch.Tensor:
    """Loss of a prediction (B, C, *S) against the target.

    "nmse": MPP's ``mean_S(res^2) / (1e-7 + mean_S(tar^2))`` per sample and field, averaged
    (invariant to field scale); "mse"/"mae": on fields divided by ``scale`` (stats.yaml std).
    """
    spatial = tuple(range(2, pred.dim()))
    if kind == "nmse":
        res = (pred - target).pow(2).mean(spatial)
        return (res / (EPS + target.pow(2).mean(spatial))).mean()
    p, t = _scaled(pred, target, scale)
    if kind == "mse":
        return (p - t).pow(2).mean()
    if kind == "mae":
        return (p - t).abs().mean()
    raise ValueError(f"unknown loss {kind!r}")


def vrmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample VRMSE (B,): sqrt(MSE / (var(target) + eps)) per field, the_well's definition, averaged over fields."""
    spatial = tuple(range(2, pred.dim()))
    mse = (pred - target).pow(2).mean(spatial)
    var = target.var(dim=spatial, unbiased=True) if target[0, 0].numel() > 1 else torch.zeros_like(mse)
    return torch.sqrt(mse / (var + EPS)).mean(1)
