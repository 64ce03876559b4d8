"""ModelConfig: presets, MPP parameter counts, YAML/JSON round trips, validation."""
from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from physviz.errors import ParameterError  # noqa: E402
from physviz.model import AViT, ModelConfig  # noqa: E402

# Parameter and tensor counts of the released MPP sizes (n_states=12), REFERENCE A/A2.
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
    cfg = ModelConfig.preset("tiny", delta_prediction=True, jitter=True, jitter_seed=7, ensemble=3, n_spatial_dims=3)
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
        ({"n_spatial_dims": 1}, "n_spatial_dims=1 is invalid"),
        ({"drop_path": 1.5}, "drop_path=1.5"),
        ({"bias_type": "continuous"}, "bias_type='continuous'"),
        ({"pad_mode": "edge"}, "pad_mode='edge'"),
        ({"ensemble": 0}, "ensemble=0"),
        ({"jitter": "yes"}, "jitter='yes'"),
        ({"processor_blocks": 2.5}, "processor_blocks=2.5"),
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
