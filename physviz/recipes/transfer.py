"""The transfer experiment of the model card (as MPP's paper does it): pretrain without some systems, then
fine-tune on a few trajectories of them against the same architecture trained from scratch."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from physviz.recipes.recipe import Recipe, RecipeError, TransferSettings, run_train, train_config

TRANSFER_SEED = 700_000  # seeds of the fine-tuning pools (one per task, 1000 apart)
TRANSFER_TEST_SEED = 800_000  # seeds of the transfer test sets


def settings(recipe: Recipe) -> TransferSettings:
    """The recipe's transfer settings; a recipe without them cannot run the transfer stage."""
    if recipe.transfer is None:
        raise RecipeError(f"Recipe {recipe.name!r} has no 'transfer' settings, so it has no transfer stage; "
                          "use a recipe with them (e.g. bundled_transfer).")
    return recipe.transfer


def _transfer_data(recipe: Recipe, workdir: Path, progress: bool) -> dict[str, dict[str, Any]]:
    """Per task: a pool of max(sizes) trajectories written as nested subsets, and a test set."""
    from physviz.fields import to_well
    from physviz.fields.simulate.run import simulate

    ex = settings(recipe)
    sizes = sorted(ex.sizes)
    out: dict[str, dict[str, Any]] = {}
    for t, (task, spec) in enumerate(sorted(ex.tasks.items())):
        spec = dict(spec)
        system = spec.pop("system")
        root = workdir / "transfer" / task
        paths = {n: root / f"n{n}" for n in sizes}
        test = root / "test.hdf5"
        if not all((p / "stats.yaml").exists() for p in paths.values()) or not test.exists():
            pool = simulate(system, sizes[-1], seed=TRANSFER_SEED + 1000 * t, progress=progress, **spec)
            for n, p in paths.items():
                to_well(pool.isel(trajectory=slice(0, n)), p / "data" / "train" / f"{task}_{n}.hdf5")
            to_well(simulate(system, ex.test_trajectories, seed=TRANSFER_TEST_SEED + 1000 * t, progress=progress,
                             **spec), test, stats=False)
        out[task] = {"train": paths, "test": test}
    return out


def transfer_config(recipe: Recipe, data: Path, name: str, pretrained: Path | None) -> dict[str, Any]:
    """physviz.train config of one transfer run: fine-tune `pretrained`, or the same architecture from scratch (None)."""
    ex = settings(recipe)
    base = copy.deepcopy(recipe.train)
    cfg = {**base, "data": [{"path": str(data), "name": name, "valid_split": None}],
           "steps": ex.finetune_steps, "checkpoint_every": 0, "valid_every": 0,
           "optimizer": {**base.get("optimizer", {}), "lr": ex.finetune_lr, "warmup_steps": 10}}
    if pretrained is not None:
        cfg["model"] = {"init_from": str(pretrained)}
        cfg["finetune"] = dict(ex.finetune)  # e.g. blocks_lr_scale: only a pretrained model has a processor to keep
    return cfg


def run_transfer(recipe: Recipe, workdir: Path, progress: bool = True) -> dict[str, Any]:
    """Pretrain without the excluded systems, then fine-tune vs scratch per task and size; evaluate one-step and k-step."""
    from physviz.model.checkpoint import load_model
    from physviz.recipes.corpus import corpus_entries
    from physviz.recipes.evaluate import evaluate, load_eval, model_predictor

    ex = settings(recipe)
    data = _transfer_data(recipe, workdir, progress)
    pre = run_train(train_config(recipe, workdir), workdir / "transfer" / "pretrain")
    k = ex.rollout
    results: dict[str, Any] = {}
    for task, d in data.items():
        _, fields, bcs, test = load_eval(d["test"])
        results[task] = {}
        for n, path in sorted(d["train"].items()):
            row = {}
            for kind in ("pretrained", "scratch"):
                cfg = transfer_config(recipe, path, f"{task}_{n}", pre if kind == "pretrained" else None)
                model = load_model(run_train(cfg, workdir / "transfer" / task / f"{kind}_n{n}"))
                skill = evaluate(model_predictor(model, fields, bcs), test, recipe.context, k, fields)
                row[kind] = {"one_step": skill.one_step, f"rollout_{k}": skill.mean_rollout(k),
                             "rollout_5": skill.mean_rollout(5)}
            results[task][str(n)] = row
    return {"results": results, "pretrained_on": [e.name() for e in corpus_entries(recipe)],
            "pretrain_steps": int(recipe.train.get("steps", 0)), "excluded": list(recipe.exclude),
            "finetune_steps": ex.finetune_steps, "finetune_lr": ex.finetune_lr, "finetune": dict(ex.finetune),
            "test_trajectories": ex.test_trajectories}
