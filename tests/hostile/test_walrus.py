"""Bad Walrus inputs: corrupt, truncated and mismatched checkpoints, wrong configs, unknown fields, tiny grids."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.paths import SHARED

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

import physviz  # noqa: E402
from physviz.errors import CorruptFileError, FieldFileNotFoundError, ParameterError, SchemaError, UnknownFieldError  # noqa: E402
from physviz.model.walrus import Walrus, preset  # noqa: E402

FIXTURE = SHARED / "fixtures" / "walrus_small"
CONFIG = FIXTURE / "config.json"


@pytest.fixture(scope="module")
def sd() -> dict[str, torch.Tensor]:
    assert (FIXTURE / "state_dict.pt").is_file(), f"missing parity fixture {FIXTURE}"
    return torch.load(FIXTURE / "state_dict.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def tiny() -> Walrus:
    torch.manual_seed(0)
    return Walrus(preset("tiny", jitter=False)).eval()


def _save(obj, path: Path) -> Path:
    torch.save(obj, path)
    return path


def test_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "walrus.pt"
    bad.write_bytes(b"PK\x03\x04" + b"\x00garbage" * 100)
    with pytest.raises(CorruptFileError, match=r"walrus\.pt"):
        physviz.load_model(bad, config=CONFIG)


def test_truncated_file(tmp_path: Path, sd: dict[str, torch.Tensor]) -> None:
    full = _save({"app": {"model": sd}}, tmp_path / "full.pt")
    cut = tmp_path / "walrus.pt"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match=r"walrus\.pt.*re-download") as info:
        physviz.load_model(cut, config=CONFIG)
    assert "Traceback" not in str(info.value)
    with pytest.raises(CorruptFileError, match=r"walrus\.pt"):  # without a config too (it cannot be recognised)
        physviz.load_model(cut)


def test_wrong_shapes_name_the_file(tmp_path: Path, sd: dict[str, torch.Tensor]) -> None:
    path = _save({"app": {"model": sd}}, tmp_path / "walrus.pt")
    ref = json.loads(CONFIG.read_text())
    ref["model"]["hidden_dim"] = 256
    cfg = tmp_path / "extended_config.yaml"
    cfg.write_text(yaml.safe_dump(ref))
    with pytest.raises(ParameterError, match=r"walrus\.pt.*do not fit.*shape mismatches"):
        physviz.load_model(path)


def test_missing_and_unexpected_keys(tmp_path: Path, sd: dict[str, torch.Tensor]) -> None:
    broken = dict(sd)
    broken.pop("blocks.1.time_mixing.qnorm.bias")
    broken["blocks.0.space_mixing.extra"] = torch.zeros(3)
    path = _save({"app": {"model": broken}}, tmp_path / "walrus.pt")
    with pytest.raises(ParameterError, match=r"walrus\.pt.*missing keys \['blocks.1.time_mixing.qnorm.bias'\]"
                                             r".*unexpected keys \['blocks.0.space_mixing.extra'\]"):
        physviz.load_model(path, config=CONFIG)


def test_mpp_checkpoint_with_a_walrus_config(tmp_path: Path) -> None:
    mpp = torch.load(SHARED / "fixtures" / "mpp_small" / "state_dict.pt", map_location="cpu", weights_only=True)
    path = _save(mpp, tmp_path / "mpp.pt")
    with pytest.raises(ParameterError, match=r"mpp\.pt.* MPP AViT checkpoint"):
        physviz.load_model(path, config=CONFIG)
    assert physviz.load_model(path).family == "avit"  # without config= it loads as MPP


def test_not_a_model_checkpoint(tmp_path: Path) -> None:
    path = _save({"app": {"optimizer": {"lr": torch.tensor(1.0)}}}, tmp_path / "walrus.pt")
    with pytest.raises(ParameterError, match=r"walrus\.pt.*no Walrus weights"):
        physviz.load_model(path, config=CONFIG)


def test_bad_configs(tmp_path: Path, sd: dict[str, torch.Tensor]) -> None:
    path = _save({"app": {"model": sd}}, tmp_path / "walrus.pt")
    with pytest.raises(FieldFileNotFoundError, match="nowhere.yaml"):
        physviz.load_model(path, config=tmp_path / "nowhere.yaml")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model: [unclosed\n")
    with pytest.raises(ParameterError, match=r"bad\.yaml.*not valid YAML"):
        physviz.load_model(path, config=bad_yaml)
    no_model = tmp_path / "no_model.yaml"
    no_model.write_text("trainer: {lr: 1}\n")
    with pytest.raises(ParameterError, match=r"no_model\.yaml.*no Walrus model section"):
        physviz.load_model(path, config=no_model)
    ref = json.loads(CONFIG.read_text())
    ref["model"]["encoder"]["learned_pad"] = False
    unsupported = tmp_path / "unsupported.json"
    unsupported.write_text(json.dumps(ref))
    with pytest.raises(ParameterError, match=r"unsupported\.json.*learned_pad"):
        physviz.load_model(path, config=unsupported)
    with pytest.raises(ParameterError, match="fixed by the checkpoint"):
        physviz.load_model(path, config=CONFIG, hidden_dim=64)


def test_unknown_field_names_suggest(tiny: Walrus) -> None:
    with pytest.raises(UnknownFieldError, match=r"'velocity_xx' \(did you mean 'velocity_x'"):
        tiny.field_ids(["velocity_xx"])
    with pytest.raises(UnknownFieldError, match="boundary flags"):
        tiny(torch.randn(1, 2, 1, 16, 16), [1], [1, 1])


def test_grid_below_one_token(tiny: Walrus) -> None:
    with pytest.raises(ParameterError, match=r"below one Walrus token.*at least 4 points"):
        tiny(torch.randn(1, 2, 1, 16, 2), [4], [1, 1])
    with pytest.raises(ParameterError, match="2D or 3D fields"):
        tiny(torch.randn(1, 2, 1, 16, 1), [4], [1, 1])
    with pytest.raises(SchemaError, match="batch, time, fields"):
        tiny(torch.randn(2, 1, 16), [4], [1])


def test_bad_context_and_boundaries(tiny: Walrus) -> None:
    x = torch.randn(1, 3, 1, 16, 16)
    with pytest.raises(ParameterError, match="at least 2 context frames"):
        tiny(x[:, :1], [4], [1, 1])
    with pytest.raises(ParameterError, match="not one of wall, open, periodic"):
        tiny(x, [4], ["periodic", "slippery"])
    with pytest.raises(ParameterError, match="periodic on one side only"):
        tiny(x, [4], [["periodic", "wall"], "wall"])
    with pytest.raises(ParameterError, match="1 flags for 2 spatial axes"):
        tiny(x, [4], [1])
    with pytest.raises(ParameterError, match="no condition for axes"):
        tiny(x, [4], {"x": "periodic"})
    with pytest.raises(ParameterError, match="repeat a field"):
        tiny(torch.randn(1, 3, 2, 16, 16), [4, 4], [1, 1])
    with pytest.raises(ParameterError, match="2 fields but the input has 1"):
        tiny(x, [4, 5], [1, 1])
