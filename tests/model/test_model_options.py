"""Model options (delta prediction, patch jitter, any resolution, gradient checkpointing), 3D, bad inputs."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from physviz.errors import ParameterError, SchemaError, UnknownFieldError  # noqa: E402
from physviz.model import AViT, ModelConfig  # noqa: E402


def _model(seed: int = 0, **kw) -> AViT:
    torch.manual_seed(seed)
    cfg = {"processor_blocks": 2, "layer_scale_init": 0.3, **kw}
    return AViT(ModelConfig.preset("tiny", **cfg)).eval()


def _x(*shape: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * 2.0 + 1.5


# -- delta prediction -------------------------------------------------------------
def test_delta_prediction_adds_to_the_last_frame() -> None:
    x = _x(2, 4, 3, 16, 16)
    ids, bcs = [0, 1, 2], [1, 0]
    plain, delta = _model(delta_prediction=False), _model(delta_prediction=True)
    for m in (plain, delta):
        with torch.no_grad():  # a decoder head that predicts zero
            m.debed.out_kernel.zero_()
            m.debed.out_bias.zero_()
    with torch.no_grad():
        assert torch.allclose(delta(x, ids, bcs), x[:, -1], atol=1e-6)
        mean = x.mean(dim=(1, 3, 4))[:, :, None, None].expand(-1, -1, 16, 16)
        assert torch.allclose(plain(x, ids, bcs), mean, atol=1e-5)
    # with a live head, delta output = last frame + (plain output - mean)
    p2, d2 = _model(seed=3), _model(seed=3, delta_prediction=True)
    with torch.no_grad():
        diff = d2(x, ids, bcs) - x[:, -1]
        assert torch.allclose(diff, p2(x, ids, bcs) - mean, atol=1e-5)


# -- patch jittering ----------------------------------------------------------------
def test_jitter_is_deterministic_per_seed() -> None:
    m = _model()
    x, ids, bcs = _x(1, 3, 2, 32, 24), [0, 4], [1, 0]
    with torch.no_grad():
        a = m.predict(x, ids, bcs, jitter_seed=5, ensemble=3)
        b = m.predict(x, ids, bcs, jitter_seed=5, ensemble=3)
        c = m.predict(x, ids, bcs, jitter_seed=6, ensemble=3)
        plain = m(x, ids, bcs)
        zero = m.predict(x, ids, bcs, shifts=[[0, 0]])
    assert torch.equal(a, b)
    assert not torch.allclose(a, c, atol=1e-4)
    assert torch.equal(zero, plain)  # K=1 with zero shift is the plain forward
    assert a.shape == plain.shape


def test_ensemble_is_the_mean_of_its_members() -> None:
    m = _model()
    x, ids, bcs = _x(1, 3, 2, 32, 32), [0, 4], [0, 1]
    g = torch.Generator().manual_seed(11)
    members = torch.randint(0, 8, (3, 2), generator=g).tolist()
    with torch.no_grad():
        ens = m.predict(x, ids, bcs, jitter_seed=11, ensemble=3)
        each = [m.predict(x, ids, bcs, shifts=[s]) for s in members]
    assert torch.allclose(ens, sum(each) / 3, atol=1e-6)
    assert not torch.allclose(each[0], each[1], atol=1e-4) or members[0] == members[1]


def test_rolling_a_periodic_field_by_a_patch_multiple_rolls_the_output() -> None:
    m = _model(periodic_bias="modular")
    x, ids, bcs = _x(1, 3, 2, 32, 32), [0, 4], [1, 1]
    shift = (16, 8)  # multiples of the 8-point patch
    xr = torch.roll(x, shift, dims=(3, 4))
    with torch.no_grad():
        y, yr = m(x, ids, bcs), m(xr, ids, bcs)
        j, jr = (m.predict(v, ids, bcs, jitter_seed=2, ensemble=2) for v in (x, xr))
    assert torch.allclose(torch.roll(y, shift, dims=(2, 3)), yr, atol=1e-5)
    assert torch.allclose(torch.roll(j, shift, dims=(2, 3)), jr, atol=1e-5)
    # a jitter shift is undone: shifting a periodic field by s under jitter s' == jitter s+s'
    with torch.no_grad():
        a = m.predict(torch.roll(x, (3, 5), dims=(3, 4)), ids, bcs, shifts=[[1, 2]])
        b = m.predict(x, ids, bcs, shifts=[[4, 7]])
    assert torch.allclose(a, torch.roll(b, (3, 5), dims=(2, 3)), atol=1e-5)


def test_jitter_in_training_changes_the_patch_grid() -> None:
    m = _model(jitter=True).train()
    x = _x(1, 2, 1, 16, 16)
    torch.manual_seed(0)
    outs = [m(x, [0], [1, 1]) for _ in range(4)]
    assert outs[0].shape == (1, 1, 16, 16)
    assert any(not torch.allclose(outs[0], o) for o in outs[1:])


# -- any resolution -------------------------------------------------------------------
def test_pad_to_patch_accepts_any_resolution() -> None:
    cfg = {"embed_dim": 64, "num_heads": 1, "head_dim": 64, "processor_blocks": 1, "n_states": 12, "patch_size": 16}
    torch.manual_seed(0)
    strict = AViT(ModelConfig(**cfg)).eval()
    padded = AViT(ModelConfig(**cfg, pad_to_patch=True)).eval()
    padded.load_state_dict(strict.state_dict())
    x = _x(1, 2, 2, 72, 72)
    with pytest.raises(ParameterError, match=r"Resolution 72x72 is not a multiple of the patch size 16 along x, y; set pad_to_patch=True"):
        strict(x, [6, 7], [0, 0])
    with torch.no_grad():
        for bcs in ([0, 0], [1, 1], [1, 0]):
            y = padded(x, [6, 7], bcs)
            assert y.shape == (1, 2, 72, 72) and torch.isfinite(y).all()
        # inputs already a patch multiple are not padded: same result as the strict model
        x64 = _x(1, 2, 2, 64, 48)
        assert torch.equal(padded(x64, [6, 7], [1, 0]), strict(x64, [6, 7], [1, 0]))
    zeros = AViT(ModelConfig(**cfg, pad_to_patch=True, pad_mode="zeros")).eval()
    zeros.load_state_dict(strict.state_dict())
    with torch.no_grad():
        assert not torch.allclose(zeros(x, [6, 7], [0, 0]), padded(x, [6, 7], [0, 0]))


# -- gradient checkpointing ------------------------------------------------------------
def test_gradient_checkpointing_gives_the_same_outputs_and_gradients() -> None:
    x = _x(2, 3, 2, 16, 16)
    results = []
    for ckpt in (False, True):
        m = _model().train()
        m.gradient_checkpointing = ckpt
        y = m(x, [0, 1], [1, 0])
        (y.square().mean() + y.mean()).backward()
        results.append((y.detach(), {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}))
    (y0, g0), (y1, g1) = results
    assert torch.allclose(y0, y1, atol=1e-6, rtol=0)
    assert g0.keys() == g1.keys() and len(g0) > 50
    for k in g0:
        assert torch.allclose(g0[k], g1[k], atol=1e-6, rtol=1e-5), k


def test_attention_gradients_match_the_math_backend() -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    x = _x(1, 3, 2, 16, 16)
    grads = []
    for backend in (None, SDPBackend.MATH):
        m = _model().train()
        if backend is None:
            y = m(x, [0, 1], [1, 1])
        else:
            with sdpa_kernel(backend):
                y = m(x, [0, 1], [1, 1])
        y.square().sum().backward()
        grads.append({k: p.grad for k, p in m.named_parameters() if "rel_pos_bias" in k or "input_head" in k})
    for k in grads[0]:
        assert grads[0][k].abs().sum() > 0, k
        assert torch.allclose(grads[0][k], grads[1][k], atol=1e-5, rtol=1e-4), k


# -- 3D ------------------------------------------------------------------------------------
def test_3d_model_in_the_same_class() -> None:
    m = _model(n_spatial_dims=3, pad_to_patch=True)
    assert m.embed.in_proj[0].weight.dim() == 5 and m.debed.out_kernel.dim() == 5
    x = _x(2, 2, 2, 16, 8, 24)
    with torch.no_grad():
        y = m(x, [8, 9], [1, 0, 1])
        assert y.shape == (2, 2, 16, 8, 24)
        assert m.predict(x, [8, 9], [1, 0, 1], jitter_seed=0, ensemble=2).shape == y.shape
        assert m(_x(1, 2, 1, 12, 8, 8), [0], [0, 0, 0]).shape == (1, 1, 12, 8, 8)
    with pytest.raises(ParameterError, match="one flag per spatial axis"):
        m(x, [8, 9], [1, 0])


# -- bad inputs -------------------------------------------------------------------------------
def test_bad_inputs_get_clear_errors() -> None:
    m = _model()
    x = _x(1, 2, 3, 16, 16)
    with pytest.raises(ParameterError, match=r"field_ids names 2 fields but the input has 3 field channels"):
        m(x, [0, 1], [0, 0])
    with pytest.raises(UnknownFieldError, match=r"field_ids \[99\] are outside the model's 24 embedding slots"):
        m(x, [0, 1, 99], [0, 0])
    with pytest.raises(SchemaError, match=r"this 2D model takes \(batch, time, fields, x, y\) = 5 dims"):
        m(_x(1, 2, 3, 16, 16, 16), [0, 1, 2], [0, 0])
    with pytest.raises(SchemaError, match=r"add a batch axis"):
        m(x[0], [0, 1, 2], [0, 0])
    m3 = _model(n_spatial_dims=3)
    with pytest.raises(SchemaError, match=r"this 3D model takes \(batch, time, fields, x, y, z\) = 6 dims"):
        m3(x[0], [0, 1, 2], [0, 0, 0])
    with pytest.raises(ParameterError, match=r"bcs must hold one flag per spatial axis \(2"):
        m3(x, [0, 1, 2], [0, 0, 0])  # 2D fields through a 3D model take x and y flags
    with pytest.raises(ParameterError, match=r"bcs \[2, 0\] must be 1 \(periodic\) or 0"):
        m(x, [0, 1, 2], [2, 0])
    with pytest.raises(ParameterError, match="Resolution 20x16 is not a multiple of the patch size 8 along x"):
        m(_x(1, 2, 3, 20, 16), [0, 1, 2], [0, 0])
    with pytest.raises(ParameterError, match="field_ids differ between samples"):
        m(_x(2, 2, 1, 16, 16), [[0], [1]], [0, 0])
    with pytest.raises(ParameterError, match=r"one flag per spatial axis \(2 for this model\)"):
        m(x, [0, 1, 2], [1, 0, 1, 0])
    with pytest.raises(ParameterError, match="bcs differ between samples"):
        m(_x(2, 2, 1, 16, 16), [0], [[1, 0], [0, 0]])


# -- field growth ---------------------------------------------------------------------------------
def test_expand_fields_keeps_old_slots_and_ensure_field_slots_widens_the_model() -> None:
    from physviz.model.surgery import ensure_field_slots, expand_fields

    m, ref = _model(), _model()
    x = _x(1, 2, 2, 16, 16)
    with torch.no_grad():
        before = m(x, [0, 1], [1, 1])
    old_bag = m.space_bag.weight.detach().clone()
    expand_fields(m, 2)
    assert m.config.n_states == 26 and m.space_bag.weight.shape == (32, 26) and m.registry.n_slots == 26
    assert m.debed.out_kernel.shape[1] == 26 and m.debed.out_bias.shape == (26,)
    assert torch.equal(m.space_bag.weight[:, :24], old_bag)
    # as in MPP, the embedding scale sqrt(n_states / n_fields) follows the new slot count
    with torch.no_grad():
        ref.space_bag.weight.mul_((26 / 24) ** 0.5)
        ref.space_bag.bias.mul_((26 / 24) ** 0.5)
        assert torch.allclose(m(x, [0, 1], [1, 1]), ref(x, [0, 1], [1, 1]), atol=1e-5)
        assert m(x, [0, 25], [1, 1]).shape == before.shape
    reg = m.registry
    added = [reg.add(f"new_{i}") for i in range(7)]  # 6 free slots, then one past the model's
    assert added[-1] == 26 and reg.n_slots == 27
    assert m.config.n_states == 26  # the registry does not resize the model
    with pytest.raises(UnknownFieldError, match="ensure_field_slots"):
        m(x, m.field_ids(["density", "new_6"]), [1, 1])
    ids = ensure_field_slots(m, ["density", "new_6", "new_7"])
    assert ids == [10, 26, 27] and m.config.n_states == 28 and m.space_bag.weight.shape[1] == 28
    assert reg.n_slots == 28 and m.field_ids(["density", "new_7"]).tolist() == [10, 27]
    with torch.no_grad():
        assert m(x, m.field_ids(["density", "new_7"]), [1, 1]).shape == before.shape
    assert ensure_field_slots(m, ["density"]) == [10] and m.config.n_states == 28  # nothing new: no change


# -- relative position bias ---------------------------------------------------------------------
def test_relative_buckets() -> None:
    from physviz.model.attention import relative_buckets

    # T5 bidirectional buckets, max_distance 32: exact below 8, logarithmic above, keys after the query offset by 16
    row = relative_buckets(40, 0, 32, 32, "mpp")[0].tolist()
    assert row[:8] == [0, 17, 18, 19, 20, 21, 22, 23] and row[8] == 24 and row[-1] == 31
    assert relative_buckets(40, 0, 32, 32, "mpp")[:, 0].tolist()[:9] == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    for length in (6, 7, 8):
        mod = relative_buckets(length, 1, 32, 32, "modular")
        for i in range(length):  # the modular wrap depends only on the offset modulo L
            assert torch.equal(mod[i], torch.roll(mod[0], i))
        mpp = relative_buckets(length, 1, 32, 32, "mpp")
        if length % 2 == 0:  # MPP's wrap agrees except at the antipodal offset L/2
            pos = torch.arange(length)
            antipodal = ((pos[None, :] - pos[:, None]).abs() == length // 2)
            assert torch.equal(mpp[~antipodal], mod[~antipodal])


# -- implementation paths ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(32, 32), (64, 24), (16, 24, 16)])
def test_attention_paths_agree_in_value_and_gradient(shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    from physviz.model.attention import AxialAttentionBlock, TimeAttentionBlock

    n = len(shape)
    x = _x(1, 3, 2, *shape)
    bcs = [1, 0, 1][:n]
    results = []
    for fast in (True, False):
        monkeypatch.setattr(AxialAttentionBlock, "dense_max_tokens", 64 if fast else 0)
        monkeypatch.setattr(TimeAttentionBlock, "small_scores", (1 << 21) if fast else 0)
        m = _model(n_spatial_dims=n).train()
        y = m(x, [0, 1], bcs)
        y.square().sum().backward()
        results.append((y.detach(), {k: p.grad for k, p in m.named_parameters() if p.grad is not None}))
        with torch.inference_mode():  # the in-place inference path (folded norms, cached weights) agrees
            y_inf = m.eval()(x, [0, 1], bcs)
        assert float((y_inf - y.detach()).norm() / y.norm()) < 1e-5, f"inference path, fast={fast}"
    (y0, g0), (y1, g1) = results
    assert float((y0 - y1).norm() / y1.norm()) < 1e-5
    assert g0.keys() == g1.keys()
    scale = max(float(g.norm()) for g in g1.values())  # some grads are analytically zero: rounding only
    for k in g0:
        assert float((g0[k] - g1[k]).norm()) <= 1e-4 * float(g1[k].norm()) + 1e-6 * scale, k


def test_inference_caches_follow_parameter_updates() -> None:
    m = _model()
    x, ids, bcs = _x(1, 2, 2, 32, 32), [0, 1], [1, 1]
    with torch.no_grad():
        y0 = m(x, ids, bcs)
        m.blocks[0].temporal.input_head.weight.mul_(1.5)  # as an optimizer step would
        m.debed.out_bias.add_(1.0)
        m.space_bag.weight.mul_(0.5)
        y1 = m(x, ids, bcs)
    y_ref = m(x, ids, bcs)  # autograd path: no caches at all
    assert not torch.allclose(y0, y1, atol=1e-3)
    assert float((y1 - y_ref.detach()).norm() / y_ref.norm()) < 1e-6
    other = _model(seed=5)
    m.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert torch.equal(m(x, ids, bcs), other(x, ids, bcs))


def test_constant_fields_train_without_nan() -> None:
    """A window whose fields are uniform (a Gray-Scott pattern that died out) gives finite gradients."""
    import torch

    from physviz.model import AViT, ModelConfig

    torch.manual_seed(0)
    model = AViT(ModelConfig.preset("tiny", context_frames=4, delta_prediction=True), registry="physviz").train()
    x = torch.ones(2, 4, 2, 32, 32)
    y = model(x, model.field_ids(["A", "B"]), [1, 1])
    (y - 1.0).pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(y).all()


def test_a_3d_model_takes_2d_fields() -> None:
    """2D fields through a 3D model: kernels summed over z in the stem, so tokens match z-constant 3D fields."""
    import torch

    from physviz.model import AViT, ModelConfig

    torch.manual_seed(0)
    m = AViT(ModelConfig.preset("tiny", n_spatial_dims=3, context_frames=4), registry="physviz").eval()
    ids = m.field_ids(["vorticity", "velocity_x", "velocity_y"])
    x = torch.randn(2, 4, 3, 32, 32)
    with torch.inference_mode():
        y = m(x, ids, [1, 1])
        x3 = x.unsqueeze(-1).expand(*x.shape, 8).reshape(8, 3, 32, 32, 8)
        t2 = m.embed(x.reshape(8, 3, 32, 32), m.space_bag, ids)
        t3 = m.embed(x3, m.space_bag, ids)
    assert y.shape == (2, 3, 32, 32) and torch.isfinite(y).all()
    # equal up to the unbiased-variance correction of the norms (counts differ by the z extent)
    assert float((t3[..., 0, :] - t2).norm() / t2.norm()) < 5e-3
    m.train()
    m(x, ids, [1, 1]).pow(2).mean().backward()
    assert m.embed.in_proj[0].weight.grad is not None and torch.isfinite(m.embed.in_proj[0].weight.grad).all()
    assert m.debed.out_kernel.grad is not None
