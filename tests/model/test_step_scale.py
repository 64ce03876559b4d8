"""step_scale 'context': the predicted change is in units of the context's own frame-to-frame change."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import physviz
from physviz.errors import ParameterError
from physviz.model import AViT
from physviz.model.avit import STEP_FLOOR
from physviz.model.checkpoint import save_model
from physviz.model.config import ModelConfig


def _pair() -> tuple[AViT, AViT]:
    """Two tiny models with the same weights: the change in units of the std, and of the context's step."""
    torch.manual_seed(0)
    std = AViT("tiny", processor_blocks=1, delta_prediction=True, refine_width=4)
    ctx = AViT("tiny", processor_blocks=1, delta_prediction=True, refine_width=4, step_scale="context")
    ctx.load_state_dict(std.state_dict())
    # the refiner's head starts at zero: give it weights so the whole output path is exercised
    with torch.no_grad():
        for p in (*std.refine.parameters(), *ctx.refine.parameters()):
            p.copy_(torch.sin(torch.arange(p.numel(), dtype=p.dtype)).view_as(p) * 0.1)
    return std.eval(), ctx.eval()


def test_context_step_scale_rescales_the_same_predicted_change() -> None:
    std, ctx = _pair()
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(2, 1, 2, 16, 16, generator=gen)
    # frames that drift slowly: each step moves by about 1% of the field's spread, the second sample 10x faster
    drift = torch.randn(2, 1, 2, 16, 16, generator=gen) * torch.tensor([0.01, 0.1]).view(2, 1, 1, 1, 1)
    x = base + drift * torch.arange(4.0).view(1, 4, 1, 1, 1)
    ids = std.field_ids(["vorticity", "velocity_x"])
    with torch.inference_mode():
        y_std, y_ctx = std(x, ids, [1, 1]), ctx(x, ids, [1, 1])
    last = x[:, -1]
    flat = x.reshape(2, 4, 2, -1)
    sd = flat.std(dim=(1, 3), unbiased=True).view(2, 2, 1, 1) + 1e-7
    step = (flat[:, 1:] - flat[:, :-1]).square().mean(dim=(1, 3)).sqrt().view(2, 2, 1, 1)
    unit = step + STEP_FLOOR * sd
    # the network's output in its own units is the same; only the unit differs
    torch.testing.assert_close((y_ctx - last) / unit, (y_std - last) / sd, rtol=2e-3, atol=2e-5)
    # a slow field gets small steps: the change is about the context's step, far below its spread
    change = (y_ctx - last).square().mean(dim=(2, 3)).sqrt()
    assert (change[0] < 0.2 * sd[0].flatten()).all()
    assert not torch.allclose(y_ctx, y_std)


def test_a_frozen_context_predicts_almost_no_change() -> None:
    _, ctx = _pair()
    frame = torch.randn(1, 1, 2, 16, 16, generator=torch.Generator().manual_seed(2))
    x = frame.repeat(1, 4, 1, 1, 1)
    with torch.inference_mode():
        y = ctx(x, ctx.field_ids(["vorticity", "velocity_x"]), [1, 1])
    sd = frame.std()
    assert float((y - x[:, -1]).abs().max()) < 1e-2 * float(sd)
    assert torch.isfinite(y).all()


def test_one_context_frame_falls_back_to_the_std() -> None:
    std, ctx = _pair()
    x = torch.randn(1, 1, 2, 16, 16, generator=torch.Generator().manual_seed(3))
    ids = std.field_ids(["vorticity", "velocity_x"])
    with torch.inference_mode():
        torch.testing.assert_close(ctx(x, ids, [1, 1]), std(x, ids, [1, 1]))


def test_context_step_scale_needs_delta_prediction() -> None:
    with pytest.raises(ParameterError, match="step_scale.*delta_prediction=True"):
        ModelConfig.preset("tiny", step_scale="context")
    with pytest.raises(ParameterError, match="step_scale"):
        ModelConfig.preset("tiny", delta_prediction=True, step_scale="rms")


def test_step_scale_is_an_option_a_checkpoint_takes(tmp_path) -> None:
    std, _ = _pair()
    path = save_model(std, tmp_path / "m.safetensors")
    loaded = physviz.load_model(path, step_scale="context")
    assert loaded.config.step_scale == "context"
    x = torch.randn(1, 4, 2, 16, 16, generator=torch.Generator().manual_seed(4))
    ids = std.field_ids(["vorticity", "velocity_x"])
    with torch.inference_mode():
        assert not np.allclose(loaded(x, ids, [1, 1]).numpy(), std(x, ids, [1, 1]).numpy())


def test_refine_step_feeds_the_refiner_the_last_change_in_the_unit() -> None:
    _, ctx = _pair()
    fed = AViT("tiny", processor_blocks=1, delta_prediction=True, refine_width=4, step_scale="context",
               refine_step=True).eval()
    fed.load_state_dict(ctx.state_dict())
    seen: list[torch.Tensor | None] = []
    for m in (ctx, fed):
        m.refine.register_forward_hook(lambda mod, args, out: seen.append(args[4] if len(args) > 4 else None))
    gen = torch.Generator().manual_seed(5)
    slow = torch.randn(1, 1, 2, 16, 16, generator=gen) + 1e-2 * torch.randn(1, 1, 2, 16, 16, generator=gen) * \
        torch.arange(4.0).view(1, 4, 1, 1, 1)
    ids = fed.field_ids(["vorticity", "velocity_x"])
    with torch.inference_mode():
        y_ctx, y_fed = ctx(slow, ids, [1, 1]), fed(slow, ids, [1, 1])
    assert seen[0] is None  # without refine_step the refiner reads the frame before last
    step = seen[1]
    flat = slow.reshape(1, 4, 2, -1)
    rms = (flat[:, 1:] - flat[:, :-1]).square().mean(dim=(1, 3)).sqrt().view(1, 2, 1, 1)
    sd = flat.std(dim=(1, 3), unbiased=True).view(1, 2, 1, 1) + 1e-7
    torch.testing.assert_close(step, (slow[:, -1] - slow[:, -2]) / (rms + STEP_FLOOR * sd), rtol=1e-4, atol=1e-6)
    # a drift of 1% of the spread per frame reads as a step of order one (the 1e-3 std floor takes 10%)
    assert 0.8 < float(step.square().mean().sqrt()) < 1.0
    assert not torch.allclose(y_ctx, y_fed)


def test_the_refiner_takes_the_step_in_place_of_the_frame_before_last() -> None:
    _, ctx = _pair()
    gen = torch.Generator().manual_seed(6)
    frames, delta, step = (torch.randn(2, 3, 2, 16, 16, generator=gen), torch.randn(2, 2, 16, 16, generator=gen),
                           torch.randn(2, 2, 16, 16, generator=gen))
    ids = ctx.field_ids(["vorticity", "velocity_x"])
    swapped = frames.clone()
    swapped[:, -2] = step
    with torch.inference_mode():
        torch.testing.assert_close(ctx.refine(frames, delta, ids, [1, 1], step), ctx.refine(swapped, delta, ids, [1, 1]))


def test_refine_step_needs_a_refiner() -> None:
    with pytest.raises(ParameterError, match="refine_step.*refine_width"):
        ModelConfig.preset("tiny", delta_prediction=True, refine_step=True)
