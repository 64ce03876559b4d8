"""`physviz rollout` run as a real process, and the views `physviz serve` builds from a truth and a prediction file."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import physviz
from physviz.cli.main import build_parser
from physviz.cli.serve import make_views
from physviz.errors import SchemaError
from physviz.model.pretrained import pretrained_path
from physviz.fields.samples import sample_dataset

PHYSVIZ = [str(Path(sys.executable).with_name("physviz"))]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PHYSVIZ, *args], capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def truth_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("truth") / "truth.hdf5"
    physviz.to_well(sample_dataset(trajectories=3, n=32, steps=8), path, stats=False)
    return path


@pytest.fixture(scope="module")
def pred_file(truth_file) -> Path:
    """A one-trajectory prediction from trajectory 1, written by `physviz rollout`."""
    out = truth_file.parent / "pred.hdf5"
    done = run("rollout", str(truth_file), "-o", str(out), "--trajectory", "1", "--steps", "3")
    assert done.returncode == 0, done.stderr
    assert "3/3" in done.stderr  # the progress bar
    return out


def serve_views(*argv: str) -> dict:
    return dict(make_views(build_parser().parse_args(["serve", *argv]))())


def test_rollout_writes_what_physviz_rollout_predicts(truth_file, pred_file):
    written = physviz.open_fields(pred_file)
    truth = physviz.open_fields(truth_file).isel(trajectory=1)
    expected = physviz.rollout(physviz.load_pretrained(), truth, 3)
    assert written.attrs["rollout"]["trajectory"] == 1
    assert list(written.data_vars) == list(expected.data_vars)
    np.testing.assert_allclose(written["time"].values, expected["time"].values, rtol=1e-6)
    for f in expected.data_vars:
        np.testing.assert_allclose(written[f].values, expected[f].values, rtol=1e-5, atol=1e-6)


def test_rollout_default_steps_reach_the_last_frame(truth_file, tmp_path):
    out = tmp_path / "pred.hdf5"
    done = run("rollout", str(truth_file), "-o", str(out), "-q")
    assert done.returncode == 0, done.stderr
    pred = physviz.open_fields(out)
    assert pred.sizes["time"] == 8 - 4  # every frame after the model's 4 context frames
    assert float(pred["time"][-1]) == pytest.approx(float(physviz.open_fields(truth_file)["time"][-1]))


def _one_line_exit_2(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr, done.stderr
    for w in words:
        assert w in done.stderr, done.stderr


def test_rollout_errors_are_one_line(truth_file, tmp_path):
    out = tmp_path / "p.hdf5"
    _one_line_exit_2(run("rollout", str(tmp_path / "missing.hdf5"), "-o", str(out)), "missing.hdf5")
    _one_line_exit_2(run("rollout", str(truth_file), "-o", str(out), "--model", str(tmp_path / "m.safetensors")), "m.safetensors")
    _one_line_exit_2(run("rollout", str(truth_file), "-o", str(out), "--trajectory", "5"), "trajectory", "3")
    unknown = tmp_path / "unknown.hdf5"
    physviz.to_well(sample_dataset(trajectories=1, n=32, steps=8).rename(vorticity="glorpiness"), unknown, stats=False)
    gen1 = str(pretrained_path("gen1"))  # no generic slot: a field it does not know is an error
    _one_line_exit_2(run("rollout", str(unknown), "-o", str(out), "--model", gen1), "glorpiness")
    short = tmp_path / "short.hdf5"
    physviz.to_well(sample_dataset(trajectories=1, n=32, steps=3), short, stats=False)
    _one_line_exit_2(run("rollout", str(short), "-o", str(out)), "3 frames")
    assert not out.exists()
    # the bundled model reads it through its generic slot, and says so
    done = run("rollout", str(unknown), "-o", str(out), "-q")
    assert done.returncode == 0 and "warning: The model never trained ['glorpiness']" in done.stderr
    assert "generic slot" in done.stderr
    assert np.isfinite(physviz.open_fields(out)["glorpiness"].values).all()


def test_serve_compares_a_one_trajectory_prediction_with_its_trajectory(truth_file, pred_file):
    views = serve_views(str(truth_file), "--prediction", str(pred_file))
    assert list(views) == ["Explore", "Rollout", "Spectra"]
    scrubber = views["Rollout"]
    assert not scrubber.error
    assert "trajectory" not in scrubber.truth.dims
    truth = physviz.open_fields(truth_file).isel(trajectory=1, time=4)
    np.testing.assert_array_equal(scrubber.truth["vorticity"].isel(time=0).values, truth["vorticity"].values)


def test_serve_matches_an_unrecorded_prediction_or_takes_the_trajectory_given(truth_file, tmp_path):
    truth = physviz.open_fields(truth_file)
    pred = physviz.rollout(physviz.load_pretrained(), truth.isel(trajectory=2), 2)
    del pred.attrs["rollout"]
    path = tmp_path / "plain.hdf5"
    physviz.to_well(pred, path, stats=False)
    matched = serve_views(str(truth_file), "--prediction", str(path))["Rollout"]
    assert not matched.error
    np.testing.assert_array_equal(matched.truth["vorticity"].isel(time=0).values,
                                  truth["vorticity"].isel(trajectory=2, time=4).values)
    given = serve_views(str(truth_file), "--prediction", str(path), "--trajectory", "0")["Rollout"]
    np.testing.assert_array_equal(given.truth["vorticity"].isel(time=0).values,
                                  truth["vorticity"].isel(trajectory=0, time=4).values)


def test_serve_mismatch_is_one_clear_error(truth_file, tmp_path):
    coarse = tmp_path / "coarse.hdf5"
    physviz.to_well(sample_dataset(trajectories=1, n=16, steps=8), coarse, stats=False)
    with pytest.raises(SchemaError, match="32 points along 'x'.*16"):
        serve_views(str(truth_file), "--prediction", str(coarse))
    two = tmp_path / "two.hdf5"
    physviz.to_well(sample_dataset(trajectories=2, n=32, steps=8), two, stats=False)
    with pytest.raises(SchemaError, match="2 trajectories but the truth has 3"):
        serve_views(str(truth_file), "--prediction", str(two))
    _one_line_exit_2(run("serve", str(truth_file), "--prediction", str(coarse), "--port", "0"), "'x'")
    _one_line_exit_2(run("serve", str(truth_file), "--prediction", str(two), "--trajectory", "7"), "--trajectory 7")


def test_rollout_map_reads_a_field_under_the_models_name(truth_file, tmp_path):
    renamed_path = tmp_path / "renamed.hdf5"
    physviz.to_well(sample_dataset(trajectories=1, n=32, steps=8).rename(vorticity="vorticity_z"), renamed_path,
                    stats=False)
    out = tmp_path / "p.hdf5"
    gen1 = str(pretrained_path("gen1"))  # no generic slot: an error that says which map would do
    _one_line_exit_2(run("rollout", str(renamed_path), "-o", str(out), "--model", gen1),
                     "'vorticity_z' is probably 'vorticity'", "--map")
    # the bundled model reads it through its generic slot, and says the same in one warning line
    done = run("rollout", str(renamed_path), "-o", str(out), "--steps", "2", "-q")
    warned = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert done.returncode == 0 and len(warned) == 1, done.stderr
    assert "'vorticity_z' is probably 'vorticity'" in warned[0] and "--map NAME=MODEL_NAME" in warned[0]
    _one_line_exit_2(run("rollout", str(renamed_path), "-o", str(out), "--map", "vorticity_z"), "NAME=MODEL_NAME")
    done = run("rollout", str(renamed_path), "-o", str(out), "--map", "vorticity_z=vorticity", "--steps", "2", "-q")
    assert done.returncode == 0, done.stderr
    written = physviz.open_fields(out)
    assert "vorticity_z" in written.data_vars and written.sizes["time"] == 2
    assert np.isfinite(written["vorticity_z"].values).all()
