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


@pytest.mark.parametrize("text, key, lines", [
    ("path: p\nsteps: 2\nsteps: 3\n", "steps", (2, 3)),
    ("path: p\ninner:\n  lr: 0.1\n  betas: [0.9, 0.9]\n  lr: 0.2\n", "inner.lr", (3, 5)),
    ('{"path": "p", "path": "q"}', "path", (1, 1)),
])
def test_a_key_given_twice_is_refused_naming_it_and_its_lines(text, key, lines):
    with pytest.raises(DemoError) as info:
        Demo.from_yaml(text)
    msg = str(info.value)
    assert f"{key!r}" in msg and f"line {lines[0]}" in msg and f"line {lines[1]}" in msg and "\n" not in msg


def test_a_key_given_twice_in_a_file_names_the_file(tmp_path):
    (tmp_path / "c.yaml").write_text("path: p\nsteps: 2\nsteps: 3\n")
    with pytest.raises(DemoError, match=r"c\.yaml"):
        Demo.from_yaml(tmp_path / "c.yaml")


def test_a_key_given_twice_in_an_override_value_is_refused():
    with pytest.raises(DemoError, match="'a'"):
        Demo.from_yaml("path: p", ["tags={a: x, a: y}"])


def test_the_same_key_in_different_sections_and_merge_keys_are_fine():
    cfg = read_mapping("a: {x: 1}\nb: {x: 2}\nbase: &b {lr: 1}\nc:\n  <<: *b\n  lr: 2\n", "demo config")
    assert cfg["a"] == {"x": 1} and cfg["b"] == {"x": 2} and cfg["c"] == {"lr": 2}
