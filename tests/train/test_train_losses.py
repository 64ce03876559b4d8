"""Training losses: vmse is VRMSE squared (fields with a large mean weigh like zero-mean ones), nmse is MPP's."""
from __future__ import annotations

import pytest
import torch

from physviz.train.losses import loss_fn, vmse_loss, vrmse


def test_vmse_is_vrmse_squared_for_one_field():
    torch.manual_seed(0)
    target = torch.randn(3, 1, 16, 16)
    pred = target + 0.1 * torch.randn_like(target)
    v = vrmse(pred, target)  # per sample, unbiased variance
    n = target[0, 0].numel()
    expected = (v**2 * n / (n - 1)).mean()  # vmse divides by the biased variance
    torch.testing.assert_close(loss_fn(pred, target, "vmse"), expected, rtol=1e-4, atol=1e-7)


def test_vmse_ignores_a_fields_mean_where_nmse_does_not():
    torch.manual_seed(1)
    wave = torch.randn(2, 1, 32, 32) * 0.1
    err = 0.01 * torch.randn_like(wave)
    for offset in (0.0, 10.0):
        target = wave + offset
        got = float(loss_fn(target + err, target, "vmse"))
        assert got == pytest.approx(float(loss_fn(wave + err, wave, "vmse")), rel=1e-3)
    # MPP's nmse divides by the mean square: the same error all but vanishes under a mean of 10
    assert float(loss_fn(wave + 10 + err, wave + 10, "nmse")) < 1e-3 * float(loss_fn(wave + err, wave, "nmse"))


def test_vmse_floors_a_uniform_target():
    target = torch.ones(2, 2, 8, 8)
    pred = target + 1e-3
    scale = torch.tensor([0.5, 2.0])
    got = vmse_loss(pred, target, scale, floor=1e-2)
    # var = 0: the denominator is floor * scale^2 per field, so the loss stays finite
    expected = torch.tensor([1e-6 / (1e-2 * 0.25), 1e-6 / (1e-2 * 4.0)]).mean()
    torch.testing.assert_close(got, expected.float(), rtol=1e-3, atol=0)
    # without stats: floored at a fraction of the field's mean variance over the batch
    live = torch.randn(1, 2, 8, 8)
    batch = torch.cat([target[:1], live])
    got = vmse_loss(batch + 1e-3, batch, None, floor=1e-2)
    low = 1e-2 * live.var(dim=(2, 3), unbiased=False)[0] / 2
    expected = (1e-6 / low.clamp_min(1e-7) + 1e-6 / live.var(dim=(2, 3), unbiased=False)[0]).mean() / 2
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=0)
