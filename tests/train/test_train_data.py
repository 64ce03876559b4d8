"""physviz.train data: lazy Well windows (values and laziness), balanced multi-dataset sampling, token budgets."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from physviz.train.config import DatasetSpec
from physviz.train.sampler import MixedBatchSampler
from physviz.train.sources import XarraySource, build_sources, split_files
from tests.conftest import shallow_water_well


@pytest.fixture(scope="module")
def well(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shallow_water_well(tmp_path_factory, 10)


def test_windows_match_the_xarray_reader(well: Path) -> None:
    """Every window equals the frames physviz.open_fields gives for that trajectory and time."""
    import physviz

    train, valid = build_sources(DatasetSpec(path=str(well), dt_stride=2), "sw", 3, "data[0]", with_std=True)
    assert valid is not None and len(valid) > 0
    files, _ = split_files(well, "train")
    ds = physviz.open_fields(files[0])
    chans = [c for c in ds.data_vars if "time" in ds[c].dims and "x" in ds[c].dims]
    assert train.channels == chans and train.info.periodic in ((0, 0), (1, 1))
    n_traj, n_time = ds.sizes["trajectory"], ds.sizes["time"]
    assert len(train) == n_traj * (n_time - 3 * 2)
    assert train.info.std is not None and all(s > 0 for s in train.info.std)
    for i in (0, 1, len(train) - 1):
        k, traj, t0 = train.locate(i)
        x, y = train.window(i)
        assert x.shape == (3, len(chans), 32, 32) and y.shape == (len(chans), 32, 32) and x.dtype == np.float32
        for c, name in enumerate(chans):
            frames = ds[name].isel(trajectory=traj).values
            np.testing.assert_array_equal(x[:, c], frames[t0:t0 + 6:2])
            np.testing.assert_array_equal(y[c], frames[t0 + 6])


def test_a_window_reads_only_its_frames(tmp_path: Path) -> None:
    """A big, chunked file: reading a window touches only the chunks of its frames."""
    from physviz.fields.well_writer import to_well
    import xarray as xr

    T = 64
    data = np.random.default_rng(0).standard_normal((2, T, 32, 32)).astype(np.float32)
    ds = xr.Dataset({"tracer": (("trajectory", "time", "x", "y"), data)},
                    coords={"time": np.arange(T, dtype=float), "x": np.arange(32.0), "y": np.arange(32.0)},
                    attrs={"dataset_name": "big", "boundary_conditions": {"x": "periodic", "y": "periodic"}})
    path = to_well(ds, tmp_path / "data" / "train" / "big.hdf5", stats=False)
    with h5py.File(path, "r+") as f:  # rewrite chunked by frame so reads are measurable per chunk
        arr = f["t0_fields/tracer"][()]
        attrs = dict(f["t0_fields/tracer"].attrs)
        del f["t0_fields/tracer"]
        dset = f["t0_fields"].create_dataset("tracer", data=arr, chunks=(1, 1, 32, 32))
        for k, v in attrs.items():
            dset.attrs[k] = v
    src, _ = build_sources(DatasetSpec(path=str(tmp_path)), "big", 4, "data[0]", with_std=False)
    reads: list[int] = []
    orig = h5py.Dataset.__getitem__

    def spy(self, key):  # record the size of what each read returns
        out = orig(self, key)
        reads.append(np.asarray(out).nbytes)
        return out

    h5py.Dataset.__getitem__ = spy
    try:
        x, y = src.window(100)
    finally:
        h5py.Dataset.__getitem__ = orig
    assert sum(reads) == 5 * 32 * 32 * 4  # 4 input frames + 1 target, nothing else
    k, traj, t0 = src.locate(100)
    np.testing.assert_array_equal(x[:, 0], data[traj, t0:t0 + 4])


def test_xarray_source_matches_well_source(well: Path) -> None:
    import physviz

    files, _ = split_files(well, "train")
    ds = physviz.open_fields(files[0]).load()
    a, _ = build_sources(DatasetSpec(path=str(well)), "sw", 2, "data[0]", with_std=False)
    b = XarraySource(ds, None, 2, with_std=False)
    assert b.channels == a.channels and len(b) == len(a) and b.info.periodic == a.info.periodic
    for i in (0, 7, len(a) - 1):
        for u, v in zip(a.window(i), b.window(i)):
            np.testing.assert_array_equal(u, v)


def test_ranks_split_the_global_batch_and_share_the_dataset() -> None:
    """Union over 2 ranks = what one process draws with the whole batch; every rank draws the same dataset."""
    sizes, weights = [50, 7, 300], [1.0, 1.0, 2.0]
    single = MixedBatchSampler(sizes, [8, 4, 2], weights, world=1, rank=0, seed=5)
    ranks = [MixedBatchSampler(sizes, [4, 2, 1], weights, world=2, rank=r, seed=5) for r in range(2)]
    counts = np.zeros(3)
    for _ in range(400):
        one = single.next_batch()
        parts = [s.next_batch() for s in ranks]
        d = one[0][0]
        assert all(p[0][0] == d for p in parts) and all(len({t[0] for t in p}) == 1 for p in parts)
        assert [t[1] for t in one] == [t[1] for t in parts[0]] + [t[1] for t in parts[1]]
        counts[d] += 1
    np.testing.assert_allclose(counts / counts.sum(), np.asarray(weights) / sum(weights), atol=0.07)
    # each epoch is a permutation: the first 50 windows drawn from dataset 0 are all of them
    s = MixedBatchSampler([50], [5], [1.0], seed=1)
    drawn = [t[1] for _ in range(10) for t in s.next_batch()]
    assert sorted(drawn) == list(range(50))


def test_sampler_state_resumes_the_same_stream() -> None:
    a = MixedBatchSampler([30, 11], [3, 2], [1.0, 3.0], world=2, rank=1, seed=9)
    for _ in range(17):
        a.next_batch()
    ahead = [a.next_batch() for _ in range(5)]  # the loader drew further than the loop consumed
    state = a.state_after(16)
    b = MixedBatchSampler([30, 11], [3, 2], [1.0, 3.0], world=2, rank=1, seed=9)
    b.load_state_dict(state)
    assert [b.next_batch() for _ in range(5)] == ahead
    assert b.epoch() >= 1


def test_token_budget_balances_2d_and_3d(tmp_path: Path) -> None:
    """Per-dataset batch sizes from the token budget: a 3D and a 2D dataset fill a micro-batch equally."""
    import torch

    from physviz.fields.simulate.run import simulate
    from physviz.train.loop import run

    torch.set_num_threads(1)
    simulate("gray_scott_3d", 2, resolution=16, steps=6, seed=0, out=tmp_path / "gs3", progress=False)
    simulate("fitzhugh_nagumo", 3, resolution=32, steps=6, seed=0, out=tmp_path / "fn", progress=False)
    cfg = {
        "output_dir": str(tmp_path / "out"),
        "model": {"preset": "tiny", "overrides": {"n_spatial_dims": 3, "embed_dim": 64, "num_heads": 2,
                                                    "head_dim": 32, "processor_blocks": 1}},
        "data": [{"path": str(tmp_path / "gs3"), "name": "gs3"}, {"path": str(tmp_path / "fn"), "name": "fn"}],
        "steps": 8, "n_steps_input": 2, "batch": {"tokens": 256}, "progress": False, "valid_batches": 1,
    }
    result = run(cfg)
    # 16^3 grid, patch 8: 8 tokens/frame; 32^2 (one patch thick in the 3D model): 16 tokens/frame
    seen = {n for r in result.metrics if r["kind"] == "train" for n in r["loss_per_dataset"]}
    assert seen == {"gs3", "fn"}
    valid = [r for r in result.metrics if r["kind"] == "valid"][-1]
    assert set(valid["vrmse"]) == {"gs3", "fn"}
    train = [r for r in result.metrics if r["kind"] == "train"]
    assert all(r["tokens_per_s"] / r["samples_per_s"] in (pytest.approx(16.0), pytest.approx(32.0)) for r in train)
