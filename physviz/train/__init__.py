"""Training and fine-tuning: windowed Well datasets, balanced multi-dataset sampling, the DDP/FSDP2 loop.

- ``python -m physviz.train CONFIG.yaml [key.sub=value ...]``: alone or under ``torchrun``.
- ``TrainConfig``: the validated config (``from_yaml``, ``to_yaml``, ``validate``); no torch needed.
- ``run(config) -> RunResult``: the loop; ``finetune(model, train_ds, valid_ds, config, **options)``: the same loop
  on an xarray Dataset (options: ``FinetuneOptions``).
- ``example_config(data_dir, output_dir, steps=...)``: a small valid config (tiny model).
- ``WellSource``, ``XarraySource``, ``MixedBatchSampler``: the data side, usable alone.
- ``ResumeError`` (a resume refused, nothing changed), ``OutputLockedError`` (another run owns the
  output folder), ``OutputWriteError`` (a run file could not be written; the previous one is kept).
"""
from __future__ import annotations

from physviz._lazy import lazy_attributes

_LAZY = {
    "TrainConfig": "physviz.train.config",
    "TrainConfigError": "physviz.train.config",
    "DatasetSpec": "physviz.train.config",
    "example_config": "physviz.train.example",
    "run": "physviz.train.loop",
    "RunResult": "physviz.train.loop",
    "finetune": "physviz.train.api",
    "FinetuneOptions": "physviz.train.api",
    "ResumeError": "physviz.train.checkpoints",
    "OutputLockedError": "physviz.train.output",
    "OutputWriteError": "physviz.train.output",
    "WellSource": "physviz.train.sources",
    "XarraySource": "physviz.train.sources",
    "MixedBatchSampler": "physviz.train.sampler",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_attributes("physviz.train", globals(), _LAZY)
