"""The pretraining pipeline of a recipe: corpus, training, FNO baselines, bundle, evaluation, transfer, card.

``physviz pretrain --recipe bundled --workdir DIR`` runs the stages in order; each one
skips what is already on disk, so an interrupted run resumes where it stopped:

1. ``corpus``: the built-in simulators write ``BUNDLED_CORPUS`` (Well splits, stats.yaml),
   and held-out test sets (other seeds, hence other random parameters; longer
   trajectories for 30-step rollouts) to ``DIR/eval``.
2. ``train``: ``physviz.train`` on the corpus with the recipe's config (checkpoints, resume),
   then the recipe's ``finish`` leg, if any (e.g. rollout training), from those weights.
3. ``fno``: one neuraloperator FNO per system with the same total wall-clock budget.
4. ``bundle``: the trained model with its recipe in the metadata, to ``DIR/bundle/`` (or
   ``--bundle-to``: ``physviz/model/weights/physviz-tiny.safetensors`` ships it).
5. ``evaluate``: one-step and 10/30-step rollout VRMSE on the test sets for that model,
   persistence and the FNO; spectra after 10 steps; ``DIR/results.json`` (with the recipe,
   corpus and model facts the card shows). Without FNO weights, the FNO rows of an earlier
   ``DIR/results.json`` stay for test sets it evaluated identically (`carry_fno`).
6. ``transfer``: the transfer experiment of a recipe with ``transfer`` settings (``--transfer-workers``
   fine-tunes at once, each on its share of the CPU threads; ``--transfer-sizes`` runs and reports only
   those fine-tuning set sizes).
7. ``zero_shot``: the model against persistence on the recipe's ``zero_shot`` files (physics outside
   the corpus, from other solvers), into ``DIR/results.json``.
8. ``card``: ``MODEL_CARD.md`` and its figures from ``DIR/results.json``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from physviz.recipes.recipe import Recipe, final_checkpoint, finish_config, run_train, train_config
from physviz.train.metrics import last_step, read_metrics

STAGES = ("corpus", "train", "fno", "evaluate", "bundle", "transfer", "zero_shot", "card")


def run_pipeline(recipe: Recipe, workdir: Path, stages: Sequence[str] = STAGES, *,
                 card: Path = Path("MODEL_CARD.md"), bundle_to: Path | None = None, fno_seconds: float | None = None,
                 overrides: list[str] | None = None, progress: bool = True, fno_workers: int = 1,
                 fno_systems: list[str] | None = None, transfer_workers: int = 1,
                 transfer_sizes: list[int] | None = None) -> dict[str, Any]:
    """Run the chosen stages of a recipe in order; return the results (also in workdir/results.json)."""
    from physviz.recipes.baselines import fno_runs, train_fno_baselines
    from physviz.recipes.card import card_facts, write_card
    from physviz.recipes.corpus import make_corpus
    from physviz.recipes.evaluate import carry_fno, evaluate_all, read_results, write_results
    from physviz.recipes.transfer import run_transfer

    if "transfer" in stages and transfer_sizes is not None:
        from physviz.recipes.transfer import check_sizes

        check_sizes(recipe, transfer_sizes)  # before the stages ahead of it spend their time
    workdir.mkdir(parents=True, exist_ok=True)
    model_path = bundle_to or bundle_path(recipe, workdir)
    if "corpus" in stages:
        make_corpus(recipe, workdir, progress)
    if "train" in stages:
        run_training(recipe, workdir, overrides)
    fno: dict[str, Path] = {p.stem: p for p in (workdir / "fno").glob("*.pt")}
    if "fno" in stages:
        budget = fno_seconds or recipe.fno_seconds or total_training_seconds(recipe, workdir)
        fno = train_fno_baselines(recipe, workdir, budget, progress, workers=fno_workers, systems=fno_systems)
    if "bundle" in stages:
        bundle(recipe, workdir, model_path)
    if "evaluate" in stages:
        from physviz.model.checkpoint import load_model

        evaluated = model_path if model_path.exists() else final_checkpoint(recipe, workdir)
        model = _on_gpu(load_model(evaluated))
        skill = evaluate_all(recipe, workdir, model, fno, progress)
        results = read_results(workdir)  # what another stage (transfer) wrote meanwhile stays
        runs = fno_runs(workdir)
        # FNO rows of an earlier evaluation of the same test sets stay when their weights are not here
        if carry_fno(skill["skill"], results.get("skill") or {}) and not runs:
            runs = results.get("fno_runs") or {}
        n_parameters = sum(p.numel() for p in model.parameters())
        results.update(skill, fno_runs=runs, **card_facts(recipe, evaluated, n_parameters))
        write_results(workdir, results)
    if "transfer" in stages:
        transfer = run_transfer(recipe, workdir, progress, workers=transfer_workers, sizes=transfer_sizes)
        write_results(workdir, {**read_results(workdir), "transfer": transfer})
    if "zero_shot" in stages:
        from physviz.model.checkpoint import load_model
        from physviz.recipes.zero_shot import evaluate_zero_shot, zero_shot_files

        model = _on_gpu(load_model(model_path if model_path.exists() else final_checkpoint(recipe, workdir)))
        zero = evaluate_zero_shot(model, zero_shot_files(recipe.zero_shot), recipe.context, recipe.zero_shot_steps,
                                  _trained_fields(model, read_results(workdir)))
        write_results(workdir, {**read_results(workdir), "zero_shot": zero})
    if "card" in stages:
        return write_card(read_results(workdir), Path(card))
    return read_results(workdir)


def _trained_fields(model: Any, results: dict[str, Any]) -> list[str] | None:
    """The fields the model's training saw: its metadata's record, else the fields of the corpus test sets evaluated."""
    trained = (getattr(model, "metadata", None) or {}).get("trained_fields")
    if trained is None and results.get("skill"):
        trained = sorted({f for row in results["skill"].values() for f in row.get("fields") or []})
    return trained


def _on_gpu(model: Any) -> Any:
    """The model on the GPU when there is one (evaluation inputs follow the model's device)."""
    import torch

    return model.to("cuda") if torch.cuda.is_available() else model


def run_training(recipe: Recipe, workdir: Path, overrides: list[str] | None = None) -> Path:
    """`python -m physviz.train` on the recipe, then its finish leg (each resumes from its checkpoints); returns the final model."""
    run_train(train_config(recipe, workdir), workdir / "train", overrides or ())
    if recipe.finish:
        run_train(finish_config(recipe, workdir), workdir / "finish")
    return final_checkpoint(recipe, workdir)


def stream_seconds(path: Path, max_gap: float = 600.0) -> float:
    """Wall-clock seconds of a metrics stream: the sum of the gaps between its records, leaving out
    gaps over `max_gap` (the run was stopped and resumed later)."""
    times = sorted(float(r["time"]) for r in read_metrics(path) if isinstance(r.get("time"), (int, float)))
    return float(sum(b - a for a, b in zip(times, times[1:]) if b - a <= max_gap))


def training_seconds(workdir: Path, max_gap: float = 600.0) -> float:
    """Wall-clock seconds the recipe's training spent (see `stream_seconds`)."""
    return stream_seconds(workdir / "train" / "metrics.jsonl", max_gap)


def total_training_seconds(recipe: Recipe, workdir: Path) -> float:
    """Wall clock of the training and (if any) the finish leg."""
    extra = stream_seconds(workdir / "finish" / "metrics.jsonl") if recipe.finish else 0.0
    return training_seconds(workdir) + extra


def _trained_steps(path: Path) -> int:
    """The highest step of a metrics stream (0 if there is none)."""
    return last_step(read_metrics(path))


def bundle(recipe: Recipe, workdir: Path, target: Path | None = None) -> Path:
    """Write the trained model with its recipe and training facts in the metadata (to `target`, or `bundle_path`)."""
    from physviz.model.checkpoint import load_model, save_model
    from physviz.recipes.corpus import corpus_entries

    model = load_model(final_checkpoint(recipe, workdir))
    steps = _trained_steps(workdir / "train" / "metrics.jsonl")
    if recipe.finish:
        steps += _trained_steps(workdir / "finish" / "metrics.jsonl")
    seconds = total_training_seconds(recipe, workdir)
    meta = {"name": f"physviz-{recipe.name}", "recipe": recipe.name, "recipe_train": recipe.train,
            "corpus": [e.name() for e in corpus_entries(recipe)]}
    start = continued_checkpoint(recipe)
    if start is not None:
        # a recipe that continues a checkpoint counts that checkpoint's training in its own
        meta["continues"] = start
        steps += int(start.get("steps") or 0)
        seconds += float(start.get("training_seconds") or 0.0)
    meta.update(steps=steps, training_seconds=round(seconds, 1))
    if recipe.finish:
        meta["recipe_finish"] = recipe.finish
    return save_model(model, target or bundle_path(recipe, workdir), meta)


def continued_checkpoint(recipe: Recipe) -> dict[str, Any] | None:
    """What the recipe's training starts from (its init_from): name, hash, steps and training seconds; None
    for a recipe that starts from random weights."""
    from physviz.model.checkpoint import read_model_info
    from physviz.train.config import init_checkpoint

    init_from = (recipe.train.get("model") or {}).get("init_from")
    path = init_checkpoint(init_from) if init_from else None
    if path is None or path.suffix != ".safetensors":
        return None
    info = read_model_info(path)
    meta = info.get("metadata", {})
    return {"init_from": init_from, "hash": info["hash"], "recipe": meta.get("recipe"), "steps": meta.get("steps"),
            "training_seconds": meta.get("training_seconds")}


def bundle_path(recipe: Recipe, workdir: Path) -> Path:
    """Where `bundle` writes by default: workdir/bundle/<the package's file name>, never the package itself.

    Shipping a new model is a deliberate step: ``--bundle-to physviz/model/weights/NAME``.
    """
    from physviz.model.pretrained import BUNDLED

    return workdir / "bundle" / BUNDLED.get(recipe.name, f"physviz-{recipe.name}.safetensors")
