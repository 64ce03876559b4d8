"""Parity with the official MPP AViT: the fixture's outputs are reproduced to < 1e-5 relative error."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.paths import SHARED

torch = pytest.importorskip("torch")

from physviz.errors import ParameterError  # noqa: E402
from physviz.model import AViT, ModelConfig, load_model, load_mpp_checkpoint  # noqa: E402

FIXTURE = SHARED / "fixtures" / "mpp_small"
CASES = ("case0", "case1")


def _case(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURE / f"{name}.npz") as z:
        return {k: z[k] for k in z.files}


def _rel(out: torch.Tensor, y: np.ndarray) -> float:
    y_t = torch.from_numpy(y)
    return float((out - y_t).norm() / y_t.norm())


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    # The fixture must exist (it does in CI): a missing file is a failure, not a skip.
    assert (FIXTURE / "state_dict.pt").is_file(), f"missing parity fixture {FIXTURE}"
    return torch.load(FIXTURE / "state_dict.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def model(state_dict: dict[str, torch.Tensor]) -> AViT:
    return load_mpp_checkpoint(FIXTURE / "state_dict.pt")


def test_fixture_config_is_inferred(model: AViT) -> None:
    meta = json.loads((FIXTURE / "meta.json").read_text())
    cfg = model.config
    assert (cfg.embed_dim, cfg.num_heads, cfg.processor_blocks) == (
        meta["config"]["embed_dim"], meta["config"]["heads"], meta["config"]["blocks"])
    assert cfg.n_states == meta["n_states"] and cfg.patch_size == meta["patch"]
    assert cfg.head_dim == 64 and cfg.n_spatial_dims == 2 and cfg.periodic_bias == "mpp"
    assert not model.training


@pytest.fixture(params=["fast", "fused-kernels"])
def attention_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the short-sequence paths (default) and with SDPA everywhere."""
    if request.param == "fused-kernels":
        from physviz.model.attention import AxialAttentionBlock, TimeAttentionBlock

        monkeypatch.setattr(AxialAttentionBlock, "dense_max_tokens", 0)
        monkeypatch.setattr(TimeAttentionBlock, "small_scores", 0)
    return request.param


@pytest.mark.parametrize("case", CASES)
def test_forward_mpp_matches_official(model: AViT, case: str, attention_path: str) -> None:
    c = _case(case)
    with torch.no_grad():
        out = model.forward_mpp(torch.from_numpy(c["x"]), torch.from_numpy(c["state_labels"]), torch.from_numpy(c["bcs"]))
    assert out.shape == c["y"].shape
    assert _rel(out, c["y"]) < 1e-5


@pytest.mark.parametrize("case", CASES)
def test_batch_first_forward_matches_official(model: AViT, case: str, attention_path: str) -> None:
    c = _case(case)
    x = torch.from_numpy(c["x"]).permute(1, 0, 2, 3, 4).contiguous()  # (B, T, C, H, W)
    ids = torch.from_numpy(c["state_labels"][0])
    # MPP applies bcs[:, 0] to its last axis (W) and bcs[:, 1] to H; ours index the axes in order
    bcs = torch.from_numpy(c["bcs"][0][::-1].copy())
    with torch.inference_mode():
        out = model(x, ids, bcs)
    assert _rel(out, c["y"]) < 1e-5
    with torch.inference_mode():  # bcs as (B, ndim) rows and ids as (B, C) rows work too
        out2 = model(x, torch.from_numpy(c["state_labels"]), bcs.expand(x.shape[0], 2))
    assert torch.equal(out, out2)
    x.requires_grad_(True)  # the autograd path (no in-place updates, no caches) agrees too
    out3 = model(x, ids, bcs)
    assert _rel(out3.detach(), c["y"]) < 1e-5


def test_load_variants_give_identical_weights(state_dict: dict[str, torch.Tensor], model: AViT, tmp_path: Path) -> None:
    ref = model.state_dict()
    wrapped = {"iters": 10, "epoch": 1, "model_state": {f"module.{k}": v for k, v in state_dict.items()},
               "optimizer_state_dict": {}}
    path = tmp_path / "ckpt.tar"
    torch.save(wrapped, path)
    variants = [
        load_mpp_checkpoint(state_dict),
        load_mpp_checkpoint({"model_state": state_dict}),
        load_mpp_checkpoint({f"module.{k}": v for k, v in state_dict.items()}),
        load_mpp_checkpoint(path),
        load_model(path),  # physviz.load_model routes a torch checkpoint to the MPP loader
    ]
    for m in variants:
        assert m.config == model.config
        for k, v in m.state_dict().items():
            assert torch.equal(v, ref[k]), k
    assert variants[-1].metadata["format"] == "mpp"


def test_mismatched_keys_are_listed(state_dict: dict[str, torch.Tensor]) -> None:
    broken = dict(state_dict)
    broken.pop("blocks.1.temporal.gamma")
    broken["blocks.0.spatial.extra"] = torch.zeros(3)
    with pytest.raises(ParameterError, match=r"missing keys \['blocks.1.temporal.gamma'\].*unexpected keys \['blocks.0.spatial.extra'\]"):
        load_mpp_checkpoint(broken)
    model = AViT(ModelConfig(embed_dim=128, num_heads=2, processor_blocks=3))
    from physviz.model.checkpoint import load_strict

    with pytest.raises(ParameterError, match="missing keys"):
        load_strict(model, state_dict, "the fixture")


def test_not_an_mpp_state_dict() -> None:
    with pytest.raises(ParameterError, match="not an MPP AViT"):
        load_mpp_checkpoint({"weight": torch.zeros(2)})
