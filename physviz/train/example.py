"""A small, valid train config for a Well dataset folder (tiny model): for tests, demos and the widgets."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from physviz.train.config import TrainConfig, TrainConfigError
from physviz.typed_config import apply_overrides


def example_config(data_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str], steps: int = 20, *,
                   fields: list[str] | None = None, n_steps_input: int | None = None, tokens: int = 1024,
                   checkpoint_every: int | None = None, overrides: list[str] | None = None,
                   **settings: Any) -> dict[str, Any]:
    """A plain-dict config training the 'tiny' model on one Well dataset folder for `steps` steps.

    The context length is at most 4 frames (fewer if trajectories are short), the grid is
    padded to the patch size when needed, and a checkpoint is written halfway. ``settings``
    replace top-level keys and ``overrides`` are ``key.sub=value`` strings; the result
    passes ``TrainConfig.from_dict(...).validate()``.
    """
    from physviz.train.sources import read_file_info, split_files

    files, _root = split_files(data_dir, "train")
    n_in = n_steps_input
    pad = False
    if files:
        info = read_file_info(files[0])
        if n_in is None:
            n_in = max(1, min(4, info.n_time - 1))
        pad = any(s % 8 for s in info.spatial)
        n_dims = len(info.spatial)
    else:
        n_dims = 2
    model_overrides: dict[str, Any] = {}
    if pad:
        model_overrides["pad_to_patch"] = True
    if n_dims == 3:
        model_overrides["n_spatial_dims"] = 3
    cfg: dict[str, Any] = {
        "output_dir": str(Path(output_dir)),
        "model": {"preset": "tiny", "overrides": model_overrides},
        "data": [{"path": str(Path(data_dir)), **({"fields": list(fields)} if fields else {})}],
        "steps": int(steps),
        "n_steps_input": int(n_in or 4),
        "batch": {"tokens": int(tokens), "scope": "rank", "accumulate": 1},
        "optimizer": {"lr": 1e-3, "warmup_steps": max(0, min(10, steps // 5)), "schedule": "cosine", "clip": 1.0},
        "checkpoint_every": int(checkpoint_every if checkpoint_every is not None else max(1, steps // 2)),
        "log_every": 1,
        "valid_every": 0,
        "valid_batches": 1,
        "seed": 0,
    }
    cfg.update(settings)
    cfg = apply_overrides(cfg, overrides or [], TrainConfigError)
    TrainConfig.from_dict(cfg)  # type check now; data is checked by validate()
    return cfg
