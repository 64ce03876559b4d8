"""The transfer experiment of the model card (as MPP's paper does it): pretrain without some systems, then
fine-tune on a few trajectories of them against the same architecture trained from scratch.

Two protocols (``transfer.protocol`` of a recipe): 'fixed_steps' gives every run the same number of
steps; 'early_stopping' trains every run until its one-step VRMSE on validation trajectories (other
seeds than the fine-tuning pool and the test set) stops improving, then evaluates its best validation
weights, and reports the efficiency gain (`trajectories_to_match`) and the floor (`transfer_floor`).
"""
from __future__ import annotations

import copy
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from physviz.recipes.recipe import (PoolRun, Recipe, RecipeError, TransferSettings, run_train_pool,
                                    train_config)

TRANSFER_SEED = 700_000  # seeds of the fine-tuning pools (one per task, 1000 apart)
TRANSFER_TEST_SEED = 800_000  # seeds of the transfer test sets
TRANSFER_VALID_SEED = 750_000  # seeds of the validation sets of the early-stopping protocol
METRICS = ("one_step", "rollout_5")


def settings(recipe: Recipe) -> TransferSettings:
    """The recipe's transfer settings; a recipe without them cannot run the transfer stage."""
    if recipe.transfer is None:
        raise RecipeError(f"Recipe {recipe.name!r} has no 'transfer' settings, so it has no transfer stage; "
                          "use a recipe with them (e.g. bundled_transfer).")
    return recipe.transfer


def _transfer_data(recipe: Recipe, workdir: Path, progress: bool) -> dict[str, dict[str, Any]]:
    """Per task: a pool of max(sizes) trajectories written as nested subsets, a test set and (early
    stopping) a validation set, copied into each subset's ``data/valid``."""
    from physviz.fields import to_well
    from physviz.fields.simulate.run import simulate

    ex = settings(recipe)
    sizes = sorted(ex.sizes)
    early = ex.protocol == "early_stopping"
    out: dict[str, dict[str, Any]] = {}
    for t, (task, spec) in enumerate(sorted(ex.tasks.items())):
        spec = dict(spec)
        system = spec.pop("system")
        root = workdir / "transfer" / task
        paths = {n: root / f"n{n}" for n in sizes}
        test = root / "test.hdf5"
        valid = root / "valid.hdf5"
        if not all((p / "stats.yaml").exists() for p in paths.values()) or not test.exists():
            pool = simulate(system, sizes[-1], seed=TRANSFER_SEED + 1000 * t, progress=progress, **spec)
            for n, p in paths.items():
                to_well(pool.isel(trajectory=slice(0, n)), p / "data" / "train" / f"{task}_{n}.hdf5")
            to_well(simulate(system, ex.test_trajectories, seed=TRANSFER_TEST_SEED + 1000 * t, progress=progress,
                             **spec), test, stats=False)
        if early:
            if not valid.exists():
                to_well(simulate(system, ex.valid_trajectories, seed=TRANSFER_VALID_SEED + 1000 * t,
                                 progress=progress, **spec), valid, stats=False)
            for n, p in paths.items():
                target = p / "data" / "valid" / f"{task}_valid.hdf5"
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(valid, target)
        out[task] = {"train": paths, "test": test, "valid": valid if early else None}
    return out


def transfer_config(recipe: Recipe, data: Path, name: str, pretrained: Path | None) -> dict[str, Any]:
    """physviz.train config of one transfer run: fine-tune `pretrained`, or the same architecture from scratch (None)."""
    ex = settings(recipe)
    base = copy.deepcopy(recipe.train)
    base.pop("field_dropout", None)  # a pretraining option: the fine-tunes train the fields they have
    optimizer = {**base.get("optimizer", {}), "lr": ex.finetune_lr, "warmup_steps": 10}
    if ex.protocol == "early_stopping":
        cfg = {**base, "data": [{"path": str(data), "name": name, "valid_split": "valid"}],
               # a checkpoint at each validation: a run stopped between legs resumes there (early-stopping state too)
               "steps": ex.max_steps, "checkpoint_every": ex.valid_every, "valid_every": ex.valid_every,
               "valid_batches": ex.valid_batches, "optimizer": {**optimizer, **ex.optimizer},
               "early_stopping": {"patience": ex.patience, "min_delta": ex.min_delta,
                                  "min_rel_delta": ex.min_rel_delta}}
    else:
        cfg = {**base, "data": [{"path": str(data), "name": name, "valid_split": None}],
               "steps": ex.finetune_steps, "checkpoint_every": 0, "valid_every": 0, "optimizer": optimizer}
    if pretrained is not None:
        cfg["model"] = {"init_from": str(pretrained)}
        cfg["finetune"] = dict(ex.finetune)  # e.g. blocks_lr_scale: only a pretrained model has a processor to keep
    return cfg


def transfer_runs(recipe: Recipe, workdir: Path, data: dict[str, dict[str, Any]], pretrained: Path,
                  sizes: Sequence[int] | None = None) -> list[tuple[str, int, str, dict[str, Any], Path]]:
    """The fine-tune runs (task, size, arm, train config, output folder) of `sizes` (None: all), smallest sets
    first, so the sizes of the floor are done before the large ones when the stage runs in legs."""
    runs = [(task, n, kind, transfer_config(recipe, path, f"{task}_{n}", pretrained if kind == "pretrained" else None),
             workdir / "transfer" / task / f"{kind}_n{n}")
            for task, d in data.items() for n, path in d["train"].items() if sizes is None or n in sizes
            for kind in ("pretrained", "scratch")]
    return sorted(runs, key=lambda r: (r[1], r[0], r[2]))


def check_sizes(recipe: Recipe, sizes: Sequence[int] | None) -> list[int]:
    """The fine-tuning set sizes to run: `sizes` (None: all of the recipe's), each one of the recipe's."""
    known = sorted(settings(recipe).sizes)
    if sizes is None:
        return known
    unknown = sorted(set(sizes) - set(known))
    if unknown or not sizes:
        raise RecipeError(f"Transfer sizes {unknown or '(none)'} are not among recipe {recipe.name!r}'s sizes {known}.")
    return sorted(set(sizes))


def run_transfer(recipe: Recipe, workdir: Path, progress: bool = True, workers: int = 1,
                 sizes: Sequence[int] | None = None) -> dict[str, Any]:
    """Pretrain without the excluded systems, then fine-tune vs scratch per task and size (`workers` runs at a
    time, the scratch runs beside the pretraining; only `sizes` when given, a leg of the whole curve); evaluate
    one-step and k-step."""
    from physviz.model.checkpoint import load_model, read_model_info
    from physviz.recipes.corpus import corpus_entries
    from physviz.recipes.evaluate import evaluate, load_eval, model_predictor

    ex = settings(recipe)
    run_sizes = check_sizes(recipe, sizes)
    data = _transfer_data(recipe, workdir, progress)
    pre_dir = workdir / "transfer" / "pretrain"
    runs = transfer_runs(recipe, workdir, data, pre_dir / "final.safetensors", run_sizes)
    # the pretraining first; with more than one worker the scratch runs train beside it
    pool = [PoolRun(train_config(recipe, workdir), pre_dir, label="the transfer pretraining")]
    pool += [PoolRun(cfg, out, after=0 if kind == "pretrained" else None,
                     label=f"{task} {kind} on {n} trajector{'y' if n == 1 else 'ies'}")
             for task, n, kind, cfg, out in runs]
    finals = run_train_pool(pool, workers, progress)[1:]
    k = ex.rollout
    early = ex.protocol == "early_stopping"
    results: dict[str, Any] = {task: {} for task in data}
    tests = {task: load_eval(d["test"]) for task, d in data.items()}
    for (task, n, kind, _, _), final in zip(runs, finals):  # sizes ascending within each task
        _, fields, bcs, test = tests[task]
        skill = evaluate(model_predictor(load_model(final), fields, bcs), test, recipe.context, k, fields)
        row = {"one_step": skill.one_step, f"rollout_{k}": skill.mean_rollout(k), "rollout_5": skill.mean_rollout(5)}
        if early:
            meta = read_model_info(final).get("metadata", {})
            stop = meta.get("early_stopping") or {}
            row.update(steps=int(meta.get("trained_steps", 0)), best_step=stop.get("best_step"),
                       valid_vrmse=stop.get("best_vrmse"), valid_curve=valid_curve(final.parent))
        results[task].setdefault(str(n), {})[kind] = row
    out = {"results": results, "pretrained_on": [e.name() for e in corpus_entries(recipe)],
           "pretrain_steps": int(recipe.train.get("steps", 0)), "excluded": list(recipe.exclude),
           "finetune_steps": ex.finetune_steps, "finetune_lr": ex.finetune_lr, "finetune": dict(ex.finetune),
           "test_trajectories": ex.test_trajectories, "sizes": run_sizes, "recipe_sizes": sorted(ex.sizes)}
    if early:
        out.update(protocol="early_stopping", valid_trajectories=ex.valid_trajectories, valid_every=ex.valid_every,
                   patience=ex.patience, min_delta=ex.min_delta, min_rel_delta=ex.min_rel_delta,
                   max_steps=ex.max_steps,
                   optimizer={**recipe.train.get("optimizer", {}), "lr": ex.finetune_lr, "warmup_steps": 10,
                              **ex.optimizer},
                   efficiency=efficiency(results, ex.reference_size),
                   floor=transfer_floor(results, ex.floor_upto, ex.sizes))
    return out


def valid_curve(run: Path) -> list[list[float]]:
    """A run's validation one-step VRMSE as [step, vrmse] pairs, from its metrics.jsonl (as it stands after resumes)."""
    from physviz.train.metrics import METRICS_FILE, latest_per_step, read_metrics

    return [[int(r["step"]), float(next(iter(r["vrmse"].values())))]
            for r in latest_per_step(read_metrics(run / METRICS_FILE), "valid") if r.get("vrmse")]


# -- what the early-stopping protocol reports ------------------------------------------------------
def trajectories_to_match(sizes: Sequence[int], errors: Sequence[float], target: float) -> float | None:
    """How many trajectories a curve (errors at sizes, ascending) needs to reach `target`: the first size where it
    is at most `target`, interpolated linearly in log n from the size before; None when it never does."""
    pairs = sorted(zip(sizes, errors))
    for i, (n, e) in enumerate(pairs):
        if e <= target:
            if i == 0:
                return float(n)
            n0, e0 = pairs[i - 1]
            frac = (e0 - target) / (e0 - e)
            return float(math.exp(math.log(n0) + frac * (math.log(n) - math.log(n0))))
    return None


def efficiency(results: dict[str, Any], reference: int = 2) -> dict[str, Any]:
    """Per task and metric: the pretrained error at `reference` trajectories, how many trajectories scratch needs to
    match it (None: more than the largest size; `at_most`: matched already at the smallest size, so only a bound)
    and the gain (that number over `reference`)."""
    out: dict[str, Any] = {}
    for task, rows in results.items():
        if str(reference) not in rows:
            continue
        sizes = sorted(int(n) for n in rows)
        out[task] = {}
        for m in METRICS:
            target = rows[str(reference)]["pretrained"][m]
            need = trajectories_to_match(sizes, [rows[str(n)]["scratch"][m] for n in sizes], target)
            out[task][m] = {"reference": reference, "pretrained": target, "scratch_trajectories": need,
                            "at_most": need == sizes[0], "largest": sizes[-1],
                            "gain": None if need is None else need / reference}
    return out


def transfer_floor(results: dict[str, Any], upto: int = 8, sizes: Sequence[int] = ()) -> dict[str, Any]:
    """The floor: pretrained better than scratch at every size up to `upto`, one-step and 5-step; the cells that fail,
    and the `sizes` up to `upto` some task has no result for (while any is missing, the floor is not held)."""
    fails = [{"task": task, "trajectories": int(n), "metric": m, "pretrained": r["pretrained"][m],
              "scratch": r["scratch"][m]}
             for task, rows in sorted(results.items()) for n, r in sorted(rows.items(), key=lambda kv: int(kv[0]))
             if int(n) <= upto for m in METRICS if not r["pretrained"][m] < r["scratch"][m]]
    cells = sum(1 for rows in results.values() for n in rows if int(n) <= upto) * len(METRICS)
    missing = sorted(n for n in set(sizes) if n <= upto and any(str(n) not in rows for rows in results.values()))
    return {"upto": upto, "held": not fails and not missing and cells > 0, "cells": cells, "fails": fails,
            "missing": missing}
