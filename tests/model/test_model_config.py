"""ModelConfig: presets, MPP parameter counts, YAML/JSON round trips, validation."""
from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from physviz.errors import ParameterError  # noqa: E402
from physviz.model import AViT, ModelConfig  # noqa: E402

# Parameter and tensor counts of the released MPP sizes (n_states=12); docs/model.md says where they come from.
MPP_SIZES = {"Ti": (7_285_884, 439), "S": (28_979_436, 439), "B": (115_608_012, 439), "L": (407_055_628, 859)}


@pytest.mark.parametrize("name", list(MPP_SIZES))
def test_mpp_presets_have_the_released_parameter_counts(name: str) -> None:
    with torch.device("meta"):
        model = AViT(ModelConfig.preset(name))
    params, tensors = MPP_SIZES[name]
    assert model.num_parameters() == params
    assert len(model.state_dict()) == tensors
    assert model.config.n_states == 12 and model.config.patch_size == 16 and model.config.head_dim == 64
    assert model.registry.name == "mpp"


def test_tiny_preset_and_stem_rule() -> None:
    cfg = ModelConfig.preset("tiny")
    assert cfg.patch_size == 8 and cfg.stem_strides == (2, 2, 2)
    assert ModelConfig.preset("Ti").stem_strides == (4, 2, 2)
    assert ModelConfig(patch_size=4).stem_strides == (1, 2, 2)
    m = AViT(cfg)
    assert m.registry.name == "physviz" and m.registry.n_slots == cfg.n_states
    assert ModelConfig.preset("ti") == ModelConfig.preset("Ti")
    assert ModelConfig.preset("S", drop_path=0.0).drop_path == 0.0


def test_yaml_and_json_round_trip(tmp_path: Path) -> None:
    cfg = ModelConfig.preset("tiny", delta_prediction=True, jitter=True, pad_mode="zeros", n_spatial_dims=3)
    assert ModelConfig.from_yaml(cfg.to_yaml()) == cfg
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    cfg.to_yaml(tmp_path / "m.yaml")
    cfg.to_json(tmp_path / "m.json")
    assert ModelConfig.load(tmp_path / "m.yaml") == cfg
    assert ModelConfig.load(tmp_path / "m.json") == cfg
    assert ModelConfig.from_yaml(str(tmp_path / "m.yaml")) == cfg


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"embed_dim": 100}, "num_heads\\*head_dim"),
        ({"patch_size": 6}, "patch_size=6 is invalid: it must be a multiple of 4"),
        ({"n_spatial_dims": 1}, "n_spatial_dims=1 in the model config is not valid; choose one of 2, 3"),
        ({"drop_path": 1.5}, "drop_path=1.5 in the model config must be below 1"),
        ({"bias_type": "continuous"}, "bias_type='continuous'"),
        ({"pad_mode": "edge"}, "pad_mode='edge'"),
        ({"context_frames": 0}, "context_frames=0 in the model config must be at least 1"),
        ({"jitter": "yes"}, "'jitter' in the model config must be true or false, not 'yes'"),
        ({"processor_blocks": 2.5}, "'processor_blocks' in the model config must be an integer, not 2.5"),
        ({"num_buckets": 33}, "num_buckets=33 is invalid: it must be an even number"),
        ({"max_distance": 8}, "max_distance=8 is invalid: it must exceed num_buckets/4 = 8"),
    ],
)
def test_bad_values_raise_parameter_error(changes: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        ModelConfig.from_dict({**ModelConfig.preset("tiny").to_dict(), **changes})


def test_unknown_keys_and_presets_are_rejected() -> None:
    with pytest.raises(ParameterError, match="Unknown model config setting.*embed_dims"):
        ModelConfig.from_dict({"embed_dims": 3})
    with pytest.raises(ParameterError, match="Unknown model preset 'XL'"):
        ModelConfig.preset("XL")
    with pytest.raises(ParameterError, match="not valid YAML"):
        ModelConfig.from_yaml("a: [1, 2")
    with pytest.raises(ParameterError, match="does not exist"):
        ModelConfig.load(Path("/nonexistent/model.yaml"))


def test_direct_construction_is_checked_like_a_mapping() -> None:
    with pytest.raises(ParameterError, match="drop_path=1.5 in the model config must be below 1"):
        ModelConfig(drop_path=1.5)
    with pytest.raises(ParameterError, match="num_heads\\*head_dim"):
        ModelConfig(embed_dim=100)
    assert ModelConfig(mlp_ratio=2).mlp_ratio == 2.0 and isinstance(ModelConfig(mlp_ratio=2).mlp_ratio, float)
    with pytest.raises(ParameterError, match="patch_size=6"):
        ModelConfig.preset("tiny").replace(patch_size=6)


@pytest.mark.parametrize(("key", "where"), [
    ("gradient_checkpointing", "model.gradient_checkpointing = True"),
    ("ensemble", "ensemble=K to model.predict"),
    ("jitter_seed", "jitter_seed=S to model.predict"),
])
def test_run_time_knobs_are_not_config_settings(key: str, where: str) -> None:
    with pytest.raises(ParameterError, match=f"{key!r} is not a model config setting.*{where}".replace("(", "\\(")):
        ModelConfig.preset("tiny", **{key: 1})
    assert key not in ModelConfig().to_dict()


def test_gradient_checkpointing_is_a_model_attribute_not_saved() -> None:
    model = AViT(ModelConfig.preset("tiny", processor_blocks=1))
    assert model.gradient_checkpointing is False
    model.gradient_checkpointing = True
    assert "gradient_checkpointing" not in model.config.to_dict()
