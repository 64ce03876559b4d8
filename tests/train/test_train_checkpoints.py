"""Checkpoint bookkeeping without training: what a resume compares, which files prune keeps, what reads as unreadable."""
from __future__ import annotations

from pathlib import Path

import torch

from physviz.train import checkpoints as ck
from physviz.train.config import changed_settings


def test_changed_settings_lists_trajectory_settings_and_ignores_run_time_ones() -> None:
    old = {"steps": 10, "log_every": 1, "optimizer": {"lr": 1e-3, "betas": [0.9, 0.99]},
           "data": [{"path": "/a", "valid_split": "valid", "weight": 1.0}], "model": {"gradient_checkpointing": False}}
    new = {"steps": 20, "log_every": 5, "optimizer": {"lr": 2e-3, "betas": [0.9, 0.95]},
           "data": [{"path": "/a", "valid_split": None, "weight": 2.0}], "model": {"gradient_checkpointing": True}}
    assert changed_settings(old, new) == ["data.0.weight: 1.0 -> 2.0", "optimizer.betas: [0.9, 0.99] -> [0.9, 0.95]",
                                          "optimizer.lr: 0.001 -> 0.002"]
    assert changed_settings(old, old) == []
    assert changed_settings({"a": 1}, {"b": 1}) == ["a: 1 -> (unset)", "b: (unset) -> 1"]


def _touch(out: Path, step: int) -> Path:
    path = ck.step_path(out, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    ck.save(path, {"step": step})
    return path


def test_prune_keeps_the_newest_up_to_the_step_and_leaves_later_ones(tmp_path: Path) -> None:
    for s in (2, 4, 6, 8, 10):
        _touch(tmp_path, s)
    ck.prune(tmp_path, keep=2, upto=6)
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [4, 6, 8, 10]
    ck.prune(tmp_path, keep=2)
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [8, 10]


def test_find_resumable_skips_damaged_newer_checkpoints_and_says_why(tmp_path: Path) -> None:
    good = _touch(tmp_path, 2)
    torn = _touch(tmp_path, 4)
    torn.write_bytes(torn.read_bytes()[:50])
    empty = _touch(tmp_path, 6)
    empty.write_bytes(b"")
    foreign = ck.step_path(tmp_path, 8)
    torch.save({"weights": 1}, foreign)
    found = ck.find_resumable(tmp_path)
    assert found.path == good and found.state["step"] == 2
    assert [p.name for p, _ in found.unreadable] == [foreign.name, empty.name, torn.name]
    assert [why for _, why in found.unreadable] == ["not a physviz training checkpoint", "empty file",
                                                    "not a complete torch.save file (truncated or damaged)"]
