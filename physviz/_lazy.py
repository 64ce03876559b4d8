"""Lazy attributes for package __init__ modules: names import their module on first use."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, namespace: dict[str, Any], table: Mapping[str, str | tuple[str, str | None]]) -> tuple[
        Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for `package`: ``table`` maps a public name to where it lives.

    A value is the module defining that name, or ``(module, attribute)`` for a name bound to another
    attribute of the module (``(module, None)``: the module itself).
    """

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        where = table[name]
        module_name, attr = (where, name) if isinstance(where, str) else where
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
