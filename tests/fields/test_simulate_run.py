"""Running simulators: the Python API and `physviz simulate` write Well splits with stats.yaml."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import physviz
from physviz.errors import ParameterError
from physviz.fields.simulate import simulate
from physviz.fields.simulate.run import SYSTEMS, make_solver, split_counts

PHYSVIZ = str(Path(sys.executable).with_name("physviz"))


def test_split_counts():
    assert split_counts(10, (0.8, 0.1, 0.1)) == (8, 1, 1)
    assert split_counts(3, (0.8, 0.1, 0.1)) == (1, 1, 1)
    assert split_counts(1, (0.8, 0.1, 0.1)) == (1, 0, 0)
    assert sum(split_counts(37, (0.7, 0.2, 0.1))) == 37
    with pytest.raises(ParameterError, match="splits"):
        split_counts(5, (1.0, -0.5, 0.5))


def test_every_system_builds_with_defaults():
    for name in SYSTEMS:
        solver = make_solver(name, resolution=32)
        assert solver.ndim in (2, 3)
        assert set(solver.boundary_conditions()) == set("xyz"[: solver.ndim])


def test_python_api_writes_splits_that_open_and_the_well_reads(tmp_path):
    ds = simulate("fitzhugh_nagumo", 5, resolution=16, steps=4, seed=3, out=tmp_path / "fhn", progress=False)
    assert ds.sizes == {"trajectory": 5, "time": 4, "x": 16, "y": 16}
    assert ds.attrs["simulation_parameters"]["seed"] == 3
    train = physviz.open_fields(tmp_path / "fhn")
    valid = physviz.open_fields(tmp_path / "fhn", split="valid")
    test = physviz.open_fields(tmp_path / "fhn", split="test")
    assert (train.sizes["trajectory"], valid.sizes["trajectory"], test.sizes["trajectory"]) == (3, 1, 1)
    np.testing.assert_array_equal(test.activator.values, ds.activator.values[4:5])
    stats = yaml.safe_load((tmp_path / "fhn" / "stats.yaml").read_text())
    assert stats["mean"]["activator"] == pytest.approx(float(ds.activator.values[:3].astype(np.float64).mean()), abs=1e-6)
    from the_well.data import WellDataset

    well = WellDataset(path=str(tmp_path / "fhn"), well_split_name="valid", n_steps_input=2, n_steps_output=1)
    assert len(well) == 2 and well.metadata.field_names[0] == ["activator", "inhibitor"]


def test_cli_simulate_with_progress_and_float64(tmp_path):
    out = tmp_path / "gs"
    proc = subprocess.run(
        [PHYSVIZ, "simulate", "gray_scott", "--regime", "spots", "-n", "3", "-r", "16", "-t", "3", "-s", "7",
         "--float64", "--dt-save", "5", "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote gray_scott_spots: 3 trajectories x 3 frames of 16x16" in proc.stdout
    assert "frame" in proc.stderr  # the tqdm progress bar
    ds = physviz.open_fields(out)
    assert ds.A.dtype == np.float64 and ds.sizes["trajectory"] == 1
    assert ds.attrs["simulation_parameters"]["seed"] == 7
    assert sorted(p.name for p in (out / "data").iterdir()) == ["test", "train", "valid"]


def test_cli_errors_are_one_line(tmp_path):
    for args, needle in [
        (["simulate", "plasma", "-o", str(tmp_path)], "Unknown system 'plasma'"),
        (["simulate", "navier_stokes", "-o", str(tmp_path), "-p", "viscosity=-1"], "viscosity"),
        (["simulate", "navier_stokes", "-o", str(tmp_path), "-p", "colour=red"], "colour"),
        (["simulate", "navier_stokes", "-o", str(tmp_path), "-r", "4"], "resolution"),
    ]:
        proc = subprocess.run([PHYSVIZ, *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (args, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert not any((tmp_path).iterdir())  # nothing half-written


def test_cli_list():
    proc = subprocess.run([PHYSVIZ, "simulate", "--list"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for name in SYSTEMS:
        assert name in proc.stdout
