"""The full-resolution refiner: grafting is a no-op until trained, it trains, it respects periodicity, 2D/3D, save/load."""
from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from physviz.errors import ParameterError  # noqa: E402
from physviz.model import AViT, ModelConfig, load_model, save_model  # noqa: E402
from physviz.model.flops import flops  # noqa: E402
from physviz.model.surgery import expand_fields  # noqa: E402
from physviz.model.refine import PixelRefiner, pad_fields  # noqa: E402


def _model(seed: int = 0, **kw) -> AViT:
    torch.manual_seed(seed)
    cfg = {"processor_blocks": 1, "layer_scale_init": 0.3, "delta_prediction": True, **kw}
    return AViT(ModelConfig.preset("tiny", **cfg)).eval()


def _randomise(module: torch.nn.Module, seed: int = 3) -> None:
    """Non-zero weights everywhere (a trained refiner), so the tests see its output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def _x(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 2.0 + 1.5


def test_grafted_refiner_leaves_predictions_unchanged(tmp_path: Path) -> None:
    base = _model(n_spatial_dims=3)
    path = save_model(base, tmp_path / "base.safetensors")
    grafted = load_model(path, refine_width=8)
    assert grafted.config.refine_width == 8 and grafted.refine is not None
    assert grafted.num_parameters() > base.num_parameters()
    with torch.no_grad():
        for x, ids, bc in ((_x(2, 3, 3, 16, 16), [0, 1, 2], [1, 0]), (_x(1, 3, 2, 16, 16, 16), [3, 4], [1, 1, 0])):
            assert torch.equal(base(x, ids, bc), grafted(x, ids, bc))


def test_refiner_trains_and_changes_the_prediction() -> None:
    model = _model(refine_width=8).train()
    x, ids, bc = _x(2, 3, 2, 16, 16), [0, 1], [1, 1]
    target = x[:, -1] + 0.5 * torch.sign(x[:, -1] - x[:, -2])  # detail at the grid scale
    opt = torch.optim.Adam(model.refine.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = (model(x, ids, bc) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert model.refine.w_out.abs().sum() > 0
    assert losses[-1] < 0.7 * losses[0]


def test_refiner_is_equivariant_to_rolls_on_periodic_axes_only() -> None:
    ref = PixelRefiner(n_states=4, width=6, n_spatial=2)
    _randomise(ref)
    frames, delta, ids = _x(1, 3, 2, 12, 12), _x(1, 2, 12, 12, seed=2), torch.tensor([1, 3])
    with torch.no_grad():
        out = ref(frames, delta, ids, [1, 1])
        rolled = ref(frames.roll((2, 5), (3, 4)), delta.roll((2, 5), (2, 3)), ids, [1, 1])
        assert torch.allclose(rolled, out.roll((2, 5), (2, 3)), atol=1e-5)
        open_axes = ref(frames.roll(2, 3), delta.roll(2, 2), ids, [0, 0])
        assert not torch.allclose(open_axes, ref(frames, delta, ids, [0, 0]).roll(2, 2), atol=1e-3)


def test_padding_wraps_periodic_axes_and_replicates_open_ones() -> None:
    x = torch.arange(5.0).view(1, 1, 5, 1).expand(1, 1, 5, 3)
    wrapped = pad_fields(x, 1, [1, 0])
    assert wrapped[0, 0, :, 0].tolist() == [4.0, 0.0, 1.0, 2.0, 3.0, 4.0, 0.0]
    edge = pad_fields(x, 2, [0, 0])
    assert edge[0, 0, :, 0].tolist() == [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 4.0, 4.0]
    assert edge.shape == (1, 1, 9, 7)


def test_3d_refiner_on_2d_fields_matches_fields_constant_along_z() -> None:
    ref = PixelRefiner(n_states=3, width=5, n_spatial=3)
    _randomise(ref)
    frames, delta, ids = _x(1, 2, 2, 8, 8), _x(1, 2, 8, 8, seed=4), torch.tensor([0, 2])
    with torch.no_grad():
        flat = ref(frames, delta, ids, [1, 0])
        deep = ref(frames[..., None].expand(-1, -1, -1, -1, -1, 4), delta[..., None].expand(-1, -1, -1, -1, 4), ids, [1, 0, 1])
    for z in range(4):
        assert torch.allclose(deep[..., z], flat, atol=1e-5)


def test_refiner_survives_save_load_and_expand_fields(tmp_path: Path) -> None:
    model = _model(refine_width=6)
    _randomise(model.refine)
    back = load_model(save_model(model, tmp_path / "r.safetensors"))
    assert back.config.refine_width == 6
    x, ids, bc = _x(1, 3, 2, 16, 16), [0, 1], [1, 1]
    frames, delta, t = _x(1, 2, 2, 16, 16), _x(1, 2, 16, 16, seed=5), torch.tensor(ids)
    with torch.no_grad():
        assert torch.equal(model(x, ids, bc), back(x, ids, bc))
        refined = model.refine(frames, delta, t, bc)
        old = model.config.n_states
        expand_fields(model, 2)
        assert model.refine.w_in.shape[2] == model.refine.w_out.shape[0] == old + 2
        assert torch.equal(model.refine(frames, delta, t, bc), refined)  # old slots keep their weights
        assert torch.equal(model.refine.w_out[old:], torch.zeros(2, 6))
    with pytest.raises(ParameterError, match="already has a refiner of width 6"):
        load_model(tmp_path / "r.safetensors", refine_width=12)


def test_new_field_slots_of_the_refiner_train_from_the_first_step() -> None:
    model = _model(refine_width=8)
    _randomise(model.refine)
    old = model.config.n_states
    expand_fields(model, 2)
    fresh = PixelRefiner(old + 2, 8, 2).w_in
    new_in = model.refine.w_in[:, :, old:]
    assert new_in.abs().sum() > 0 and abs(new_in.std().item() / fresh.std().item() - 1) < 0.2
    x, ids, bc = _x(2, 3, 2, 16, 16), [old, old + 1], [1, 1]
    with torch.no_grad():
        before = model(x, ids, bc)
    target = x[:, -1] + 0.5 * torch.sign(x[:, -1] - x[:, -2])
    opt = torch.optim.Adam(model.refine.parameters(), lr=1e-2)
    model.train()
    loss = (model(x, ids, bc) - target).square().mean()
    loss.backward()
    opt.step()
    with torch.no_grad():
        change = model.eval()(x, ids, bc) - before
    # one step already corrects point by point (zero input kernels could only add a constant per field)
    assert change.flatten(2).std(-1).min() > 1e-3 * change.abs().max()


@pytest.mark.parametrize("bad", [-1, True, 2.5])
def test_bad_refine_width_is_named(bad: object) -> None:
    with pytest.raises(ParameterError, match="refine_width"):
        ModelConfig.preset("tiny", refine_width=bad)


def test_flops_count_the_refiner() -> None:
    cfg = ModelConfig.preset("tiny")
    assert flops(cfg.replace(refine_width=32), 4, (64, 64), 3) > flops(cfg, 4, (64, 64), 3)
