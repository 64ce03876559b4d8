"""Shared test fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import REPO, SHARED  # noqa: F401


@pytest.fixture
def repo() -> Path:
    """The repository root."""
    return REPO


def shallow_water_well(tmp_path_factory: pytest.TempPathFactory, steps: int) -> Path:
    """Five simulated shallow-water trajectories (32^2, `steps` frames) as a Well dataset folder."""
    from physviz.fields.simulate.run import simulate

    out = tmp_path_factory.mktemp("sw") / "shallow_water"
    simulate("shallow_water", 5, resolution=32, steps=steps, seed=3, out=out, progress=False)
    return out
