"""One transfer run of the model card under changed settings, for probes outside the full 16-run stage.

Usage: python scripts/transfer_probe.py WORKDIR NAME 'YAML' TASK:N [TASK:N ...]
WORKDIR is a `physviz pretrain --recipe bundled_transfer_fixed` workdir whose transfer data and
pretraining exist; YAML holds finetune settings of the pretrained arm (e.g. ``{blocks_lr_scale: 2}``,
``{freeze: processor}``), ``transfer: {...}`` recipe transfer settings (e.g. ``{finetune_lr: 1.0e-3}``),
``scratch: true`` for the scratch arm and ``init_from: PATH`` to start from another checkpoint than the
transfer pretraining. Each run trains in WORKDIR/probe/NAME/TASK_nN and appends its one-step and
5-step VRMSE (and the per-field one-step VRMSE) to WORKDIR/probe.jsonl.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def main(argv: list[str]) -> int:
    """Run the named probes in order; print one JSON line each."""
    from physviz.model.checkpoint import load_model
    from physviz.recipes.evaluate import evaluate, load_eval, model_predictor
    from physviz.recipes.recipe import Recipe, run_train
    from physviz.recipes.transfer import settings, transfer_config

    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    work, name, variant, jobs = Path(argv[0]), argv[1], yaml.safe_load(argv[2]) or {}, argv[3:]
    recipe = Recipe.load("bundled_transfer_fixed")
    scratch = bool(variant.pop("scratch", False))
    pre = Path(variant.pop("init_from", work / "transfer" / "pretrain" / "final.safetensors"))
    recipe.transfer = settings(recipe).replace(**variant.pop("transfer", {}), finetune=variant)
    if not scratch and not pre.is_file():
        print(f"{pre} does not exist: run the transfer stage's pretraining first.", file=sys.stderr)
        return 2
    for job in jobs:
        task, n = job.split(":")
        _, fields, bcs, test = load_eval(work / "transfer" / task / "test.hdf5")
        cfg = transfer_config(recipe, work / "transfer" / task / f"n{n}", f"{task}_{n}", None if scratch else pre)
        final = run_train(cfg, work / "probe" / name / f"{task}_n{n}")
        skill = evaluate(model_predictor(load_model(final), fields, bcs), test, recipe.context, 5, fields)
        row = {"probe": name, "task": task, "n": int(n), "one_step": skill.one_step, "rollout_5": skill.mean_rollout(5),
               "per_field_one_step": skill.per_field_one_step}
        print(json.dumps(row), flush=True)
        with open(work / "probe.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
