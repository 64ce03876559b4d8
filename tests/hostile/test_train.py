"""Hostile inputs and crashes of training: unreadable checkpoints, changed settings on resume, two runs on one
folder, killed writes, bad output folders, NaN data, bad init_from. Each is refused with a PhysvizError naming
the file or setting, and nothing of the earlier run is lost."""
from __future__ import annotations

import copy
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from physviz.errors import PhysvizError
from physviz.train.config import TrainConfigError

from tests.paths import REPO

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
ENV.pop("PHYSVIZ_TEST_CRASH_AT_STEP", None)
SMALL = {"embed_dim": 64, "num_heads": 2, "head_dim": 32, "processor_blocks": 2}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from physviz.fields.simulate.run import simulate

    root = tmp_path_factory.mktemp("hostile_train")
    simulate("navier_stokes", 3, resolution=32, steps=10, seed=0, out=root / "ns", progress=False)
    return root / "ns"


def _cfg(dataset: Path, out: Path, **changes) -> dict:
    cfg = {
        "output_dir": str(out),
        "model": {"preset": "tiny", "overrides": dict(SMALL)},
        "data": [{"path": str(dataset), "name": "ns"}],
        "steps": 4, "n_steps_input": 2, "batch": {"tokens": 512},
        "optimizer": {"lr": 1e-3, "warmup_steps": 1, "schedule": "constant"},
        "checkpoint_every": 2, "keep_checkpoints": 3, "log_every": 1, "valid_batches": 1, "progress": False,
    }
    for key, value in changes.items():
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return cfg


def _run(cfg: dict):
    import torch

    from physviz.train import run

    torch.set_num_threads(1)
    return run(copy.deepcopy(cfg))


@pytest.fixture(scope="module")
def finished(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step run with checkpoints at steps 2 and 4."""
    out = tmp_path_factory.mktemp("finished") / "run"
    _run(_cfg(data, out))
    return out


def _copy(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    (out / ".lock").unlink(missing_ok=True)
    return out


def _snapshot(out: Path) -> dict[str, str]:
    """Hash of every file of a run folder (the lock file aside)."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".lock"}


def _checkpoints(out: Path) -> list[Path]:
    return sorted((out / "checkpoints").glob("step_*.pt"))


# -- unreadable checkpoints ---------------------------------------------------------------------
def test_all_checkpoints_unreadable_refuses_names_them_and_keeps_everything(data, finished, tmp_path) -> None:
    from physviz.train.checkpoints import ResumeError

    out = _copy(finished, tmp_path)
    for p in _checkpoints(out):
        p.write_bytes(p.read_bytes()[:100])
    before = _snapshot(out)
    assert len((out / "metrics.jsonl").read_text().splitlines()) > 4
    with pytest.raises(ResumeError) as info:
        _run(_cfg(data, out, steps=3))
    msg = str(info.value)
    assert "step_00000002.pt" in msg and "step_00000004.pt" in msg and "resume" in msg
    assert _snapshot(out) == before  # final weights, metrics and config all kept


def test_all_checkpoints_unreadable_through_the_cli_exits_nonzero_and_keeps_everything(data, finished, tmp_path,
                                                                                        capsys) -> None:
    from physviz.cli.main import main

    out = _copy(finished, tmp_path)
    for p in _checkpoints(out):
        p.write_bytes(b"")
    before = _snapshot(out)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(_cfg(data, tmp_path / "other")))
    code = main(["train", str(config), f"output_dir={out}", "steps=3"])
    err = capsys.readouterr().err
    assert code != 0 and "step_00000004.pt" in err and "unreadable" in err
    assert _snapshot(out) == before


def test_some_checkpoints_unreadable_resume_from_the_newest_readable_with_a_warning(data, finished, tmp_path) -> None:
    out = _copy(finished, tmp_path)
    newest = _checkpoints(out)[-1]
    newest.write_bytes(newest.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="step_00000004.pt"):
        result = _run(_cfg(data, out, steps=6))
    assert result.resumed_from == 2 and result.steps == 6
    steps = [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "train"]
    assert steps == list(range(1, 7))


def test_a_finished_run_whose_checkpoints_were_deleted_is_not_started_over(data, finished, tmp_path) -> None:
    from physviz.train.checkpoints import ResumeError

    out = _copy(finished, tmp_path)
    shutil.rmtree(out / "checkpoints")
    before = _snapshot(out)
    with pytest.raises(ResumeError, match="final.safetensors"):
        _run(_cfg(data, out, steps=3))
    assert _snapshot(out) == before


# -- changed settings on resume --------------------------------------------------------------------
@pytest.mark.parametrize("key,value", [("optimizer.lr", 5e-4), ("seed", 7), ("n_steps_input", 3),
                                       ("optimizer.schedule", "cosine"), ("batch.tokens", 256)])
def test_resume_with_changed_trajectory_settings_is_refused_naming_old_and_new(data, finished, tmp_path, key,
                                                                                value) -> None:
    from physviz.train.checkpoints import ResumeError

    out = _copy(finished, tmp_path)
    before = _snapshot(out)
    with pytest.raises(ResumeError) as info:
        _run(_cfg(data, out, steps=6, **{key: value}))
    msg = str(info.value)
    assert key in msg and "->" in msg and repr(value) in msg and "init_from" in msg and "output_dir" in msg
    assert _snapshot(out) == before
    assert yaml.safe_load((out / "config.yaml").read_text())["optimizer"]["lr"] == 1e-3  # never claims the new value


def test_a_checkpoint_of_another_model_config_is_refused(data, finished, tmp_path) -> None:
    from physviz.train.checkpoints import ResumeError

    out = _copy(finished, tmp_path)
    before = _snapshot(out)
    with pytest.raises(ResumeError, match="model.overrides.embed_dim"):
        _run(_cfg(data, out, steps=6, **{"model.overrides": {**SMALL, "embed_dim": 32, "head_dim": 16}}))
    assert _snapshot(out) == before


def test_steps_below_the_checkpoint_step_are_refused(data, finished, tmp_path) -> None:
    from physviz.train.checkpoints import ResumeError

    out = _copy(finished, tmp_path)
    before = _snapshot(out)
    with pytest.raises(ResumeError, match=r"steps=3.*step 4"):
        _run(_cfg(data, out, steps=3))
    assert _snapshot(out) == before


def test_run_time_settings_may_change_on_resume(data, finished, tmp_path) -> None:
    out = _copy(finished, tmp_path)
    result = _run(_cfg(data, out, steps=6, log_every=2, checkpoint_every=3, valid_batches=2, progress=False))
    assert result.resumed_from == 4 and result.steps == 6
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["steps"] == 6 and saved["log_every"] == 2


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_resume_when_config_yaml_is_missing_or_corrupt_rewrites_it(data, finished, tmp_path, damage) -> None:
    out = _copy(finished, tmp_path)
    if damage == "missing":
        (out / "config.yaml").unlink()
    else:
        (out / "config.yaml").write_text("steps: [unclosed\n")
    result = _run(_cfg(data, out, steps=6))
    assert result.resumed_from == 4
    assert yaml.safe_load((out / "config.yaml").read_text())["steps"] == 6


def test_a_torn_last_metrics_line_is_dropped_on_resume(data, finished, tmp_path) -> None:
    out = _copy(finished, tmp_path)
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write('{"kind": "train", "step": 5, "lo')
    _run(_cfg(data, out, steps=6))
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]  # every line parses
    assert [r["step"] for r in lines if r["kind"] == "train"] == list(range(1, 7))


# -- the lock ------------------------------------------------------------------------------------------
def test_a_second_run_on_a_locked_folder_is_refused_naming_the_owner(data, finished, tmp_path) -> None:
    from physviz.train.output import OutputLockedError

    out = _copy(finished, tmp_path)
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, json.dumps({"pid": 424242, "host": "elsewhere"}).encode())
        before = _snapshot(out)
        with pytest.raises(OutputLockedError, match=r"424242.*elsewhere"):
            _run(_cfg(data, out, steps=6))
        assert _snapshot(out) == before
    finally:
        os.close(fd)
    assert _run(_cfg(data, out, steps=5)).resumed_from == 4  # the lock went with its owner


def test_two_processes_on_one_folder_the_second_refuses_and_the_lock_dies_with_a_kill(data, tmp_path) -> None:
    import signal

    out = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(_cfg(data, out, steps=400, checkpoint_every=2)))
    cmd = [sys.executable, "-m", "physviz.train", str(config)]
    first = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not list((out / "checkpoints").glob("step_*.pt")):
            assert first.poll() is None
            time.sleep(0.1)
        second = subprocess.run(cmd + ["steps=401"], env=ENV, capture_output=True, text=True, timeout=300)
        assert second.returncode != 0
        assert f"pid {first.pid}" in second.stderr and str(out) in second.stderr, second.stderr[-2000:]
        assert first.poll() is None  # the owner goes on
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    done = subprocess.run(cmd + ["steps=" + str(_last_checkpoint_step(out) + 1)], env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "resumed at step" in done.stderr, done.stderr[-2000:]


def _last_checkpoint_step(out: Path) -> int:
    return int(_checkpoints(out)[-1].stem.split("_")[1])


# -- durable writes ---------------------------------------------------------------------------------------
def test_atomic_writes_fsync_the_file_and_the_folder(tmp_path, monkeypatch) -> None:
    from physviz.fields.atomic import write_text_atomic

    calls: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        calls.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    write_text_atomic(tmp_path / "a.txt", "hello")
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert calls == ["file", "dir"]  # file flushed before the rename, folder after it


def test_training_writes_are_durable(data, tmp_path, monkeypatch) -> None:
    """Checkpoints, final weights, config.yaml and the metrics rewrite all go through the durable writer."""
    import physviz.fields.atomic as atomic

    written: list[str] = []
    real = atomic.atomic_path

    def spy(target):
        written.append(Path(target).name)
        return real(target)

    monkeypatch.setattr(atomic, "atomic_path", spy)
    out = tmp_path / "run"
    _run(_cfg(data, out))
    _run(_cfg(data, out, steps=5))
    assert {"config.yaml", "final.safetensors", "step_00000002.pt", "step_00000004.pt", "metrics.jsonl"} <= set(written)


def test_leftover_temporary_files_are_removed_on_the_next_start(data, finished, tmp_path) -> None:
    out = _copy(finished, tmp_path)
    stale = [out / ".final.safetensors.k1ll3d.tmp", out / ".config.yaml.x.tmp", out / ".metrics.jsonl.y.tmp",
             out / "checkpoints" / ".step_00000006.pt.z.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    keep = out / "notes.tmp"
    keep.write_text("the user's")
    _run(_cfg(data, out, steps=5))
    assert not any(p.exists() for p in stale) and keep.exists()


def test_a_failed_final_write_leaves_the_previous_final_intact(data, finished, tmp_path, monkeypatch) -> None:
    """Disk full while writing final.safetensors: a clear error, the old file unchanged, no temporary file."""
    import safetensors.torch

    out = _copy(finished, tmp_path)
    before = (out / "final.safetensors").read_bytes()

    def full(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(PhysvizError, match=r"final\.safetensors.*No space left"):
        _run(_cfg(data, out, steps=5))
    assert (out / "final.safetensors").read_bytes() == before
    assert not list(out.glob(".*.tmp"))


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoints(data, finished, tmp_path, monkeypatch) -> None:
    import torch

    out = _copy(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in _checkpoints(out)}
    real = torch.save

    def full(obj, f, *a, **k):
        real(obj, f, *a, **k)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(PhysvizError, match=r"step_00000006\.pt.*No space left"):
        _run(_cfg(data, out, steps=8, checkpoint_every=2))
    assert {p.name: p.read_bytes() for p in _checkpoints(out)} == before
    assert not list((out / "checkpoints").glob(".*.tmp"))


def test_kill_mid_checkpoint_then_resume_equals_uninterrupted(data, tmp_path) -> None:
    """SIGKILL after step 4 with a half-written checkpoint and a torn metrics line; the resumed run matches."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(_cfg(data, tmp_path / "unused", steps=6,
                                          **{"model.overrides": {**SMALL, "jitter": True}})))
    ref, out = tmp_path / "ref", tmp_path / "killed"
    first = subprocess.run([sys.executable, "-m", "physviz.train", str(config), f"output_dir={ref}"], env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    crashed = subprocess.run([sys.executable, "-m", "physviz.train", str(config), f"output_dir={out}"],
                             env={**ENV, "PHYSVIZ_TEST_CRASH_AT_STEP": "4"}, capture_output=True, timeout=300)
    assert crashed.returncode == -9
    (out / "checkpoints" / ".step_00000006.pt.abcd.tmp").write_bytes(b"PK\x03\x04 half")
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write('{"kind": "tr')
    done = subprocess.run([sys.executable, "-m", "physviz.train", str(config), f"output_dir={out}"], env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "resumed at step 4" in done.stderr, done.stderr[-2000:]

    def curve(o: Path) -> dict:
        return {r["step"]: r["loss"] for r in map(json.loads, (o / "metrics.jsonl").read_text().splitlines())
                if r["kind"] == "train"}

    assert curve(out) == curve(ref) and sorted(curve(out)) == list(range(1, 7))
    assert not list((out / "checkpoints").glob(".*.tmp"))
    import physviz

    assert physviz.load_model(out / "final.safetensors").metadata["hash"] == \
        physviz.load_model(ref / "final.safetensors").metadata["hash"]


# -- bad output folders ------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["/proc/x", "/proc/self/nope/deeper"])
def test_an_output_dir_that_cannot_be_made_is_named(data, tmp_path, where) -> None:
    from physviz.train.config import TrainConfig

    cfg = _cfg(data, Path(where))
    with pytest.raises(TrainConfigError, match=r"output_dir.*" + where):
        TrainConfig.from_dict(cfg).validate(check_data=False)
    with pytest.raises(TrainConfigError, match=r"output_dir.*" + where):
        _run(cfg)


def test_an_output_dir_under_a_file_is_named(data, tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrainConfigError, match="output_dir"):
        _run(_cfg(data, tmp_path / "file" / "run"))


def test_an_output_dir_that_cannot_be_written_is_named(data, tmp_path, monkeypatch) -> None:
    """A read-only folder (root ignores permission bits, so the lock file's open is refused as a read-only mount would)."""
    out = tmp_path / "ro"
    out.mkdir()
    real = os.open

    def readonly(path, flags, *a, **k):
        if str(path).startswith(str(out)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", readonly)
    with pytest.raises(TrainConfigError, match=r"output_dir.*ro.*Read-only"):
        _run(_cfg(data, out))
    monkeypatch.undo()
    assert list(out.iterdir()) == []


def test_a_checkpoints_path_that_is_a_file_is_named(data, finished, tmp_path) -> None:
    out = _copy(finished, tmp_path)
    shutil.rmtree(out / "checkpoints")
    (out / "final.safetensors").unlink()
    (out / "checkpoints").write_text("not a folder")
    with pytest.raises(PhysvizError, match="checkpoints"):
        _run(_cfg(data, out, steps=3))
    assert (out / "checkpoints").read_text() == "not a folder"


# -- bad data and settings --------------------------------------------------------------------------------
def _model():
    from physviz.model import AViT, ModelConfig

    return AViT(ModelConfig.preset("tiny", **SMALL), registry="physviz")


def test_nan_in_the_data_is_named_as_the_input_not_the_learning_rate(tmp_path) -> None:
    import physviz

    ds = physviz.simulate("navier_stokes", 2, resolution=32, steps=8, seed=0, progress=False)
    ds["velocity_x"].values[1, 5, 3, 4] = np.nan
    with pytest.raises(PhysvizError) as info:
        physviz.finetune(_model(), ds, steps=30, batch_size=4, progress=False, output_dir=str(tmp_path / "o"))
    msg = str(info.value)
    assert "NaN" in msg and "velocity_x" in msg and "trajectory 1" in msg and "time 5" in msg
    assert "lower optimizer.lr" not in msg


def test_nan_in_well_files_is_named_with_the_file(data, tmp_path) -> None:
    import h5py

    copy_ = tmp_path / "ns"
    shutil.copytree(data, copy_)
    f = sorted((copy_ / "data" / "train").glob("*.hdf5"))[0]
    with h5py.File(f, "r+") as h:
        def first_field(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.ndim >= 4 and obj.dtype.kind == "f":
                arr = obj[...]
                arr[...] = np.nan
                obj[...] = arr
                return name
        found = h.visititems(first_field)
    assert found
    with pytest.raises(PhysvizError, match=r"NaN.*" + f.name):
        _run(_cfg(data, tmp_path / "o", **{"data": [{"path": str(copy_), "name": "ns"}]}))


@pytest.mark.parametrize("lr", [float("nan"), -1e-3, 0.0, float("inf")])
def test_bad_learning_rates_are_named(data, tmp_path, lr) -> None:
    with pytest.raises(TrainConfigError, match="optimizer.lr"):
        _run(_cfg(data, tmp_path / "o", **{"optimizer.lr": lr}))
    assert not (tmp_path / "o").exists()


def test_a_batch_larger_than_the_dataset_trains(data, tmp_path) -> None:
    result = _run(_cfg(data, tmp_path / "o", steps=2, **{"data": [{"path": str(data), "name": "ns", "batch_size": 500}]}))
    assert result.steps == 2 and all(np.isfinite(result.losses()))


@pytest.mark.parametrize("content", [b"root:x:0:0:root:/root:/bin/bash\n", b"", b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\""])
def test_init_from_must_be_a_checkpoint_even_for_check(data, tmp_path, content, capsys) -> None:
    from physviz.train import cli

    bad = tmp_path / "weights.safetensors"
    bad.write_bytes(content)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(_cfg(data, tmp_path / "o", **{"model": {"init_from": str(bad)}})))
    assert cli.main([str(config), "--check"]) == 2
    err = capsys.readouterr().err
    assert "model.init_from" in err and str(bad) in err
    assert cli.main([str(config), "--check", "model.init_from=/etc/passwd"]) == 2
    assert "/etc/passwd" in capsys.readouterr().err


def test_init_from_a_real_checkpoint_passes_check(data, finished, tmp_path) -> None:
    from physviz.train import cli

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(_cfg(data, tmp_path / "o",
                                          **{"model": {"init_from": str(finished / "final.safetensors")}})))
    assert cli.main([str(config), "--check"]) == 0


def test_a_valid_ds_with_other_fields_is_called_the_validation_dataset(tmp_path) -> None:
    import physviz

    ds = physviz.simulate("navier_stokes", 2, resolution=32, steps=8, seed=0, progress=False)
    other = ds.rename({"velocity_x": "salinity"})
    with pytest.raises(PhysvizError) as info:
        physviz.finetune(_model(), ds, other, steps=1, progress=False, output_dir=str(tmp_path / "o"))
    assert "validation Dataset" in str(info.value) and "training Dataset" not in str(info.value)
    assert "velocity_x" in str(info.value)


def test_a_duplicate_key_in_the_train_config_file_is_refused(data, tmp_path) -> None:
    from physviz.train.config import TrainConfig

    text = yaml.safe_dump(_cfg(data, tmp_path / "o")) + "steps: 9\n"
    path = tmp_path / "c.yaml"
    path.write_text(text)
    line = text.splitlines().index("steps: 9") + 1
    other = [i + 1 for i, s in enumerate(text.splitlines()) if s.startswith("steps:")][0]
    with pytest.raises(TrainConfigError, match=rf"'steps'.*line {line}.*line {other}|'steps'.*line {other}.*line {line}"):
        TrainConfig.from_yaml(path)
