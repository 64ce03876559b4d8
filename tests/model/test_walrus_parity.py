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
