"""Parity of physviz's Walrus with the reference outputs of `walrus_small` (a reference assembled from the public code)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.paths import SHARED

torch = pytest.importorskip("torch")

import physviz
from physviz.model.walrus import Walrus

FIXTURE = SHARED / "fixtures" / "walrus_small"
CASES = ("case2d", "case2d_wall", "case3d")


def _case(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURE / f"{name}.npz") as z:
        return {k: z[k] for k in z.files}


def _rel(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out - ref).norm() / ref.norm())


@pytest.fixture(scope="module")
def model() -> Walrus:
    # The fixture must exist (it does in CI): a missing file is a failure, not a skip.
    assert (FIXTURE / "state_dict.pt").is_file(), f"missing parity fixture {FIXTURE}"
    m = physviz.load_model(FIXTURE / "state_dict.pt", config=FIXTURE / "config.json")
    assert isinstance(m, Walrus)
    return m


def test_config_and_keys_match_the_fixture(model: Walrus) -> None:
    ref = json.loads((FIXTURE / "config.json").read_text())["model"]
    c = model.config
    assert (c.hidden_dim, c.intermediate_dim, c.processor_blocks, c.n_states) == (
        ref["hidden_dim"], ref["intermediate_dim"], ref["processor_blocks"], ref["n_states"])
    assert c.num_heads == ref["processor"]["space_mixing"]["num_heads"] and c.causal_in_time and not c.jitter
    sd = torch.load(FIXTURE / "state_dict.pt", map_location="cpu", weights_only=True)
    own = model.state_dict()
    assert set(own) == set(sd)
    for k, v in sd.items():
        assert torch.equal(own[k], v), k
    assert not model.training
    # the fixture's field index map is the registry
    assert model.field_ids(["density", "pressure"]).tolist() == [7, 3]


@pytest.mark.parametrize("case", CASES)
def test_forward_walrus_matches_reference(model: Walrus, case: str) -> None:
    c = _case(case)
    with torch.inference_mode():
        y = model.forward_walrus(torch.from_numpy(c["x"]), torch.from_numpy(c["field_indices"]), torch.from_numpy(c["bcs"]))
    ref = torch.from_numpy(c["y"])
    assert y.shape == ref.shape
    rel = _rel(y, ref)
    assert rel < 1e-5, rel
    for t in range(ref.shape[0]):  # every output frame, not only the whole
        assert _rel(y[t], ref[t]) < 1e-5


def _small(case: str, size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    c = _case(case)
    x = torch.from_numpy(c["x"][..., :size, :size]).contiguous()
    return x, torch.from_numpy(c["field_indices"]), torch.from_numpy(c["bcs"])


def _boosted(causal_mask: bool = True) -> Walrus:
    """The fixture model with its attention output projections scaled up.

    The fixture's output projections (time output_head, space attn_out and ff_out) are at
    Walrus's layer-scale init (about 1e-7), so its outputs barely depend on the attention;
    scaled by 1e5 they dominate, and the causal mask and the attention show in the outputs.
    """
    m = physviz.load_model(FIXTURE / "state_dict.pt", config=FIXTURE / "config.json", causal_mask=causal_mask)
    with torch.no_grad():
        for blk in m.blocks:
            blk.time_mixing.output_head.weight.mul_(1e5)
            blk.space_mixing.attn_out.weight.mul_(1e5)
            blk.space_mixing.ff_out.weight.mul_(1e5)
    return m


def test_causal_in_time(model: Walrus) -> None:
    x, labels, bcs = _small("case2d")
    x2 = x.clone()
    x2[-1] = torch.randn_like(x2[-1])
    for m in (model, _boosted()):
        with torch.inference_mode():
            y = m.forward_walrus(x, labels, bcs)
            y2 = m.forward_walrus(x2, labels, bcs)
        assert torch.equal(y2[:-1], y[:-1])  # earlier predictions do not see the last frame at all
        assert _rel(y2[-1], y[-1]) > 1e-2


def test_time_mask_switch(model: Walrus) -> None:
    x, labels, bcs = _small("case2d")
    on, off = _boosted(True), _boosted(False)
    assert off.config.causal_mask is False and on.config.causal_mask is True
    x2 = x.clone()
    x2[-1] += 1.0
    with torch.inference_mode():
        y_on, y_off = on.forward_walrus(x, labels, bcs), off.forward_walrus(x, labels, bcs)
        y_off2 = off.forward_walrus(x2, labels, bcs)
        y_small_off = physviz.load_model(FIXTURE / "state_dict.pt", config=FIXTURE / "config.json",
                                         causal_mask=False).forward_walrus(x, labels, bcs)
    assert _rel(y_off, y_on) > 1e-2
    assert _rel(y_off2[0], y_off[0]) > 1e-3  # without the mask the first prediction sees later frames
    assert not torch.equal(y_small_off[:-1], model.forward_walrus(x, labels, bcs)[:-1])


def test_physviz_forward_is_the_normalised_delta_step(model: Walrus) -> None:
    x, labels, _ = _small("case2d_wall")
    xb = (3.0 * x + 0.5).transpose(0, 1).contiguous()  # (B, T, C, H, W), physical units
    bcs = ["periodic", "wall"]
    with torch.inference_mode():
        nxt = model(xb, labels, bcs)
        s = xb.square().mean(dim=(1, 3, 4)).sqrt().clamp(min=1e-5)
        d = (xb[:, 1:] - xb[:, :-1]).square().mean(dim=(1, 3, 4)).sqrt().clamp(min=1e-5)
        codes = torch.tensor([[[2, 2], [0, 0], [2, 2]]] * xb.shape[0])
        y = model.forward_walrus((xb / s[:, None, :, None, None]).transpose(0, 1), labels, codes)[-1]
        expect = xb[:, -1] + y * d[:, :, None, None]
        same = model(xb, labels, torch.tensor([[2, 2], [0, 0]]))  # Walrus codes per axis give the same
        flags = model(xb, labels, [1, 0])  # periodic flags: 0 is a wall
    assert nxt.shape == xb[:, -1].shape
    assert torch.allclose(nxt, expect, rtol=1e-5, atol=1e-5)
    assert torch.equal(nxt, same) and torch.equal(nxt, flags)


def test_model_runs_on_grids_the_reference_refuses(model: Walrus) -> None:
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        y64 = model.forward_walrus(torch.randn(2, 1, 2, 64, 48, generator=g), torch.tensor([3, 4]),
                                   torch.tensor([[[2, 2], [0, 1], [2, 2]]]))
        y3 = model.forward_walrus(torch.randn(2, 1, 1, 20, 12, 8, generator=g), torch.tensor([5]),
                                  torch.tensor([[[0, 0], [2, 2], [1, 1]]]))
    assert y64.shape == (2, 1, 2, 64, 48) and bool(torch.isfinite(y64).all())
    assert y3.shape == (2, 1, 1, 20, 12, 8) and bool(torch.isfinite(y3).all())
    assert model.token_grid((64, 64)) == (32, 32)  # strides (2, 1): 32 tokens, where the public code fails
    assert model.token_grid((128, 256)) == (32, 32)
    assert model.token_grid((32, 32, 32)) == (16, 16, 16)


# -- the blocks against a literal transcription of the public code's layout ---------------------
def _rms_group(x: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:
    """RMSGroupNorm as the public code computes it: a (B, groups, C/groups, *space) view, rms_norm over space."""
    B, C, *S = x.shape
    y = torch.nn.functional.rms_norm(x.view(B, groups, C // groups, *S), tuple(S)).view(B, C, *S)
    return y * weight.view(C, *([1] * len(S)))


def _literal_time(tm, x: torch.Tensor, heads: int) -> torch.Tensor:
    T, B, C, H, W, D = x.shape
    hd = C // heads
    h = _rms_group(x.reshape(T * B, C, H, W, D), tm.norm1.weight, heads)
    h = torch.nn.functional.conv3d(h, tm.input_head.weight, tm.input_head.bias)
    # "(t b) (he c) h w d -> (b h w d) he t c"
    h = h.view(T, B, heads, 3 * hd, H, W, D).permute(1, 4, 5, 6, 2, 0, 3).reshape(B * H * W * D, heads, T, 3 * hd)
    q, k, v = h.tensor_split(3, dim=-1)
    q, k = tm.qnorm(q), tm.knorm(k)
    pos = torch.arange(T)
    rel = pos[None, :] - pos[:, None]  # memory - context
    n = torch.clamp(-rel, min=0)  # one-sided buckets (causal), all exact below 16
    bias = tm.rel_pos_bias.relative_attention_bias.weight[n].permute(2, 0, 1)[None]
    bias = bias.masked_fill(rel[None, None] > 0, float("-inf"))
    a = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    a = a.view(B, H, W, D, heads, T, hd).permute(5, 0, 4, 6, 1, 2, 3).reshape(T * B, C, H, W, D)
    out = torch.nn.functional.conv3d(a, tm.output_head.weight, tm.output_head.bias)
    return out.view(T, B, C, H, W, D) + x


def _literal_space(sm, x: torch.Tensor, heads: int) -> torch.Tensor:
    B, C, H, W, D = x.shape
    hd = C // heads
    h = _rms_group(x, sm.norm1.weight, heads).permute(0, 2, 3, 4, 1)
    ff, q, k, v = sm.fused_ff_qkv(h).split([sm.ff_dim, C, C, C], dim=-1)
    q, k, v = (t.reshape(B, H, W, D, heads, hd).permute(0, 4, 1, 2, 3, 5) for t in (q, k, v))
    q, k = sm.q_norm(q), sm.k_norm(k)
    freqs = sm.rotary_emb.freqs
    axes = []
    for i, n in enumerate((H, W, D)):  # lucidrains' get_axial_freqs with "pixel" positions
        f = torch.linspace(-1, 1, n)[:, None] * freqs[None]
        f = f.repeat_interleave(2, dim=-1)
        shape = [1, 1, 1, f.shape[-1]]
        shape[i] = n
        axes.append(f.view(shape))
    pos = torch.cat(torch.broadcast_tensors(*axes), dim=-1)
    R = pos.shape[-1]

    def rot(t: torch.Tensor) -> torch.Tensor:
        mid = t[..., :R]
        pairs = mid.unflatten(-1, (-1, 2))
        half = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        return torch.cat((mid * pos.cos() + half * pos.sin(), t[..., R:]), dim=-1)

    q, k = rot(q), rot(k)
    q, k, v = (t.reshape(B, heads, H * W * D, hd) for t in (q, k, v))
    a = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    a = a.view(B, heads, H, W, D, hd).permute(0, 2, 3, 4, 1, 5).reshape(B, H, W, D, C)
    a_ff, gate = ff.chunk(2, dim=-1)
    out = sm.attn_out(a) + sm.ff_out(torch.nn.functional.silu(gate) * a_ff)
    return out.permute(0, 4, 1, 2, 3) + x


def test_blocks_match_a_literal_transcription() -> None:
    """The channels-last blocks compute what the public code's layout computes (attention made visible)."""
    m = _boosted()
    blk = m.blocks[0]
    g = torch.Generator().manual_seed(1)
    T, B, C, H, W, D = 4, 2, m.config.hidden_dim, 6, 5, 3
    x = torch.randn(T, B, C, H, W, D, generator=g)
    with torch.inference_mode():
        ref_t = _literal_time(blk.time_mixing, x, m.config.time_heads)
        ref = _literal_space(blk.space_mixing, ref_t.reshape(T * B, C, H, W, D), m.config.num_heads)
        ours = blk(x.permute(0, 1, 3, 4, 5, 2).contiguous()).permute(0, 1, 5, 2, 3, 4)
        last = blk(x.permute(0, 1, 3, 4, 5, 2).contiguous(), True).permute(0, 1, 5, 2, 3, 4)
    ref = ref.view(T, B, C, H, W, D)
    assert float((ref - x).norm() / x.norm()) > 0.1  # the attention shows
    assert _rel(ours, ref) < 1e-5
    assert _rel(last[0], ref[-1]) < 1e-5  # the last-frame-only path gives the last frame
