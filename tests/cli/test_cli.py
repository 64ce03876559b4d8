"""The `physviz` command, run as a real process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.handmade import write_well_3d

PHYSVIZ = [str(Path(sys.executable).with_name("physviz"))]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PHYSVIZ, *args], capture_output=True, text=True, timeout=120)


def test_info_prints_format_dims_fields_bcs_and_size(tmp_path):
    path = tmp_path / "three_d.hdf5"
    write_well_3d(path)
    out = run("info", str(path))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "format:     the_well" in text
    assert "trajectory=2, time=5, x=8, y=6, z=4" in text
    assert "stress_xz" in text and "velocity_y" in text
    assert "x: periodic" in text and "y: wall/open" in text
    assert "Re=100.0" in text
    assert "KB" in text or "MB" in text


def test_info_json(tmp_path):
    path = tmp_path / "three_d.hdf5"
    write_well_3d(path)
    out = run("info", "--json", str(path))
    d = json.loads(out.stdout)
    assert d["dims"]["z"] == 4
    assert d["fields"]["density"]["dims"] == ["trajectory", "time", "x", "y", "z"]
    assert d["size_bytes"] == path.stat().st_size


@pytest.mark.parametrize("args", [["--help"], ["info", "--help"]])
def test_help_everywhere(args):
    out = run(*args)
    assert out.returncode == 0
    assert "usage: physviz" in out.stdout


def test_bad_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.hdf5"
    bad.write_text("nope")
    out = run("info", str(bad))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "bad.hdf5" in out.stderr and "not an HDF5 file" in out.stderr
    assert "Traceback" not in out.stderr


def test_python_dash_m(tmp_path):
    out = subprocess.run([sys.executable, "-m", "physviz", "--version"], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("physviz ")
