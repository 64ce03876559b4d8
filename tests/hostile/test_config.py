"""Hostile config files: keys given twice, wrong shapes of documents, and what train config checks refuse."""
from __future__ import annotations

from pathlib import Path

import pytest

from physviz.errors import PhysvizError
from physviz.train.config import TrainConfig, TrainConfigError
from physviz.typed_config import read_mapping


def _minimal(tmp_path: Path) -> str:
    return f"output_dir: {tmp_path / 'o'}\ndata:\n  - path: {tmp_path / 'd'}\n"


def test_a_top_level_key_twice_is_refused_with_both_lines(tmp_path) -> None:
    text = _minimal(tmp_path) + "steps: 10\nseed: 1\nsteps: 20\n"
    with pytest.raises(TrainConfigError, match=r"'steps'.*line 4.*line 6"):
        TrainConfig.from_yaml(text)


def test_a_nested_key_twice_is_refused_with_its_dotted_name(tmp_path) -> None:
    text = _minimal(tmp_path) + "optimizer:\n  lr: 1.0e-3\n  clip: 1\n  lr: 1.0e-2\n"
    with pytest.raises(TrainConfigError, match=r"'optimizer.lr'"):
        TrainConfig.from_yaml(text)


def test_a_key_twice_inside_a_list_item_is_refused(tmp_path) -> None:
    text = f"output_dir: o\ndata:\n  - path: a\n    name: x\n    path: b\n"
    with pytest.raises(TrainConfigError, match=r"'data\.0\.path'"):
        TrainConfig.from_yaml(text)


def test_a_key_twice_in_a_file_names_the_file(tmp_path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(_minimal(tmp_path) + "seed: 1\nseed: 2\n")
    with pytest.raises(TrainConfigError, match=r"train\.yaml.*'seed'"):
        TrainConfig.from_yaml(path)


@pytest.mark.parametrize("text,needle", [("- 1\n", "mapping"), ("a: [\n", "not valid YAML"), ("\t a: 1\n", "not valid YAML")])
def test_documents_of_the_wrong_shape_are_one_error(text, needle) -> None:
    with pytest.raises(PhysvizError, match=needle):
        read_mapping(text, "test config")


def test_a_config_file_that_is_a_folder_is_named(tmp_path) -> None:
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(TrainConfigError, match="dir.yaml"):
        TrainConfig.from_yaml(folder)


def test_an_empty_document_lists_what_is_needed() -> None:
    with pytest.raises(TrainConfigError, match="output_dir"):
        TrainConfig.from_yaml("")


def test_an_output_dir_that_is_a_file_is_named(tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    cfg = TrainConfig.from_yaml(f"output_dir: {tmp_path / 'f'}\ndata:\n  - path: x\n")
    with pytest.raises(TrainConfigError, match="output_dir"):
        cfg.validate(check_data=False)
