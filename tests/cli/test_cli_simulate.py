"""`physviz simulate`, run as a real process: -p values, --list, the progress bar."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import physviz

PHYSVIZ = [str(Path(sys.executable).with_name("physviz"))]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PHYSVIZ, *args], capture_output=True, text=True, timeout=180, check=False)


def small_ns(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run("simulate", "navier_stokes", "-n", "3", "-r", "16", "-t", "4", "-o", str(out), *extra)


def test_param_in_scientific_notation_is_a_float_in_the_dataset(tmp_path):
    out = small_ns(tmp_path / "ns", "-q", "-p", "viscosity=1e-4", "-p", "forcing_wavenumber=2")
    assert out.returncode == 0, out.stderr
    ds = physviz.open_fields(tmp_path / "ns", split="train")
    params = ds.attrs["simulation_parameters"]
    assert isinstance(params["viscosity"], float) and params["viscosity"] == 1e-4
    assert params["forcing_wavenumber"] == 2


def test_bad_param_value_is_one_line_naming_the_key(tmp_path):
    out = small_ns(tmp_path / "ns", "-q", "-p", "viscosity=thick")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert "viscosity" in out.stderr and "thick" in out.stderr


def test_unknown_param_is_one_line_listing_the_known_ones(tmp_path):
    out = small_ns(tmp_path / "ns", "-q", "-p", "viscocity=1e-3")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert "viscocity" in out.stderr and "viscosity" in out.stderr and "peak_wavenumber" in out.stderr


def test_param_without_equals_is_one_line(tmp_path):
    out = small_ns(tmp_path / "ns", "-q", "-p", "viscosity")
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "viscosity" in out.stderr


def test_list_shows_every_regime_alias_and_parameter():
    out = run("simulate", "--list")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for regime in ("decaying", "kolmogorov", "taylor_green", "dam_break", "lake_at_rest", "perturbation",
                   "gliders", "bubbles", "maze", "worms", "spirals", "spots", "low_mach", "high_mach", "riemann", "sod"):
        assert re.search(rf"\b{regime}\b", text), regime
    assert "stripes" in text and "waves" in text  # Gray-Scott aliases
    assert "viscosity=0.001" in text and "dA=2e-05" in text and "gamma=None" in text
    for system in ("navier_stokes", "shallow_water", "fitzhugh_nagumo", "gray_scott", "gray_scott_3d", "euler"):
        assert re.search(rf"^{system}\b", text, re.MULTILINE), system


def test_progress_bar_ends_at_its_total(tmp_path):
    out = small_ns(tmp_path / "ns")
    assert out.returncode == 0, out.stderr
    counts = re.findall(r"(\d+)/(\d+) \[", out.stderr)
    assert counts, out.stderr
    done, total = counts[-1]
    assert total == "12" and done == total, out.stderr
