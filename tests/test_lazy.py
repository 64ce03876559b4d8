"""physviz._lazy: one helper gives every package its lazy names (same-name, renamed, or a module)."""
from __future__ import annotations

import pytest

from physviz._lazy import lazy_attributes


def test_lazy_attribute_forms():
    namespace: dict = {}
    getattr_, dir_ = lazy_attributes("pkg", namespace, {
        "sqrt": "math", "root": ("math", "sqrt"), "json": ("json", None)})
    import json
    import math

    assert getattr_("sqrt") is math.sqrt and getattr_("root") is math.sqrt and getattr_("json") is json
    assert namespace == {"sqrt": math.sqrt, "root": math.sqrt, "json": json}
    assert dir_() == ["json", "root", "sqrt"]
    with pytest.raises(AttributeError, match="'pkg' has no attribute 'nope'"):
        getattr_("nope")


def test_top_level_and_jobs_names():
    import physviz
    import physviz.jobs as pj

    assert physviz.jobs is pj and pj.list.__name__ == "list_jobs" and pj.get.__name__ == "get_job"
    assert {"jobs", "model", "open_fields"} <= set(dir(physviz)) and "TERMINAL" in dir(pj)
