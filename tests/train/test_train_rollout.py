"""Rollout (pushforward) training: multi-frame windows, the rollout loss, config checks, an end-to-end fine-tune."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import physviz
from physviz.train import run
from physviz.train.config import DatasetSpec, TrainConfigError
from physviz.train.losses import loss_fn, rollout_loss
from physviz.train.sources import XarraySource, build_sources, split_files
from tests.conftest import shallow_water_well

SMALL = {"embed_dim": 64, "num_heads": 2, "head_dim": 32, "processor_blocks": 2}


@pytest.fixture(scope="module")
def well(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shallow_water_well(tmp_path_factory, 16)


def test_rollout_windows_hold_the_next_k_frames(well: Path) -> None:
    """n_out=3: y is the three frames after the context, equal to open_fields' frames; XarraySource agrees."""
    train, _ = build_sources(DatasetSpec(path=str(well), dt_stride=2), "sw", 3, "data[0]", with_std=False, n_out=3)
    files, _ = split_files(well, "train")
    ds = physviz.open_fields(files[0])
    chans = train.channels
    n_traj, n_time = ds.sizes["trajectory"], ds.sizes["time"]
    assert train.n_out == 3 and len(train) == n_traj * (n_time - (3 + 2) * 2)
    xsrc = XarraySource(ds, chans, 3, dt_stride=2, with_std=False, n_out=3)
    assert len(xsrc) == len(train)
    for i in (0, 2, len(train) - 1):
        _, traj, t0 = train.locate(i)
        x, y = train.window(i)
        assert x.shape == (3, len(chans), 32, 32) and y.shape == (3, len(chans), 32, 32)
        for c, name in enumerate(chans):
            frames = ds[name].isel(trajectory=traj).values
            np.testing.assert_array_equal(x[:, c], frames[t0:t0 + 6:2])
            np.testing.assert_array_equal(y[:, c], frames[t0 + 6:t0 + 12:2])
        xx, yy = xsrc.window(i)
        np.testing.assert_array_equal(xx, x)
        np.testing.assert_array_equal(yy, y)


def _toy(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.nn.Parameter, Callable[[torch.Tensor], torch.Tensor]]:
    """Context (2, 2, 1, 8, 8), three target frames and a one-weight model w * last frame."""
    torch.manual_seed(seed)
    x, y = torch.randn(2, 2, 1, 8, 8), torch.randn(2, 3, 1, 8, 8)
    w = torch.nn.Parameter(torch.tensor(0.9))
    return x, y, w, (lambda ctx: w * ctx[:, -1])


def test_rollout_loss_last_is_the_loss_of_the_kth_frame_with_gradient_through_one_step() -> None:
    """'last' = loss of the model applied k times; its gradient treats the first k-1 frames as data."""
    x, y, w, f = _toy(0)
    loss = rollout_loss(f, x, y, "mse", None, "last")
    expected = loss_fn((0.9 ** 3) * x[:, -1], y[:, -1], "mse", None)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    # d/dw mean((w * c - y)^2) with c = 0.81 x held fixed (no gradient through the rollout)
    c = (0.9 ** 2) * x[:, -1]
    grad = (2 * (0.9 * c - y[:, -1]) * c).mean()
    torch.testing.assert_close(w.grad, grad)
    full = (2 * ((0.9 ** 3) * x[:, -1] - y[:, -1]) * 3 * 0.9 ** 2 * x[:, -1]).mean()
    assert not torch.allclose(w.grad, full)


def test_rollout_loss_all_averages_frames_and_backpropagates_through_the_rollout() -> None:
    x, y, w, f = _toy(1)
    loss = rollout_loss(f, x, y, "mse", None, "all")
    w2 = torch.tensor(0.9, requires_grad=True)
    ref = sum(loss_fn(w2 ** (j + 1) * x[:, -1], y[:, j], "mse", None) for j in range(3)) / 3
    torch.testing.assert_close(loss, ref)
    loss.backward()
    ref.backward()
    torch.testing.assert_close(w.grad, w2.grad)
    with pytest.raises(ValueError, match="gradient"):
        rollout_loss(f, x, y, "mse", None, "sideways")


def _cfg(well: Path, tmp: Path, **extra: object) -> dict:
    return {
        "output_dir": str(tmp / "out"),
        "model": {"preset": "tiny", "overrides": SMALL},
        "data": [{"path": str(well)}],
        "n_steps_input": 2, "steps": 2, "progress": False, **extra,
    }


@pytest.mark.parametrize("rollout, match", [
    ({"steps": 0}, "rollout.steps"),
    ({"steps": 65}, "rollout.steps"),
    ({"steps": 2, "gradient": "sideways"}, "rollout.gradient"),
    ({"steps": 15}, "rollout.steps=15"),  # 16 frames: 2 inputs + 15 targets do not fit
])
def test_bad_rollout_settings_are_named(well: Path, tmp_path: Path, rollout: dict, match: str) -> None:
    with pytest.raises(TrainConfigError, match=match):
        run(_cfg(well, tmp_path, rollout=rollout))
    assert not (tmp_path / "out" / "metrics.jsonl").exists()


def test_a_passed_source_with_the_wrong_target_count_is_named(well: Path, tmp_path: Path) -> None:
    from physviz.model.avit import AViT
    from physviz.model.config import ModelConfig

    files, _ = split_files(well, "train")
    src = XarraySource(physviz.open_fields(files[0]), None, 2, n_out=1)
    model = AViT(ModelConfig.preset("tiny", **SMALL))
    with pytest.raises(TrainConfigError, match="n_out=3"):
        run(_cfg(well, tmp_path, rollout={"steps": 3}), model=model, sources=[src], valid_sources=[None])


def test_finetune_with_rollout_steps_trains_and_names_too_short_data(tmp_path: Path) -> None:
    """finetune(rollout={'steps': 3}) runs pushforward steps that move the weights; too few frames is a named error."""
    from physviz.errors import SchemaError
    from physviz.model.avit import AViT
    from physviz.model.config import ModelConfig

    torch.set_num_threads(1)
    ds = physviz.simulate("fitzhugh_nagumo", 3, resolution=32, steps=8, seed=2, progress=False)
    model = AViT(ModelConfig.preset("tiny", **SMALL))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = physviz.finetune(model, ds, steps=3, lr=1e-3, n_steps_input=2, tokens=512, progress=False,
                              output_dir=tmp_path / "ft", rollout={"steps": 3, "gradient": "all"})
    losses = result.losses()
    assert len(losses) == 3 and all(np.isfinite(losses))
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    with pytest.raises((SchemaError, TrainConfigError), match="rollout"):
        physviz.finetune(model, ds.isel(time=slice(0, 4)), steps=1, n_steps_input=2, progress=False,
                         output_dir=tmp_path / "short", rollout={"steps": 3})
