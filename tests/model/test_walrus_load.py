"""Walrus checkpoints: the released configuration and layout, config files, memory-mapped loading, bf16, field names."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.paths import SHARED

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

import physviz  # noqa: E402
from physviz.errors import UnknownFieldError  # noqa: E402
from physviz.model import load_model, save_model  # noqa: E402
from physviz.model.family import build_model  # noqa: E402
from physviz.model.walrus import RELEASED_FIELDS, Walrus, WalrusConfig, preset  # noqa: E402
from physviz.model.walrus.config import from_reference  # noqa: E402

FIXTURE = SHARED / "fixtures" / "walrus_small"


def _fixture_sd() -> dict[str, torch.Tensor]:
    assert (FIXTURE / "state_dict.pt").is_file(), f"missing parity fixture {FIXTURE}"
    return torch.load(FIXTURE / "state_dict.pt", map_location="cpu", weights_only=True)


def _pattern(keys) -> set[str]:
    return {re.sub(r"^blocks\.\d+\.", "blocks.N.", k) for k in keys}


def test_released_configuration_on_meta_device() -> None:
    with torch.device("meta"):
        model = Walrus(preset("released"))
    assert model.num_parameters() == 1_286_199_047
    sd = model.state_dict()
    assert len(sd) == 857
    assert _pattern(sd) == _pattern(_fixture_sd())  # the fixture's key names at the released size
    assert {int(k.split(".")[1]) for k in sd if k.startswith("blocks.")} == set(range(40))
    assert tuple(sd["embed.3.proj1.weight"].shape) == (352, 67, 8, 8, 8)
    assert tuple(sd["blocks.0.space_mixing.fused_ff_qkv.weight"].shape) == (1408 * 7, 1408)
    assert tuple(sd["blocks.0.time_mixing.rel_pos_bias.relative_attention_bias.weight"].shape) == (32, 16)
    assert all(p.is_meta for p in model.parameters())


def _hydra_config(fmap: dict[str, int] | None = None) -> dict:
    """The fixture's config written as Walrus's extended_config.yaml lays it out (Hydra targets, references)."""
    ref = json.loads((FIXTURE / "config.json").read_text())
    model = dict(ref["model"])
    model["_target_"] = "walrus.models.IsotropicModel"
    model["encoder"] = {"_target_": "walrus.models.encoders.vstride_encoder.SpaceBagAdaptiveDVstrideEncoder",
                        "_partial_": True, **model["encoder"]}
    model["n_states"] = "${model.n_states_value}"  # an OmegaConf reference, resolved by the reader
    model["n_states_value"] = ref["model"]["n_states"]
    return {"model": model, "data": {"field_index_map_override": fmap or ref["field_index_map"]},
            "trainer": {"enable_amp": False}}


@pytest.fixture()
def released_layout(tmp_path: Path) -> Path:
    """A small synthetic file in the released layout ({'app': {'model': sd}}) with extended_config.yaml beside it."""
    path = tmp_path / "walrus.pt"
    torch.save({"app": {"model": _fixture_sd()}, "optimizer": {}}, path)
    (tmp_path / "extended_config.yaml").write_text(yaml.safe_dump(_hydra_config()))
    return path


def _case2d_small() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with np.load(FIXTURE / "case2d.npz") as z:
        return (torch.from_numpy(z["x"][..., :32, :32].copy()), torch.from_numpy(z["field_indices"]),
                torch.from_numpy(z["bcs"]))


def test_released_layout_loads_with_config_beside(released_layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model = physviz.load_model(released_layout)
    monkeypatch.undo()
    assert isinstance(model, Walrus) and model.metadata["format"] == "walrus"
    assert calls and all(c.get("mmap") is True and c.get("weights_only") is True for c in calls)
    ref = physviz.load_model(FIXTURE / "state_dict.pt", config=FIXTURE / "config.json")
    assert model.config == ref.config
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    x, labels, bcs = _case2d_small()
    with torch.inference_mode():
        assert torch.equal(model.forward_walrus(x, labels, bcs), ref.forward_walrus(x, labels, bcs))
    # the config's field map is the registry
    assert model.field_ids(["velocity_x", "density"]).tolist() == [4, 7]


def test_config_passed_explicitly_and_read_from_hydra_yaml(tmp_path: Path) -> None:
    path = tmp_path / "weights" / "walrus.pt"
    path.parent.mkdir()
    torch.save({"app": {"model": _fixture_sd()}}, path)
    cfg_path = tmp_path / "my_config.yaml"
    cfg_path.write_text(yaml.safe_dump(_hydra_config()))
    model = load_model(path, config=cfg_path)
    assert model.config.n_states == 12 and model.config.hidden_dim == 128
    assert model.config == from_reference(json.loads((FIXTURE / "config.json").read_text()))
    # without any config the sizes are read off the weights (released settings otherwise): same weights
    bare = load_model(path)
    assert bare.config.hidden_dim == 128 and bare.config.processor_blocks == 2 and bare.config.n_states == 12


def test_bf16_on_request(released_layout: Path) -> None:
    model = physviz.load_model(released_layout, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    ref = physviz.load_model(released_layout)
    x, labels, bcs = _case2d_small()
    with torch.inference_mode():
        y16 = model.forward_walrus(x, labels, bcs).float()
        y32 = ref.forward_walrus(x, labels, bcs)
    assert y16.dtype == torch.float32 and bool(torch.isfinite(y16).all())
    assert float((y16 - y32).norm() / y32.norm()) < 5e-2


def test_released_field_names() -> None:
    assert len(RELEASED_FIELDS) == 67 and RELEASED_FIELDS["bias_correction"] == 2
    model = build_model("walrus", preset("tiny").to_dict())
    assert model.registry.n_slots == 67
    ids = model.field_ids(["density", "velocity_x", "velocity_y", "pressure", "energy", "temperature"]).tolist()
    assert ids == [28, 4, 5, 3, 29, 46]
    assert model.field_ids(["rho", "Vx", "p"]).tolist() == [28, 4, 3]  # physviz's name map applies
    with pytest.raises(UnknownFieldError, match=r"'densty' \(did you mean 'density'") as info:
        model.field_ids(["densty", "velocity_x"])
    assert "velocity_x" not in str(info.value).split("Its fields")[0]
    with pytest.raises(UnknownFieldError, match="vorticity"):
        model.field_ids(["vorticity"])


def test_save_and_load_a_walrus_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Walrus(preset("tiny", jitter=False))
    path = save_model(model, tmp_path / "w.safetensors")
    back = load_model(path)
    assert isinstance(back, Walrus) and back.config == model.config
    assert back.registry.to_dict() == model.registry.to_dict()
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.inference_mode():
        assert torch.equal(back(x, [4, 5], [1, 1]), model.eval()(x, [4, 5], [1, 1]))


def test_predict_jitter_is_seeded_and_an_ensemble_averages() -> None:
    torch.manual_seed(0)
    model = Walrus(preset("tiny")).eval()
    with torch.no_grad():  # make the attention visible (layer-scale init keeps it near zero)
        for blk in model.blocks:
            blk.space_mixing.attn_out.weight.normal_(0, 0.05)
    x = torch.randn(1, 3, 2, 64, 48)
    with torch.inference_mode():
        a = model.predict(x, [4, 5], ["periodic", "wall"], jitter_seed=3)
        b = model.predict(x, [4, 5], ["periodic", "wall"], jitter_seed=3)
        c = model.predict(x, [4, 5], ["periodic", "wall"], jitter_seed=4)
        e = model.predict(x, [4, 5], ["periodic", "wall"], ensemble=2, jitter_seed=3)
        plain = model.eval()(x, [4, 5], ["periodic", "wall"])
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.allclose(e, (a + c) / 2, atol=1e-5)
    assert a.shape == plain.shape == (1, 2, 64, 48)


def test_config_is_checked() -> None:
    cfg = WalrusConfig.from_dict(preset("tiny").to_dict())
    assert cfg.ff_dim == 256 and cfg.head_dim == 16
    with pytest.raises(physviz.errors.ParameterError, match="num_heads"):
        preset("tiny", num_heads=5)
