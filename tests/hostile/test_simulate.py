"""`physviz simulate -o` and `simulate(out=...)` never overwrite or mix datasets silently; the folder stays readable."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import physviz
from physviz.cli.main import main as cli_main
from physviz.errors import OptionError, PhysvizError
from physviz.fields.simulate import simulate, write_splits

SMALL = {"resolution": 16, "steps": 3, "progress": False}


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(fn, *names: str) -> PhysvizError:
    with pytest.raises(OptionError) as info:
        fn()
    text = str(info.value)
    assert "\n" not in text
    for name in names:
        assert name in text, (name, text)
    return info.value


def test_simulating_again_into_a_dataset_folder_is_refused_and_keeps_it(tmp_path):
    out = tmp_path / "ns"
    simulate("navier_stokes", 3, seed=0, out=out, **SMALL)
    before = _snapshot(out)
    _refused(lambda: simulate("navier_stokes", 3, seed=1, out=out, **SMALL), str(out), "navier_stokes", "overwrite")
    assert _snapshot(out) == before


def test_overwrite_replaces_the_dataset_and_drops_its_stale_splits(tmp_path):
    out = tmp_path / "ns"
    simulate("navier_stokes", 3, seed=0, out=out, **SMALL)
    before = _snapshot(out)
    ds = simulate("navier_stokes", 1, seed=1, out=out, overwrite=True, **SMALL)
    after = _snapshot(out)
    assert after != before
    assert sorted(after) == ["data/train/navier_stokes_decaying.hdf5", "stats.yaml"]  # the old valid/test went
    with physviz.open_fields(out) as train:
        assert train.sizes["trajectory"] == 1
        assert float(abs(train.vorticity.values - ds.vorticity.values).max()) == 0.0


def test_a_second_system_into_the_same_folder_is_refused_even_with_overwrite(tmp_path):
    out = tmp_path / "data"
    simulate("navier_stokes", 3, seed=0, out=out, **SMALL)
    before = _snapshot(out)
    for overwrite in (False, True):
        _refused(lambda o=overwrite: simulate("fitzhugh_nagumo", 3, out=out, overwrite=o, **SMALL),
                 str(out), "navier_stokes_decaying", "fitzhugh_nagumo")
    assert _snapshot(out) == before
    with physviz.open_fields(out) as ds:  # still readable
        assert "vorticity" in ds


def test_write_splits_refuses_an_existing_dataset_too(tmp_path):
    out = tmp_path / "fhn"
    ds = simulate("fitzhugh_nagumo", 3, out=out, **SMALL)
    before = _snapshot(out)
    _refused(lambda: write_splits(ds, out), str(out), "overwrite")
    assert _snapshot(out) == before
    write_splits(ds, out, overwrite=True)


def test_out_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "notes.txt"
    out.write_text("keep me")
    _refused(lambda: simulate("fitzhugh_nagumo", 3, out=out, **SMALL), "notes.txt")
    assert out.read_text() == "keep me"


def test_split_path_taken_by_a_folder_is_refused(tmp_path):
    out = tmp_path / "fhn"
    (out / "data" / "train" / "fitzhugh_nagumo.hdf5").mkdir(parents=True)
    _refused(lambda: simulate("fitzhugh_nagumo", 3, out=out, overwrite=True, **SMALL), "fitzhugh_nagumo.hdf5")


def test_cli_refuses_in_one_line_and_overwrite_flag_replaces(tmp_path, capsys):
    out = tmp_path / "fhn"
    args = ["simulate", "fitzhugh_nagumo", "-n", "3", "-r", "16", "-t", "3", "-q", "-o", str(out)]
    assert cli_main(args) == 0
    before = _snapshot(out)
    capsys.readouterr()
    assert cli_main([*args, "-s", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err and str(out) in err
    assert _snapshot(out) == before
    assert cli_main([*args, "-s", "5", "--overwrite"]) == 0
    assert _snapshot(out) != before


@pytest.mark.parametrize("splits", [(float("nan"), 0.0, 0.0), (float("inf"), 1.0, 1.0)])
def test_non_finite_splits_are_refused_before_anything_is_written(tmp_path, splits):
    from physviz.errors import ParameterError

    out = tmp_path / "fhn"
    with pytest.raises(ParameterError, match="splits"):
        simulate("fitzhugh_nagumo", 3, out=out, splits=splits, **SMALL)
    assert not out.exists()


@pytest.mark.parametrize("params, name", [
    ({"batch_size": 0}, "batch_size"),
    ({"max_substeps": 0}, "max_substeps"),
    ({"warmup": float("nan")}, "warmup"),
])
def test_run_settings_out_of_range_are_refused(params, name):
    from physviz.errors import ParameterError

    with pytest.raises(ParameterError) as info:
        simulate("fitzhugh_nagumo", 2, **{**SMALL, **params})
    assert name in str(info.value) and "\n" not in str(info.value)


def test_non_finite_parameter_message_reads_as_a_sentence():
    from physviz.errors import ParameterError

    with pytest.raises(ParameterError) as info:
        simulate("fitzhugh_nagumo", 2, k=float("inf"), **SMALL)
    assert str(info.value) == "k=inf must be a finite number."
