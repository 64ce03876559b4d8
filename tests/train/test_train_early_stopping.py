"""Early stopping: training stops when validation stops improving, and the final model is the best validation one."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from physviz.train.config import TrainConfig, TrainConfigError, changed_settings


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from physviz.fields.simulate.run import simulate

    root = tmp_path_factory.mktemp("early")
    simulate("navier_stokes", 6, resolution=32, steps=8, seed=2, out=root / "ns", progress=False,
             splits=(0.5, 0.5, 0.0))
    return root / "ns"


def _cfg(data: Path, out: Path, **extra) -> dict:
    return {"output_dir": str(out), "model": {"preset": "tiny"}, "data": [{"path": str(data), "name": "ns"}],
            "steps": 40, "n_steps_input": 3, "batch": {"tokens": 512}, "optimizer": {"lr": 1e-3, "warmup_steps": 2},
            "valid_every": 2, "valid_batches": 1, "log_every": 1, "progress": False, **extra}


def test_a_run_stops_after_patience_validations_and_keeps_the_best_weights(data: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from physviz.train.loop import BEST_FILE, run
    from physviz.train.metrics import read_metrics

    out = tmp_path / "run"
    # min_delta this large: nothing after the first validation counts as an improvement
    res = run(_cfg(data, out, early_stopping={"patience": 2, "min_delta": 10.0}))
    assert res.steps == 6  # validations at 2 (best), 4, 6 (two without improvement): stop
    done = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "done"][-1]
    assert done["best_step"] == 2 and done["stopped_early"] is True
    best = torch.load(out / BEST_FILE, weights_only=True)
    assert best["step"] == 2
    final = load_file(out / "final.safetensors")
    moved = [k for k, v in best["model"].items() if k in final and not torch.equal(final[k], v)]
    assert not moved, moved[:3]  # the final model is step 2's, not step 6's
    live = res.model.state_dict()
    assert all(torch.equal(v, live[k]) for k, v in best["model"].items())  # the returned model too
    # a rerun on the folder resumes a stopped run: nothing more is trained
    again = run(_cfg(data, out, early_stopping={"patience": 2, "min_delta": 10.0}))
    assert again.steps == 6 and again.resumed_from == 6


def test_without_improvement_threshold_the_final_model_is_the_lowest_validation(data: Path, tmp_path: Path) -> None:
    from physviz.train.loop import run
    from physviz.train.metrics import read_metrics

    out = tmp_path / "run"
    res = run(_cfg(data, out, steps=8, early_stopping={"patience": 50}))
    valid = {r["step"]: r["vrmse"]["ns"] for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "valid"}
    done = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "done"][-1]
    assert res.steps == 8 and done["stopped_early"] is False
    assert done["best_step"] == min(valid, key=valid.get)
    assert done["best_vrmse"] == pytest.approx(min(valid.values()))


def test_early_stopping_needs_validation(data: Path, tmp_path: Path) -> None:
    from physviz.train.loop import run

    with pytest.raises(TrainConfigError, match="early_stopping.patience=3 needs validations"):
        TrainConfig.from_dict(_cfg(data, tmp_path / "a", valid_every=0, early_stopping={"patience": 3})).validate()
    cfg = _cfg(data, tmp_path / "b", early_stopping={"patience": 3})
    cfg["data"][0]["valid_split"] = None
    with pytest.raises(TrainConfigError, match="needs validation windows"):
        run(cfg)
    with pytest.raises(TrainConfigError, match="early_stopping"):
        TrainConfig.from_dict(_cfg(data, tmp_path / "c", early_stopping={"patience": -1}))


def test_checkpoints_written_before_early_stopping_existed_still_resume(tmp_path: Path) -> None:
    new = TrainConfig.from_dict({"output_dir": str(tmp_path), "data": [{"path": str(tmp_path)}]}).to_dict()
    old = {k: v for k, v in new.items() if k != "early_stopping"}
    assert changed_settings(old, new) == []
    on = {**new, "early_stopping": {"patience": 3, "min_delta": 0.0}}
    assert changed_settings(old, on) == ["early_stopping.patience: (unset) -> 3"]


def test_a_relative_threshold_counts_only_improvements_by_that_share(data: Path, tmp_path: Path) -> None:
    """min_rel_delta 0.05: a validation counts as better only when 5% below the best so far (replayed from the log)."""
    from physviz.train.loop import run
    from physviz.train.metrics import read_metrics

    out = tmp_path / "run"
    res = run(_cfg(data, out, steps=12, early_stopping={"patience": 50, "min_rel_delta": 0.05}))
    valid = [(r["step"], r["vrmse"]["ns"]) for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "valid"]
    best, best_step = None, None
    for step, v in valid:
        if best is None or v < best * 0.95:
            best, best_step = v, step
    done = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "done"][-1]
    assert res.steps == 12 and done["best_step"] == best_step and done["best_vrmse"] == pytest.approx(best)
    # at 0.99 nothing after the first validation is an improvement: patience 2 stops at step 6
    stop = run(_cfg(data, tmp_path / "strict", early_stopping={"patience": 2, "min_rel_delta": 0.99}))
    assert stop.steps == 6
    with pytest.raises(TrainConfigError, match="min_rel_delta"):
        TrainConfig.from_dict(_cfg(data, tmp_path / "c", early_stopping={"patience": 2, "min_rel_delta": 1.0}))
