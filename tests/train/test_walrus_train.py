"""Training a Walrus model: config selection, new field slots, every-frame loss, freezing, checkpointing, FSDP2 and resume."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import physviz
from physviz.fields.simulate import simulate
from physviz.model.surgery import ensure_field_slots, expand_fields
from physviz.model.walrus import Walrus, preset
from physviz.train.config import TrainConfig, TrainConfigError
from physviz.train.metrics import latest_per_step, read_metrics
from tests.paths import REPO

TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
ENV.pop("PHYSVIZ_TEST_CRASH_AT_STEP", None)
STEPS = 4
# deterministic: no drop path, no jitter; 8 tokens per axis keeps a step small
OVERRIDES = {"tokens_2d": 8, "jitter": False, "drop_path": 0.0, "context_frames": 3}


def _tiny(**kw) -> Walrus:
    torch.manual_seed(0)
    return Walrus(preset("tiny", **{**OVERRIDES, **kw}))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("walrus_data")
    simulate("navier_stokes", 4, resolution=16, steps=8, seed=0, out=root / "ns", progress=False)
    return root / "ns"


def _config(data: Path, out: Path, **extra) -> dict:
    return {
        "output_dir": str(out), "data": [{"path": str(data), "name": "ns"}],
        "model": {"family": "walrus", "preset": "tiny", "overrides": dict(OVERRIDES)},
        "steps": STEPS, "n_steps_input": 3, "batch": {"tokens": 384, "scope": "global"},
        "optimizer": {"lr": 1e-3, "warmup_steps": 1, "eps": 1e-6, "schedule": "constant"},
        "checkpoint_every": 2, "log_every": 1, "valid_batches": 1, "progress": False, "seed": 3, **extra,
    }


# -- config -------------------------------------------------------------------------------------
def test_model_section_selects_the_walrus_family(data: Path, tmp_path: Path) -> None:
    cfg = TrainConfig.from_yaml(_config(data, tmp_path / "out"))
    cfg.validate()
    assert cfg.model.family == "walrus" and cfg.model.every_frame is None
    bad = _config(data, tmp_path / "out")
    bad["model"]["overrides"] = {"embed_dim": 64}
    with pytest.raises(TrainConfigError, match="unknown Walrus setting"):
        TrainConfig.from_yaml(bad).validate()
    bad["model"] = {"family": "walrus", "preset": "huge"}
    with pytest.raises(TrainConfigError, match="Unknown Walrus preset 'huge'"):
        TrainConfig.from_yaml(bad).validate()
    bad["model"] = {"family": "walrus", "init_from": str(tmp_path / "walrus.pt")}
    with pytest.raises(TrainConfigError, match="does not exist"):
        TrainConfig.from_yaml(bad).validate()


def test_checkpoints_from_before_the_family_setting_still_resume() -> None:
    from physviz.train.config import changed_settings

    old = {"model": {"preset": "tiny", "overrides": {}}}
    assert changed_settings(old, {"model": {"preset": "tiny", "overrides": {}, "family": "avit", "every_frame": None}}) == []
    assert changed_settings(old, {"model": {"preset": "tiny", "overrides": {}, "family": "walrus"}}) == [
        "model.family: (unset) -> 'walrus'"]


def test_a_remote_job_takes_a_walrus_checkpoint_that_lives_on_the_hosts(data: Path) -> None:
    from physviz.jobs.errors import JobSpecError
    from physviz.jobs.spec import _check_train_config

    cfg = _config(data, Path("out"))
    cfg["model"] = {"family": "walrus", "init_from": "/cluster/models/walrus/walrus.pt", "overrides": {"jitter": False}}
    _check_train_config(cfg, [], remote_paths=True)  # not looked for here: the hosts have it
    with pytest.raises(JobSpecError, match="walrus.pt"):
        _check_train_config(cfg, [], remote_paths=False)


# -- the model side -----------------------------------------------------------------------------
def test_new_fields_get_new_walrus_slots_keeping_the_old_ones() -> None:
    model = _tiny().eval()
    x = torch.randn(2, 3, 2, 16, 16)
    ids = model.field_ids(["velocity_x", "velocity_y"])
    with torch.no_grad():
        before = model(x, ids, [1, 1])
    old_w = model.embed["2"].proj1.weight.detach().clone()
    new = ensure_field_slots(model, ["velocity_x", "velocity_y", "vorticity"])
    assert new == [int(ids[0]), int(ids[1]), 67] and model.n_field_slots == 68 == model.config.n_states
    for enc in model.embed.values():
        assert enc.proj1.weight.shape[1] == 68
    for dec in model.debed.values():
        assert dec.proj2.weight.shape[1] == 68 and dec.proj2.bias.shape == (68,)
    torch.testing.assert_close(model.embed["2"].proj1.weight[:, :67], old_w)
    with torch.no_grad():
        after = model(x, ids, [1, 1])
        three = model(torch.randn(2, 3, 3, 16, 16), torch.tensor(new), [1, 1])
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)  # the group norm absorbs the embedding scale
    assert three.shape == (2, 3, 16, 16) and torch.isfinite(three).all()
    expand_fields(model, 2)
    assert model.n_field_slots == 70 and model.registry.n_slots == 70


def test_every_frame_prediction_ends_with_the_next_frame() -> None:
    model = _tiny().eval()
    x = torch.randn(1, 4, 2, 16, 16)
    ids = model.field_ids(["velocity_x", "velocity_y"])
    with torch.no_grad():
        every = model(x, ids, [1, 1], every_frame=True)
        last = model(x, ids, [1, 1])
    assert every.shape == (1, 4, 2, 16, 16)
    torch.testing.assert_close(every[:, -1], last, rtol=1e-5, atol=1e-6)


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    x = torch.randn(2, 3, 2, 16, 16)
    grads = []
    for ckpt in (False, True):
        model = _tiny().train()
        model.gradient_checkpointing = ckpt
        ids = model.field_ids(["velocity_x", "velocity_y"])
        model(x, ids, [1, 1], every_frame=True).square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], rtol=1e-4, atol=1e-6)


# -- the loop ------------------------------------------------------------------------------------
def _trainer(data: Path, out: Path, **model_keys):
    from physviz.train.distributed import setup
    from physviz.train.loop import Trainer

    raw = _config(data, out)
    raw["model"].update(model_keys)
    cfg = TrainConfig.from_yaml(raw)
    cfg.validate()
    return Trainer(cfg.resolved(), setup("cpu"), None, None, None)


def test_the_loss_covers_every_frame_of_a_causal_model(data: Path, tmp_path: Path) -> None:
    from physviz.train.losses import loss_fn
    from physviz.train.sources import checked_window

    tr = _trainer(data, tmp_path / "a")
    assert isinstance(tr.raw, Walrus) and tr.every_frame and "vorticity" in tr.added
    assert tr.bcs[0] == [[2, 2], [2, 2]]  # Walrus codes from the files' boundary conditions (periodic)
    assert tr.tokens_per_sample[0] == 3 * 8 * 8
    x, y = (torch.from_numpy(np.stack(a)) for a in zip(*(checked_window(tr.sources[0], i) for i in (0, 5))))
    with torch.no_grad():
        got = tr._loss(0, x, y)
        pred = tr.raw(x, tr.field_ids[0], tr.bcs[0], every_frame=True)
        target = torch.cat([x[:, 1:], y[:, None]], dim=1)
        want = loss_fn(pred.flatten(0, 1), target.flatten(0, 1), "vmse", tr._scale(0))
        last = loss_fn(tr.raw(x, tr.field_ids[0], tr.bcs[0]), y, "vmse", tr._scale(0))
    torch.testing.assert_close(got, want)
    assert abs(float(got) - float(last)) > 1e-6
    off = _trainer(data, tmp_path / "b", every_frame=False)
    assert not off.every_frame
    with torch.no_grad():
        torch.testing.assert_close(off._loss(0, x, y), last)


def test_freezing_a_walrus_model(data: Path, tmp_path: Path) -> None:
    raw = _config(data, tmp_path / "f")
    raw["finetune"] = {"freeze": "middle"}
    from physviz.train.distributed import setup
    from physviz.train.loop import Trainer

    cfg = TrainConfig.from_yaml(raw)
    tr = Trainer(cfg.resolved(), setup("cpu"), None, None, None)
    trained = {id(p) for p in tr.raw.parameters() if p.requires_grad}
    idle = {id(p) for p in [*tr.raw.embed["3"].parameters(), *tr.raw.debed["3"].parameters()]}  # 2D data only
    assert idle and trained == {id(p) for p in tr.raw.field_parameters()} - idle
    raw["finetune"] = {"freeze": "processor"}
    tr = Trainer(TrainConfig.from_yaml(raw).resolved(), setup("cpu"), None, None, None)
    frozen = {id(p) for p in tr.raw.parameters() if not p.requires_grad}
    idle = {id(p) for p in [*tr.raw.embed["3"].parameters(), *tr.raw.debed["3"].parameters()]}
    assert frozen == {id(p) for p in tr.raw.blocks.parameters()} | idle


def test_finetune_in_the_notebook_saves_a_walrus_checkpoint(tmp_path: Path) -> None:
    ds = simulate("navier_stokes", 2, resolution=16, steps=6, seed=1, progress=False)
    model = _tiny()
    res = physviz.finetune(model, ds, steps=2, progress=False, tokens=256, output_dir=str(tmp_path / "ft"),
                           fields=["velocity_x", "velocity_y"])
    assert len(res.losses()) == 2 and all(np.isfinite(res.losses()))
    assert res.metrics and physviz.train.FinetuneOptions(every_frame=False).train_config(
        "ns", 3, str(tmp_path / "x"), False).model.every_frame is False
    back = physviz.load_model(res.final_checkpoint)
    assert isinstance(back, Walrus) and back.config == res.model.config
    for k, v in res.model.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v)


# -- torchrun, FSDP2, resume ---------------------------------------------------------------------
def _launch(data: Path, root: Path, name: str, nproc: int, parallel: str, extra_env: dict | None = None,
            torchrun_args: tuple[str, ...] = ()) -> Path:
    out = root / name
    cfg = root / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(_config(data, out, parallel=parallel)))
    if nproc == 1:
        cmd = [sys.executable, "-m", "physviz.train", str(cfg)]
    else:
        cmd = [TORCHRUN, "--standalone", f"--nproc-per-node={nproc}", *torchrun_args, "-m", "physviz.train", str(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**ENV, **(extra_env or {})}, timeout=400,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return out


def _curve(out: Path) -> dict[int, float]:
    """Training loss per step as it stands after a resume (the metrics owner's last record of each step)."""
    return {r["step"]: r["loss"] for r in latest_per_step(read_metrics(out / "metrics.jsonl"), "train")}


def _params(out: Path) -> dict:
    model = physviz.load_model(out / "final.safetensors")
    assert isinstance(model, Walrus)
    return model.state_dict()


@pytest.mark.slow
def test_fsdp2_under_torchrun_matches_one_process_and_resumes(data: Path, tmp_path: Path) -> None:
    """Two gloo processes with FSDP2 (each block sharded, then the root) train as one; rank 1 killed after step 3
    and restarted by torchrun resumes from the step-2 checkpoint and ends where the uninterrupted run ends."""
    single = _launch(data, tmp_path, "single", 1, "none")
    fsdp = _launch(data, tmp_path, "fsdp2", 2, "fsdp2")
    a, b = _params(single), _params(fsdp)
    assert a.keys() == b.keys() and any(k.startswith("blocks.1.") for k in a)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    assert _curve(single) == pytest.approx(_curve(fsdp), rel=1e-5)
    assert sorted(_curve(fsdp)) == list(range(1, STEPS + 1))
    header = physviz.model.read_model_info(fsdp / "final.safetensors")
    assert header["family"] == "walrus" and header["config"]["n_states"] == 68  # vorticity got a slot
    restarted = _launch(data, tmp_path, "restarted", 2, "fsdp2",
                        {"PHYSVIZ_TEST_CRASH_AT_STEP": "3", "PHYSVIZ_TEST_CRASH_RANK": "1"}, ("--max-restarts=1",))
    assert (restarted / ".test_crash_3").exists()
    assert _curve(restarted) == pytest.approx(_curve(fsdp), rel=1e-5)
    c = _params(restarted)
    assert max(float((b[k] - c[k]).abs().max()) for k in b) < 1e-5


# -- the generic slot ---------------------------------------------------------------------------
def test_average_slot_sets_every_walrus_field_kernel_to_the_mean() -> None:
    from physviz.errors import ParameterError
    from physviz.model.surgery import average_slot

    m = _tiny()
    with torch.no_grad():
        for dec in m.debed.values():
            dec.proj2.bias.normal_()  # the default init leaves the biases near zero: make the mean visible
    average_slot(m, 10, [3, 5])
    params = [(enc.proj1.weight, 1) for enc in m.embed.values()]
    params += [p for dec in m.debed.values() for p in ((dec.proj2.weight, 1), (dec.proj2.bias, 0))]
    assert len(params) >= 3
    for p, axis in params:
        torch.testing.assert_close(p.select(axis, 10), (p.select(axis, 3) + p.select(axis, 5)) / 2)
    with pytest.raises(ParameterError, match=r"field slots of this model \(3\.\."):
        average_slot(m, 1, [3])  # slots 0-2 are the boundary flags


def test_a_walrus_fine_tune_starts_an_untrained_field_from_its_generic_slot(data: Path, tmp_path: Path) -> None:
    """As for the AViT: a Walrus trained with field_dropout records its generic slot, and a fine-tune starts a field it
    never trained as a copy of it, so before it moves the fine-tuned model predicts as the zero-shot one does."""
    import warnings

    from physviz.fields import open_fields, to_well
    from physviz.model.registry import GENERIC
    from physviz.train import run

    first = run(_config(data, tmp_path / "fd", field_dropout=0.5))
    start = physviz.load_model(first.final_checkpoint)
    assert GENERIC in start.metadata["trained_fields"] and "temperature" not in start.metadata["trained_fields"]
    ds = open_fields(data).load().rename({"vorticity": "temperature"})
    to_well(ds, tmp_path / "renamed" / "renamed.hdf5")
    cfg = _config(tmp_path / "renamed", tmp_path / "ft", steps=1, checkpoint_every=0)
    cfg["model"] = {"init_from": str(first.final_checkpoint)}
    cfg["optimizer"] = {**cfg["optimizer"], "lr": 1e-12, "weight_decay": 0.0}
    tuned = physviz.load_model(run(cfg).final_checkpoint)
    assert tuned.metadata["started_from_generic"] == ["temperature"]
    g, t = int(start.field_ids([GENERIC])[0]), int(start.field_ids(["temperature"])[0])
    for a, b in zip(tuned.field_parameters(), start.field_parameters()):
        axis = 0 if a.dim() == 1 else 1
        torch.testing.assert_close(a.select(axis, t), b.select(axis, g))
    traj = ds.isel(trajectory=0)
    with pytest.warns(UserWarning, match="generic slot"):
        zero_shot = physviz.rollout(start, traj, steps=2, context=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # trained by the fine-tune: its own slot, no warning
        first_step = physviz.rollout(tuned, traj, steps=2, context=3)
    np.testing.assert_allclose(first_step["temperature"].values, zero_shot["temperature"].values, rtol=0, atol=1e-4)
