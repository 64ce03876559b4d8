"""One typed loader for every config: dataclasses from dicts, YAML/JSON text or files, dotted overrides.

A config is a dataclass that mixes in `Config` and names its error class and what it is
(``"train config"``, ``"job spec"``, ...). Values are checked against the type hints:
``int``, ``float`` (finite), ``bool``, ``str``, ``Literal[...]`` (a choice), ``list[T]``,
``dict[K, V]``, optional and union types and nested config dataclasses; a field's bounds
come from `setting(min=..., max=...)`. Every problem raises the config's error with one
sentence naming the key (``optimizer.lr``, ``data[0].path``) and what to do. ``validate()``
is left with the rules that involve several fields.

This module imports neither torch nor xarray (the job launcher loads configs on a login node).
"""
from __future__ import annotations

import copy
import math
import os
import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from physviz.errors import OptionError, PhysvizError

C = TypeVar("C", bound="Config")

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Bounds:
    """Inclusive (`min`, `max`) or exclusive (`above`, `below`) limits of a number setting."""

    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None

    def problem(self, value: float) -> str | None:
        """Why `value` is out of bounds, or None."""
        if self.min is not None and value < self.min:
            return f"must be at least {_num(self.min)}"
        if self.max is not None and value > self.max:
            return f"must be at most {_num(self.max)}"
        if self.above is not None and value <= self.above:
            return f"must be above {_num(self.above)}"
        if self.below is not None and value >= self.below:
            return f"must be below {_num(self.below)}"
        return None


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def setting(default: Any = MISSING, *, default_factory: Any = MISSING, min: float | None = None,
            max: float | None = None, above: float | None = None, below: float | None = None) -> Any:
    """A dataclass field with bounds that the loader checks (``steps: int = setting(100, min=1)``)."""
    meta = {"bounds": Bounds(min, max, above, below)}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


class Config:
    """Mixin for config dataclasses: from_dict / from_yaml / to_dict / to_yaml / replace through one loader.

    Subclasses set ``config_name`` (e.g. ``"train config"``) and ``config_error`` (a PhysvizError
    subclass); ``config_hooks`` maps a field name to a function ``(value, label) -> value`` run
    before the type check (e.g. a host name string to a host mapping).
    """

    config_name: ClassVar[str] = "config"
    config_error: ClassVar[type[PhysvizError]] = OptionError
    config_hooks: ClassVar[Mapping[str, Callable[[Any, str], Any]]] = {}

    @classmethod
    def from_dict(cls: type[C], data: Any) -> C:
        """Build from a plain mapping; unknown keys and wrongly typed values raise the config's error."""
        if isinstance(data, cls):
            return data
        return build(cls, data, root=cls)

    @classmethod
    def from_yaml(cls: type[C], text_or_path: str | os.PathLike[str], overrides: list[str] | None = None) -> C:
        """Read YAML (or JSON) text or a file, apply ``key.sub=value`` overrides, build the config."""
        data = read_mapping(text_or_path, cls.config_name, cls.config_error)
        if overrides:
            data = apply_overrides(data, overrides, cls.config_error)
        return cls.from_dict(data)

    @classmethod
    def load(cls: type[C], path: str | os.PathLike[str]) -> C:
        """Read a config file (YAML or JSON)."""
        return cls.from_yaml(Path(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every setting."""
        return asdict(self)  # type: ignore[call-overload]

    def to_yaml(self, path: str | os.PathLike[str] | None = None) -> str:
        """YAML text; also written atomically to `path` if given."""
        return dump_yaml(self.to_dict(), path)

    def replace(self: C, **changes: Any) -> C:
        """A checked copy with some top-level settings changed."""
        return type(self).from_dict({**self.to_dict(), **changes}).validate()

    def validate(self: C) -> C:
        """Rules that involve several settings (each setting alone is checked when loading)."""
        return self


# -- text, files and YAML ------------------------------------------------------------------------
def looks_like_path(text_or_path: str | os.PathLike[str]) -> bool:
    """True for a PathLike or a one-line string ending in a config suffix."""
    if isinstance(text_or_path, os.PathLike):
        return True
    text = str(text_or_path)
    return "\n" not in text and len(text) < 4096 and text.lower().endswith(CONFIG_SUFFIXES)


def read_text_or_path(text_or_path: str | os.PathLike[str], what: str,
                      error: type[PhysvizError] = OptionError) -> str:
    """The text of the file it names (a PathLike, or a string ending in .yaml/.yml/.json), else the text itself."""
    if not looks_like_path(text_or_path):
        return str(text_or_path)
    path = Path(os.path.expanduser(os.fspath(text_or_path)))
    if not path.is_file():
        raise error(f"The {what} file {str(path)!r} does not exist.")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"The {what} file {str(path)!r} cannot be read ({exc}).") from None


def read_mapping(text_or_path: str | os.PathLike[str] | Mapping[str, Any], what: str,
                 error: type[PhysvizError] = OptionError) -> dict[str, Any]:
    """A mapping from YAML/JSON text or a file (an empty document is {}); anything else raises `error`."""
    if isinstance(text_or_path, Mapping):
        return dict(text_or_path)
    import yaml

    text = read_text_or_path(text_or_path, what, error)
    source = f"The {what} file {os.fspath(text_or_path)!r}" if looks_like_path(text_or_path) else f"The {what}"
    try:
        data = load_yaml(text, source, error)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise error(f"The {what} is not valid YAML ({first}).") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"The {what} must be a mapping of settings, not {type(data).__name__}.")
    return data


def load_yaml(text: str, source: str = "The YAML text", error: type[PhysvizError] = OptionError) -> Any:
    """yaml.safe_load, refusing a mapping that gives one key twice (YAML would keep the last silently)."""
    import yaml

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        _refuse_duplicate_keys(root, "", source, error, set())
    return yaml.safe_load(text)


def _refuse_duplicate_keys(node: Any, where: str, source: str, error: type[PhysvizError], seen: set[int]) -> None:
    """Walk a composed YAML node graph; raise `error` at the first mapping that repeats a key."""
    import yaml

    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                name = f"{where}.{key.value}" if where else str(key.value)
                line = key.start_mark.line + 1
                if (key.tag, key.value) in lines:
                    raise error(f"{source} gives {name!r} twice (line {lines[key.tag, key.value]} and line {line}); "
                                "YAML would keep only the last, so remove one.")
                lines[key.tag, key.value] = line
                _refuse_duplicate_keys(value, name, source, error, seen)
            else:
                _refuse_duplicate_keys(value, where, source, error, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, f"{where}.{i}" if where else str(i), source, error, seen)


def dump_yaml(data: Any, path: str | os.PathLike[str] | None = None) -> str:
    """YAML text of plain data; also written atomically to `path` if given."""
    import yaml

    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if path is not None:
        from physviz.fields.atomic import write_text_atomic

        write_text_atomic(path, text)
    return text


# -- overrides -------------------------------------------------------------------------------------
def apply_overrides(data: Mapping[str, Any], overrides: list[str],
                    error: type[PhysvizError] = OptionError) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML; list items by index) to a copy of `data`."""
    import yaml

    out = copy.deepcopy(dict(data))
    for item in overrides:
        if "=" not in item:
            raise error(f"Override {item!r} must look like key.sub=value (e.g. optimizer.lr=1e-4).")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise error(f"Override {item!r} has an empty key; write it as key.sub=value.")
        try:
            value = load_yaml(raw, f"Override {item!r}", error) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node: Any = out
        parts = key.split(".")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise error(f"Override {item!r}: {where} is not an index of the {len(node)}-item list "
                                f"{'.'.join(parts[:depth])}.")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = {}
                    node = node[part]
            else:
                raise error(f"Override {item!r}: {'.'.join(parts[:depth])} is a value, not a section.")
    return out


# -- building dataclasses --------------------------------------------------------------------------
def build(cls: type[C], data: Any, where: str = "", root: type | None = None) -> C:
    """Instantiate config dataclass `cls` from `data`, checking keys and types recursively."""
    root = root or cls
    what, error = _what(root), _error(root)
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        label = f"Setting {where!r}" if where else f"A {what}"
        raise error(f"{label} must be a mapping of settings, not {_show(data)}.")
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.init}
    for key in data:
        if key not in known:
            label = f"{where}.{key}" if where else str(key)
            refused = getattr(cls, "refuse_key", None)
            message = refused(str(key), label) if refused else None
            raise error(message or f"Unknown setting {label!r} in the {what}; known settings"
                                   f"{' of ' + where if where else ''}: {', '.join(sorted(known))}.")
    hooks: Mapping[str, Callable[[Any, str], Any]] = getattr(cls, "config_hooks", {})
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        label = f"{where}.{name}" if where else name
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
                raise error(f"The {what} needs {label!r}; it is missing.")
            continue
        value = data[name]
        if name in hooks:
            value = hooks[name](value, label)
        kwargs[name] = coerce(hints[name], value, label, root, f)
    try:
        return cls(**kwargs)
    except PhysvizError:
        raise
    except (TypeError, ValueError) as exc:
        raise error(f"The {what} section {where or 'top level'!r} is invalid: {exc}.") from None


def check_fields(config: Any) -> None:
    """Check (and lightly convert, in place) every field of an already built config against its hints and bounds.

    For a config that checks itself on construction (``__post_init__``), so that
    ``X(field=value)`` fails the way ``X.from_dict({"field": value})`` does.
    """
    cls = type(config)
    hints = get_type_hints(cls)
    for f in fields(cls):
        if f.init:
            value = getattr(config, f.name)
            checked = coerce(hints[f.name], value, f.name, cls, f)
            if checked is not value:
                object.__setattr__(config, f.name, checked)


def coerce(tp: Any, value: Any, label: str, root: type, f: Field[Any] | None = None) -> Any:
    """Check (and lightly convert) one value against a type hint; raise the root config's error."""
    error, what = _error(root), _what(root)

    def bad(expected: str) -> PhysvizError:
        return error(f"Setting {label!r} in the {what} must be {expected}, not {_show(value)}.")

    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return coerce(options[0], value, label, root, f)
        for option in options:  # the first type that takes the value as it is
            if _plain_match(option, value):
                return coerce(option, value, label, root, f)
        raise bad(" or ".join(_type_words(a) for a in args))
    if origin is Literal:
        if value not in args:
            raise error(f"Setting {label}={value!r} in the {what} is not valid; "
                        f"choose one of {', '.join(map(str, args))}.")
        return value
    if isinstance(tp, type) and is_dataclass(tp):
        return build(tp, value, label, root)
    if origin in (list, tuple):
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise bad("a list")
        item_tp = args[0] if args else Any
        return [coerce(item_tp, v, f"{label}[{i}]", root) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise bad("a mapping")
        key_tp, val_tp = args if args else (Any, Any)
        return {coerce(key_tp, k, f"{label}.{k}", root): coerce(val_tp, v, f"{label}.{k}", root)
                for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return _bounded(value, label, root, f)
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise bad("a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad("a finite number")
        return _bounded(float(value), label, root, f)
    if tp is str:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise bad("a string")
        return value
    return value


def _bounded(value: float, label: str, root: type, f: Field[Any] | None) -> Any:
    bounds = f.metadata.get("bounds") if f is not None else None
    why = bounds.problem(value) if bounds is not None else None
    if why:
        raise _error(root)(f"Setting {label}={value!r} in the {_what(root)} {why}.")
    return value


def _plain_match(tp: Any, value: Any) -> bool:
    """Whether `value` already has the shape of type `tp` (to pick a member of a union)."""
    origin = get_origin(tp) or tp
    if origin is Literal:
        return value in get_args(tp)
    if isinstance(tp, type) and is_dataclass(tp):
        return isinstance(value, (Mapping, tp))
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, Mapping)
    if origin is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is str:
        return isinstance(value, (str, os.PathLike))
    return isinstance(value, origin) if isinstance(origin, type) else False


def _type_words(tp: Any) -> str:
    origin = get_origin(tp) or tp
    return {type(None): "null", list: "a list", tuple: "a list", dict: "a mapping", str: "a string",
            int: "an integer", float: "a number", bool: "true or false"}.get(origin, getattr(tp, "__name__", str(tp)))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _what(root: type) -> str:
    return getattr(root, "config_name", "config")


def _error(root: type) -> type[PhysvizError]:
    return getattr(root, "config_error", OptionError)
