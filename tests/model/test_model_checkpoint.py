"""Checkpoints: MPP size inference, physviz safetensors round trips, integrity and atomic writes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from physviz.errors import CorruptFileError, FieldFileNotFoundError, ParameterError  # noqa: E402
from physviz.model import AViT, ModelConfig, load_model, load_mpp_checkpoint, read_model_info, save_model  # noqa: E402
from physviz.model.mpp import infer_mpp_config, mpp_size  # noqa: E402


def _shapes(preset: str, device: str = "meta") -> dict[str, torch.Tensor]:
    """A state dict with the shapes of an MPP size (meta tensors unless asked)."""
    with torch.device("meta"):
        sd = AViT(ModelConfig.preset(preset)).state_dict()
    if device == "meta":
        return sd
    return {k: torch.zeros(v.shape) for k, v in sd.items()}


@pytest.mark.parametrize(("preset", "heads", "blocks"), [("Ti", 3, 12), ("S", 6, 12), ("B", 12, 12), ("L", 16, 24)])
def test_size_is_inferred_from_shapes(preset: str, heads: int, blocks: int) -> None:
    cfg = infer_mpp_config(_shapes(preset))
    assert (cfg.embed_dim, cfg.num_heads, cfg.processor_blocks, cfg.n_states) == (
        ModelConfig.preset(preset).embed_dim, heads, blocks, 12)
    assert cfg.patch_size == 16 and cfg.head_dim == 64 and cfg.mlp_ratio == 4.0
    assert mpp_size(cfg) == preset


def test_ti_checkpoint_loads_strictly_with_prefix_and_wrapper(tmp_path: Path) -> None:
    sd = _shapes("Ti", device="cpu")
    sd["blocks.3.spatial.gamma_att"] = torch.full((192,), 0.5)
    path = tmp_path / "MPP_AViT_Ti"  # released files have no extension
    torch.save({"model_state": {f"module.{k}": v for k, v in sd.items()}, "iters": 1}, path)
    model = load_mpp_checkpoint(path, pad_to_patch=True)
    assert model.metadata["name"] == "MPP-AViT-Ti" and model.config.pad_to_patch
    assert torch.equal(model.blocks[3].spatial.gamma_att, torch.full((192,), 0.5))
    with pytest.raises(ParameterError, match="fixed by the checkpoint"):
        load_mpp_checkpoint(path, embed_dim=384)


def test_expanded_mpp_checkpoint_keeps_free_slots() -> None:
    sd = _shapes("Ti", device="cpu")
    sd["space_bag.weight"] = torch.zeros(48, 14)
    sd["debed.out_kernel"] = torch.zeros(48, 14, 4, 4)
    sd["debed.out_bias"] = torch.zeros(14)
    model = load_mpp_checkpoint(sd)
    assert model.config.n_states == 14 and model.registry.n_slots == 14
    assert model.registry.add("salinity", family="ocean") == 10


def _tiny(**kw) -> AViT:
    torch.manual_seed(0)
    return AViT(ModelConfig.preset("tiny", processor_blocks=2, **kw)).eval()


def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    model = _tiny(delta_prediction=True)
    model.registry.add("salinity", family="")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = save_model(model, tmp_path / "sub" / "tiny.safetensors", metadata={"name": "tiny-test", "epochs": 3})
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["tiny.safetensors"]  # no temp files left
    back = load_model(path)
    assert back.config == model.config
    assert back.registry.to_dict() == model.registry.to_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
    x = torch.randn(1, 3, 2, 16, 16)
    ids = model.field_ids(["density", "salinity"])
    with torch.no_grad():
        assert torch.equal(model(x, ids, [1, 1]), back(x, ids, [1, 1]))
    info = read_model_info(path)
    assert info["metadata"] == {"name": "tiny-test", "epochs": 3}
    assert back.metadata["hash"] == info["hash"] == model.metadata["hash"] and len(info["hash"]) == 64
    assert json.loads(json.dumps(info["config"])) == model.config.to_dict()


def test_damaged_file_is_detected(tmp_path: Path) -> None:
    path = save_model(_tiny(), tmp_path / "m.safetensors")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="do not match the stored SHA-256"):
        load_model(path)
    load_model(path, verify=False)  # still readable when asked not to verify


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _tiny()
    path = save_model(model, tmp_path / "m.safetensors")
    before = path.read_bytes()
    import safetensors.torch

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FieldFileNotFoundError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")
    bad = tmp_path / "notes.txt"
    bad.write_text("hello, not a model")
    with pytest.raises(CorruptFileError, match="weights_only=True"):
        load_model(bad)
    path = save_model(_tiny(), tmp_path / "m.safetensors")
    with pytest.raises(ParameterError, match="fixed by the checkpoint"):
        load_model(path, n_states=30)
    assert load_model(path, pad_to_patch=True).config.pad_to_patch
