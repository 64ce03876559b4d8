"""Small Well datasets for job tests, generated once per test session."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def navier_stokes_32(base: Path) -> Path:
    """A 4-trajectory, 32x32, 12-step Navier-Stokes Well folder under `base` (made in a subprocess, once)."""
    out = base / "ns32"
    if not (out / "data" / "train").is_dir():
        tmp = base / "ns32.tmp"
        code = ("import sys; from physviz.fields.simulate import simulate;"
                "simulate('navier_stokes', 4, resolution=32, steps=12, seed=0, out=sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, str(tmp)], check=True, capture_output=True, timeout=300)
        tmp.rename(out)
    return out


@pytest.fixture(scope="module")
def ns_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's small Navier-Stokes dataset (shared by the job test files)."""
    return navier_stokes_32(tmp_path_factory.getbasetemp())
