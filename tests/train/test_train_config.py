"""physviz.train: the config (YAML, overrides, validation), the CLI's exit-2 errors, and the metrics.jsonl contract."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from physviz.train import cli
from physviz.train.config import TrainConfig, TrainConfigError
from physviz.train.example import example_config
from physviz.typed_config import apply_overrides

from tests.paths import REPO
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def well(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Navier-Stokes Well dataset (train/valid/test splits, stats.yaml)."""
    from physviz.fields.simulate.run import simulate

    out = tmp_path_factory.mktemp("ns") / "ns"
    simulate("navier_stokes", 5, resolution=32, steps=12, seed=0, out=out, progress=False)
    return out


def _write(tmp_path: Path, cfg: dict, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_yaml_round_trip_and_defaults(well: Path, tmp_path: Path) -> None:
    cfg = TrainConfig.from_yaml(_write(tmp_path, example_config(well, tmp_path / "o", steps=7)))
    assert cfg.steps == 7 and cfg.model.preset == "tiny" and cfg.data[0].path == str(well)
    again = TrainConfig.from_yaml(cfg.to_yaml())
    assert again == cfg
    assert cfg.validate() is cfg
    resolved = cfg.resolved()
    assert resolved.data[0].name == "ns" and resolved.data[0].n_steps_input == cfg.n_steps_input
    assert Path(resolved.output_dir).is_absolute()


def test_overrides_parse_yaml_values_and_list_indices(well: Path, tmp_path: Path) -> None:
    base = example_config(well, tmp_path / "o")
    out = apply_overrides(base, ["optimizer.lr=3e-4", "data.0.weight=2", "data.0.fields=[velocity_x]",
                                 "finetune.freeze=middle", "model.overrides.jitter=true",
                                 "model.gradient_checkpointing=true"])
    cfg = TrainConfig.from_dict(out)
    assert cfg.model.gradient_checkpointing is True
    assert cfg.optimizer.lr == 3e-4 and cfg.data[0].weight == 2.0 and cfg.data[0].fields == ["velocity_x"]
    assert cfg.finetune.freeze == "middle" and cfg.model.overrides == {"jitter": True}
    assert base["optimizer"]["lr"] == 1e-3  # the input is not modified
    with pytest.raises(TrainConfigError, match="key.sub=value"):
        TrainConfig.from_yaml(base, ["optimizer.lr"])
    with pytest.raises(TrainConfigError, match="not an index"):
        TrainConfig.from_yaml(base, ["data.3.weight=1"])


@pytest.mark.parametrize("change, needle", [
    ({"optimiser": {"lr": 1}}, "Unknown setting 'optimiser'"),
    ({"optimizer": {"learning_rate": 1}}, "Unknown setting 'optimizer.learning_rate'"),
    ({"steps": "many"}, "'steps' in the train config must be an integer"),
    ({"steps": 0}, "steps=0 in the train config must be at least 1"),
    ({"parallel": "horovod"}, "choose one of auto, none, ddp, fsdp2"),
    ({"finetune": {"freeze": "everything"}}, "finetune.freeze"),
    ({"finetune": {"fresh_fraction": 0.5}}, "Unknown setting 'finetune.fresh_fraction'"),
    ({"optimizer": {"betas": [0.9]}}, "optimizer.betas=[0.9] must be two numbers in [0, 1)"),
    ({"data": [{"path": "x", "fields": ["u", "u"]}]}, "data[0].fields=['u', 'u'] repeats a field"),
    ({"output_dir": ""}, "'output_dir' is empty"),
    ({"model": {"preset": "huge"}}, "Unknown model preset 'huge'"),
    ({"model": {"preset": "tiny", "overrides": {"n_states": 8}}}, "needs at least 20 field slots"),
    ({"model": {"init_from": "/no/such/model.safetensors"}}, "does not exist"),
    ({"model": {"init_from": "bundled:gen9"}}, "ships no such bundled checkpoint (bundled: bundled, bundled:gen1)"),
    ({"data": []}, "lists no dataset"),
])
def test_bad_settings_raise_one_clear_error(well: Path, tmp_path: Path, change: dict, needle: str) -> None:
    cfg = {**example_config(well, tmp_path / "o"), **change}
    with pytest.raises(TrainConfigError) as info:
        TrainConfig.from_dict(cfg).validate()
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_init_from_names_a_shipped_generation(well: Path, tmp_path: Path) -> None:
    from physviz.model.pretrained import pretrained_path
    from physviz.train.config import init_checkpoint

    cfg = {**example_config(well, tmp_path / "o"),
           "model": {"init_from": "bundled:gen1", "overrides": {"step_scale": "context"}}}
    resolved = TrainConfig.from_dict(cfg).validate().resolved()
    assert resolved.model.init_from == "bundled:gen1"  # a name, not turned into a path under the working folder
    assert init_checkpoint("bundled:gen1") == pretrained_path("gen1") and init_checkpoint("bundled") == pretrained_path()
    assert init_checkpoint("bundled:gen9") is None


def test_data_checks_name_the_problem(well: Path, tmp_path: Path) -> None:
    base = example_config(well, tmp_path / "o")
    cases = [
        ({"path": str(tmp_path / "missing")}, "does not exist"),
        ({"path": str(well), "fields": ["velocity_x", "salinity"]}, "['salinity'] are not in"),
        ({"path": str(well), "split": "training"}, "no HDF5 files for split 'training'"),
        ({"path": str(well), "n_steps_input": 40}, "too few for n_steps_input=40"),
    ]
    for entry, needle in cases:
        with pytest.raises(TrainConfigError, match=None) as info:
            TrainConfig.from_dict({**base, "data": [entry]}).validate()
        assert needle in str(info.value), str(info.value)
    bogus = tmp_path / "bogus.hdf5"
    bogus.write_bytes(b"not hdf5 at all")
    with pytest.raises(TrainConfigError, match="cannot be opened as HDF5"):
        TrainConfig.from_dict({**base, "data": [{"path": str(bogus)}]}).validate()


def test_cli_config_errors_exit_2_with_one_line_before_work(well: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "never"
    good = example_config(well, out, steps=2)
    bad = [
        (_write(tmp_path, {**good, "optimzer": {}}, "a.yaml"), []),
        (_write(tmp_path, {**good, "data": [{"path": str(well), "fields": ["nope"]}]}, "b.yaml"), []),
        (_write(tmp_path, good, "c.yaml"), ["data.0.path=/nowhere"]),
        (_write(tmp_path, good, "d.yaml"), ["steps=-1"]),
        (tmp_path / "absent.yaml", []),
    ]
    (tmp_path / "e.yaml").write_text("output_dir: [unclosed\n")
    bad.append((tmp_path / "e.yaml", []))
    for path, overrides in bad:
        capsys.readouterr()
        assert cli.main([str(path), *overrides]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("physviz.train: error: ") and len(err.splitlines()) == 1, err
    assert not out.exists()
    assert cli.main([str(tmp_path / "c.yaml"), "--check"]) == 0
    assert not out.exists()


def test_cli_process_exit_status_2(well: Path, tmp_path: Path) -> None:
    """The real command: one line on stderr, status 2, nothing written."""
    path = _write(tmp_path, {**example_config(well, tmp_path / "o"), "loss": "huber"})
    proc = subprocess.run([sys.executable, "-m", "physviz.train", str(path)], capture_output=True, text=True, env=ENV,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["physviz.train: error: Setting loss='huber' in the train config is not valid; "
                                                "choose one of nmse, vmse, mse, mae."]
    assert not (tmp_path / "o").exists()


def test_config_validates_without_torch(well: Path, tmp_path: Path) -> None:
    """The job launcher validates configs on machines without torch loaded."""
    path = _write(tmp_path, example_config(well, tmp_path / "o"))
    code = (
        "import sys; from physviz.train.config import TrainConfig; "
        f"TrainConfig.from_yaml({str(path)!r}).validate(); "
        "assert 'torch' not in sys.modules, 'torch was imported'; print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def _check_line(rec: dict) -> None:
    kind = rec["kind"]
    assert isinstance(rec["time"], float) and abs(rec["time"] - __import__("time").time()) < 3600
    assert isinstance(rec["step"], int)
    if kind == "train":
        assert set(rec) == {"kind", "step", "epoch", "loss", "loss_per_dataset", "lr", "samples_per_s", "tokens_per_s",
                            "peak_memory_mb", "time"}
        assert isinstance(rec["epoch"], int)
        for key in ("loss", "lr", "samples_per_s", "tokens_per_s", "peak_memory_mb"):
            assert isinstance(rec[key], float) and math.isfinite(rec[key]), key
        assert rec["samples_per_s"] > 0 and rec["tokens_per_s"] > rec["samples_per_s"] and rec["peak_memory_mb"] > 10
        assert rec["loss_per_dataset"] and all(isinstance(v, float) for v in rec["loss_per_dataset"].values())
    elif kind == "valid":
        assert set(rec) == {"kind", "step", "vrmse", "loss", "time"}
        assert all(isinstance(v, float) and v > 0 for v in rec["vrmse"].values()) and isinstance(rec["loss"], float)
    else:
        assert kind == "done" and set(rec) == {"kind", "step", "checkpoint", "time"}
        assert rec["checkpoint"] == "final.safetensors"


def test_cli_run_writes_the_contract(well: Path, tmp_path: Path) -> None:
    """A real run: metrics.jsonl lines follow the contract, config.yaml resolves, final.safetensors loads."""
    import physviz

    out = tmp_path / "run"
    cfg = example_config(well, out, steps=6, checkpoint_every=3, valid_every=3, log_every=2,
                         data=[{"path": str(well), "name": "ns"}])
    path = _write(tmp_path, cfg)
    proc = subprocess.run([sys.executable, "-m", "physviz.train", str(path), "optimizer.warmup_steps=2"],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train" in proc.stderr and "6/6" in proc.stderr  # the progress bar, on stderr
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    for rec in lines:
        _check_line(rec)
    kinds = [(r["kind"], r["step"]) for r in lines]
    assert kinds == [("train", 2), ("valid", 3), ("train", 4), ("train", 6), ("valid", 6), ("done", 6)]
    assert set(lines[0]["loss_per_dataset"]) == {"ns"} and set(lines[1]["vrmse"]) == {"ns"}
    train = [r for r in lines if r["kind"] == "train"]
    assert train[0]["lr"] == pytest.approx(1e-3) and train[-1]["lr"] < train[0]["lr"]  # warm-up done, cosine decays
    resolved = TrainConfig.from_yaml(out / "config.yaml")
    assert resolved.optimizer.warmup_steps == 2 and resolved.data[0].name == "ns" and resolved.output_dir == str(out)
    model = physviz.load_model(out / "final.safetensors")
    assert model.metadata["trained_steps"] == 6 and model.metadata["datasets"] == ["ns"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_00000003.pt", "step_00000006.pt"]


def test_api_run_with_bf16_and_accumulation(well: Path, tmp_path: Path) -> None:
    """physviz.train.run in-process: bf16 autocast, gradient accumulation, MSE on stats.yaml-scaled fields."""
    import torch

    from physviz.train import run

    torch.set_num_threads(1)
    cfg = example_config(well, tmp_path / "r", steps=3, precision="bf16", loss="mse", progress=False,
                         batch={"tokens": 128, "accumulate": 2}, checkpoint_every=0)
    result = run(cfg)
    assert result.steps == 3 and result.final_checkpoint.is_file()
    assert len(result.losses()) == 3 and all(math.isfinite(v) for v in result.losses())
    assert result.model is not None and not result.model.training
