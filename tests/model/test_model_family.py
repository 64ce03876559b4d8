"""The family interface: what AViT exposes, save/load by family name, explicit weight surgery and freezing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from physviz.errors import CorruptFileError, ParameterError  # noqa: E402
from physviz.model import AViT, ModelConfig, PhysicsModel, load_model, read_model_info, save_model  # noqa: E402
from physviz.model.family import FAMILIES, build_model, family_class  # noqa: E402
from physviz.model.surgery import add_refiner, ensure_field_slots, expand_fields, freeze  # noqa: E402


def _tiny(**kw) -> AViT:
    torch.manual_seed(0)
    return AViT(ModelConfig.preset("tiny", processor_blocks=2, context_frames=3, **kw)).eval()


def test_avit_implements_the_interface() -> None:
    m = _tiny()
    assert isinstance(m, PhysicsModel) and m.family == "avit" and FAMILIES["avit"] == "physviz.model.avit:AViT"
    assert family_class("avit") is AViT
    assert (m.context_frames, m.n_spatial_dims, m.patch_size, m.n_field_slots, m.pads_to_patch) == (3, 2, 8, 24, False)
    assert m.field_ids(["density", "pressure"]).tolist() == [10, 11] and m.device.type == "cpu"
    x = torch.randn(1, 3, 2, 16, 16)
    with torch.no_grad():
        assert torch.equal(m.predict(x, [10, 11], [1, 1]), m(x, [10, 11], [1, 1]))  # one pass, no jitter
    names = {id(p) for p in m.field_parameters()} | {id(p) for p in m.processor_parameters()}
    assert len(names) < len(list(m.parameters()))  # stem and decoder layers are neither
    with pytest.raises(TypeError):
        PhysicsModel()  # type: ignore[abstract]


def test_unknown_family_is_named() -> None:
    with pytest.raises(ParameterError, match="Unknown model family 'nosuch'; known families: avit, walrus"):
        family_class("nosuch")


def test_build_model_refuses_overrides_of_weight_settings() -> None:
    m = build_model("avit", ModelConfig.preset("tiny"), "physviz", pad_to_patch=True)
    assert isinstance(m, AViT) and m.config.pad_to_patch and m.registry.name == "physviz"
    with pytest.raises(ParameterError, match="fixed by the checkpoint's weights"):
        build_model("avit", ModelConfig.preset("tiny").to_dict(), None, embed_dim=64)


def test_the_header_names_the_family_and_the_loader_builds_it(tmp_path: Path) -> None:
    m = _tiny()
    path = save_model(m, tmp_path / "m.safetensors")
    info = read_model_info(path)
    assert info["family"] == "avit" and info["version"] == 2
    assert "gradient_checkpointing" not in info["config"]
    back = load_model(path)
    assert type(back) is AViT and back.config == m.config


def _rewrite_header(path: Path, change) -> None:
    """Rewrite the physviz header of a safetensors file (tensor bytes untouched)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    outer = json.loads(data[8:8 + n])
    header = json.loads(outer["__metadata__"]["physviz"])
    outer["__metadata__"]["physviz"] = json.dumps(change(header))
    text = json.dumps(outer, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n:])


def test_version_1_files_load_without_their_run_time_settings(tmp_path: Path) -> None:
    m = _tiny()
    path = save_model(m, tmp_path / "v1.safetensors")

    def as_v1(h: dict) -> dict:
        h = {k: v for k, v in h.items() if k != "family"}
        h["config"] = {**h["config"], "gradient_checkpointing": False, "ensemble": 1, "jitter_seed": None}
        return {**h, "version": 1}

    _rewrite_header(path, as_v1)
    back = load_model(path)
    assert type(back) is AViT and back.config == m.config
    assert read_model_info(path)["family"] == "avit"
    _rewrite_header(path, lambda h: {**h, "version": 3})
    with pytest.raises(CorruptFileError, match="header version 3"):
        load_model(path)
    _rewrite_header(path, lambda h: {**h, "version": 2, "family": "nosuch"})
    with pytest.raises(ParameterError, match="Unknown model family 'nosuch'"):
        load_model(path)


def test_the_bundled_header_is_the_current_version() -> None:
    from physviz.model.pretrained import pretrained_path

    info = read_model_info(pretrained_path())
    assert info["version"] == 2 and info["family"] == "avit"
    assert not {"gradient_checkpointing", "ensemble", "jitter_seed"} & set(info["config"])


def test_freeze_presets() -> None:
    m = _tiny(refine_width=4)
    unused = {id(p) for p in m.unused_parameters()}
    assert unused
    freeze(m, "middle")
    trained = {id(p) for p in m.parameters() if p.requires_grad}
    assert trained == {id(p) for p in m.field_parameters()}
    assert all(p.requires_grad for p in m.refine.parameters())
    freeze(m, "processor")
    assert not any(p.requires_grad for p in m.blocks.parameters())
    assert all(p.requires_grad for p in m.embed.parameters() if id(p) not in unused)
    freeze(m, "none")
    assert {id(p) for p in m.parameters() if not p.requires_grad} == unused
    with pytest.raises(ParameterError, match="freeze mode 'all' is not one of none, processor, middle"):
        freeze(m, "all")  # type: ignore[arg-type]


def test_surgery_is_explicit_and_checked() -> None:
    m = _tiny()
    x = torch.randn(1, 3, 1, 16, 16)
    with torch.no_grad():
        before = m(x, [4], [1, 1])
    add_refiner(m, 6)
    assert m.config.refine_width == 6
    with torch.no_grad():
        assert torch.equal(m(x, [4], [1, 1]), before)  # a grafted refiner starts as a no-op
    with pytest.raises(ParameterError, match="already has a refiner of width 6"):
        add_refiner(m, 8)
    with pytest.raises(ParameterError, match="k must be a whole number of at least 1"):
        expand_fields(m, 0)
    n = m.n_field_slots
    assert ensure_field_slots(m, ["vorticity"]) == [4] and m.n_field_slots == n
    ids = ensure_field_slots(m, [f"extra_{i}" for i in range(6)])
    assert ids == list(range(20, 26)) and m.n_field_slots == 26 == m.registry.n_slots
