"""The one typed config loader: type-hint coercion, bounds, choices, overrides and one-line errors naming the key."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from physviz.errors import OptionError
from physviz.typed_config import Config, apply_overrides, read_mapping, setting


class DemoError(OptionError):
    """The demo config's error."""


@dataclass
class Inner(Config):
    config_name = "demo config"
    config_error = DemoError

    lr: float = setting(1e-3, above=0)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])


@dataclass
class Demo(Config):
    config_name = "demo config"
    config_error = DemoError

    path: str
    steps: int = setting(10, min=1)
    mode: Literal["a", "b"] = "a"
    inner: Inner = field(default_factory=Inner)
    tags: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    source: dict[str, int] | str | None = None


def test_builds_nested_sections_and_converts_numbers():
    cfg = Demo.from_dict({"path": "p", "steps": 3.0, "inner": {"lr": "1e-4"}, "source": {"a": 1}})
    assert cfg.steps == 3 and isinstance(cfg.steps, int)
    assert cfg.inner.lr == 1e-4 and cfg.source == {"a": 1}
    assert Demo.from_dict({"path": "p", "source": "x.yaml"}).source == "x.yaml"


@pytest.mark.parametrize("data, words", [
    ({"path": "p", "stepz": 1}, "Unknown setting 'stepz' in the demo config"),
    ({"path": "p", "inner": {"lrr": 1}}, "Unknown setting 'inner.lrr'"),
    ({}, "needs 'path'"),
    ({"path": "p", "steps": 0}, "steps=0 in the demo config must be at least 1"),
    ({"path": "p", "steps": True}, "'steps' in the demo config must be an integer"),
    ({"path": "p", "mode": "c"}, "mode='c' in the demo config is not valid; choose one of a, b"),
    ({"path": "p", "inner": {"lr": 0}}, "inner.lr=0.0 in the demo config must be above 0"),
    ({"path": "p", "inner": {"betas": [0.9, "x"]}}, "'inner.betas[1]'"),
    ({"path": "p", "inner": {"lr": float("nan")}}, "must be a finite number"),
    ({"path": "p", "source": 3}, "'source' in the demo config must be"),
    ([1, 2], "must be a mapping"),
])
def test_each_problem_is_one_sentence_naming_the_key(data, words):
    with pytest.raises(DemoError) as info:
        Demo.from_dict(data)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_yaml_text_files_and_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("path: p\ninner:\n  lr: 0.01\n")
    cfg = Demo.from_yaml(tmp_path / "c.yaml", ["inner.betas=[0.9, 0.5]", "steps=7"])
    assert cfg.inner.lr == 0.01 and cfg.inner.betas == [0.9, 0.5] and cfg.steps == 7
    assert Demo.from_yaml(str(tmp_path / "c.yaml")).path == "p"
    assert Demo.from_yaml("path: q").path == "q"
    assert Demo.from_yaml(cfg.to_yaml()) == cfg
    with pytest.raises(DemoError, match="does not exist"):
        Demo.from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(DemoError, match="not valid YAML"):
        Demo.from_yaml("path: [")
    with pytest.raises(DemoError, match="must be a mapping"):
        Demo.from_yaml("- 1\n- 2\n")
    with pytest.raises(DemoError, match="not an index"):
        apply_overrides({"a": [1]}, ["a.3=1"], DemoError)
    assert read_mapping("", "demo config") == {}


def test_replace_checks_the_new_values():
    cfg = Demo.from_dict({"path": "p"})
    assert cfg.replace(steps=5).steps == 5
    with pytest.raises(DemoError, match="at least 1"):
        cfg.replace(steps=-1)


def test_check_fields_checks_a_config_built_directly():
    from physviz.typed_config import check_fields

    cfg = Demo(path="p", steps=3.0)  # type: ignore[arg-type]
    check_fields(cfg)
    assert cfg.steps == 3 and isinstance(cfg.steps, int)
    with pytest.raises(DemoError, match="steps=0 in the demo config must be at least 1"):
        check_fields(Demo(path="p", steps=0))
    with pytest.raises(DemoError, match="mode='c'"):
        check_fields(Demo(path="p", mode="c"))  # type: ignore[arg-type]
