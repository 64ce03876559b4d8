"""`to_well`: files The Well's own reader accepts, exact round trips, stats.yaml, atomic writes."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import xarray as xr
import yaml

import physviz
from physviz.errors import SchemaError
from physviz.fields import sample_dataset, to_well
from tests.handmade import write_well_3d


def _drop_source(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()
    ds.attrs.pop("source", None)
    return ds


def test_round_trip_is_identical(tmp_path):
    ds = sample_dataset(trajectories=3, n=16, steps=5)
    ds["time"] = ds.time.astype(np.float32)
    ds["x"] = ds.x.astype(np.float32)
    ds["y"] = ds.y.astype(np.float32)
    path = to_well(ds, tmp_path / "tg.hdf5")
    back = physviz.open_fields(path).load()
    xr.testing.assert_identical(_drop_source(back), _drop_source(ds))


def test_round_trip_3d_with_tensor_constant_and_scalar_fields(tmp_path):
    write_well_3d(tmp_path / "src.hdf5")
    src = physviz.open_fields(tmp_path / "src.hdf5").load()
    out = to_well(src, tmp_path / "out" / "copy.hdf5")
    back = physviz.open_fields(out).load()
    xr.testing.assert_identical(_drop_source(back), _drop_source(src))
    with h5py.File(out) as f:
        assert list(f["t2_fields"].attrs["field_names"]) == ["stress"]
        assert f["t2_fields/stress"].shape == (2, 5, 8, 6, 4, 3, 3)
        assert list(f["t1_fields"].attrs["field_names"]) == ["velocity"]
        assert f["t0_fields/obstacle"].attrs["sample_varying"] == False  # noqa: E712


def test_the_wells_reader_reads_what_we_write(tmp_path):
    from the_well.data import WellDataset

    ds = sample_dataset(trajectories=2, n=16, steps=6, seed=3)
    to_well(ds, tmp_path / "tg" / "data" / "train" / "part0.hdf5")
    well = WellDataset(path=str(tmp_path / "tg"), well_split_name="train", n_steps_input=3, n_steps_output=1)
    assert well.metadata.field_names[0] == ["vorticity"]
    assert well.metadata.field_names[1] == ["velocity_x", "velocity_y"]
    assert well.metadata.spatial_resolution == (16, 16)
    assert len(well) == 2 * (6 - 3)
    sample = well[well.n_windows_per_trajectory[0] + 1]  # trajectory 1, window starting at t=1
    expected = np.stack([ds[v].values[1, 1:4] for v in ("vorticity", "velocity_x", "velocity_y")], axis=-1)
    np.testing.assert_allclose(sample["input_fields"].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(sample["output_fields"].numpy()[0, ..., 0], ds.vorticity.values[1, 4], rtol=1e-6)
    assert sample["boundary_conditions"].tolist() == [[2.0, 2.0], [2.0, 2.0]]  # PERIODIC on both axes


def test_the_wells_reader_reads_our_3d_tensor_file_with_normalization(tmp_path):
    from the_well.data import WellDataset
    from the_well.data.normalization import ZScoreNormalization

    write_well_3d(tmp_path / "src.hdf5")
    src = physviz.open_fields(tmp_path / "src.hdf5").load()
    to_well(src, tmp_path / "d" / "data" / "train" / "a.hdf5")
    well = WellDataset(
        path=str(tmp_path / "d"),
        well_split_name="train",
        use_normalization=True,
        normalization_type=ZScoreNormalization,
        n_steps_input=1,
        n_steps_output=1,
    )
    s = well[0]
    assert s["input_fields"].shape == (1, 8, 6, 4, 1 + 3 + 9)
    stats = yaml.safe_load((tmp_path / "d" / "stats.yaml").read_text())
    raw = src.density.values[0, 0]
    mean, std = stats["mean"]["density"], stats["std"]["density"]
    np.testing.assert_allclose(s["input_fields"][0, ..., 0].numpy(), (raw - mean) / std, rtol=1e-4, atol=1e-5)


def test_stats_yaml_matches_numpy(tmp_path):
    ds = sample_dataset(trajectories=3, n=16, steps=5, seed=1)
    to_well(ds.isel(trajectory=[0, 1]), tmp_path / "data" / "train" / "a.hdf5")
    to_well(ds.isel(trajectory=[2]), tmp_path / "data" / "train" / "b.hdf5")
    to_well(ds, tmp_path / "data" / "test" / "c.hdf5")  # not part of the train statistics
    stats = yaml.safe_load((tmp_path / "stats.yaml").read_text())
    w = ds.vorticity.values.astype(np.float64)
    assert stats["mean"]["vorticity"] == pytest.approx(w.mean(), abs=1e-6)
    assert stats["std"]["vorticity"] == pytest.approx(w.std(), rel=1e-5)
    assert stats["rms"]["vorticity"] == pytest.approx(np.sqrt((w**2).mean()), rel=1e-5)
    d = np.diff(w, axis=1)
    assert stats["std_delta"]["vorticity"] == pytest.approx(d.std(), rel=1e-4)
    vx = ds.velocity_x.values.astype(np.float64)
    assert len(stats["mean"]["velocity"]) == 2
    assert stats["rms"]["velocity"][0] == pytest.approx(np.sqrt((vx**2).mean()), rel=1e-5)


def test_failed_write_keeps_the_old_file(tmp_path):
    ds = sample_dataset(trajectories=1, n=8, steps=3)
    path = to_well(ds, tmp_path / "keep.hdf5")
    before = path.read_bytes()
    bad = ds.copy()
    bad["velocity_x"] = bad.velocity_x.astype(str)
    with pytest.raises(SchemaError, match="velocity_x"):
        to_well(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_writer_rejects_bad_datasets(tmp_path):
    ds = sample_dataset(trajectories=1, n=8, steps=3)
    with pytest.raises(SchemaError, match="level"):
        to_well(ds.expand_dims(level=2), tmp_path / "a.hdf5")
    with pytest.raises(SchemaError, match="time"):
        to_well(ds.isel(time=0), tmp_path / "b.hdf5")
    bad = ds.rename({"vorticity": "vort icity"})
    with pytest.raises(SchemaError, match="vort icity"):
        to_well(bad, tmp_path / "c.hdf5")
    bad = ds.copy()
    bad.attrs["boundary_conditions"] = {"x": "sticky"}
    with pytest.raises(SchemaError, match="sticky"):
        to_well(bad, tmp_path / "d.hdf5")
    assert not any(tmp_path.iterdir())


def test_atomic_writes_follow_the_umask(tmp_path):
    """Files written atomically get the mode a plain open() would give (not mkstemp's 0600)."""
    import os

    from physviz.fields.atomic import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
