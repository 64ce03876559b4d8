"""The model card: MODEL_CARD.md from card_template.md over the facts and measurements in ``results.json``.

The evaluate stage records, beside the measurements, what the card says about the run
(`card_facts`: recipe, corpus, model file); `render_card` is a function of those results
alone, so a stored ``results.json`` regenerates its card.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from physviz.recipes.evaluate import floors
from physviz.recipes.zero_shot import zero_shot_section

if TYPE_CHECKING:
    from physviz.recipes.recipe import Recipe

TEMPLATE = Path(__file__).resolve().parent / "card_template.md"
TRANSFER_TEMPLATE = Path(__file__).resolve().parent / "card_transfer_template.md"  # the early-stopping protocol
TRANSFER_FIXED_TEMPLATE = Path(__file__).resolve().parent / "card_transfer_fixed_template.md"  # fixed fine-tune steps
RECIPE_KEYS = ("name", "train", "finish", "context", "eval_trajectories", "eval_steps", "eval_ensemble", "rollout_steps")
TABLE_SPANS = ("one_step", "rollout_10", "rollout_30")


def model_facts(path: Path, n_parameters: int) -> dict[str, Any]:
    """What the card says about a saved model: file, size, hash, config, steps, training time, parameters."""
    from physviz.model.checkpoint import read_model_info

    info = read_model_info(path)
    meta = info.get("metadata", {})
    return {"file": path.name, "megabytes": round(path.stat().st_size / 1e6, 1), "hash": info["hash"],
            "config": info["config"], "steps": meta.get("steps"), "training_seconds": meta.get("training_seconds", 0.0),
            "n_parameters": n_parameters, "continues": meta.get("continues")}


def card_facts(recipe: Recipe, model_path: Path, n_parameters: int) -> dict[str, Any]:
    """What the card says besides the measurements: the recipe, the corpus table and the evaluated model's facts."""
    from physviz.recipes.corpus import corpus_table

    return {"recipe": {k: v for k, v in recipe.to_dict().items() if k in RECIPE_KEYS},
            "corpus": corpus_table(recipe), "model": model_facts(model_path, n_parameters)}


def _fmt(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4f}"


def _holds(ok: bool) -> str:
    return "holds" if ok else "does not hold"


def _columns(skill: dict[str, Any], ensemble: int) -> list[tuple[str, str]]:
    """(predictor, column label) of the skill table."""
    has_ens = any("ensemble" in r for r in skill.values())
    return [("model", "model")] + ([("ensemble", f"x{ensemble} jitter")] if has_ens else []) + \
        [("persistence", "persistence"), ("fno", "FNO")]


def _skill_table(skill: dict[str, Any], cols: list[tuple[str, str]]) -> str:
    """The skill table: one row per dataset, one-step / 10-step / 30-step VRMSE of each predictor."""
    spans = ("one-step", "10-step", "30-step")
    head = "| dataset | " + " | ".join(f"{span}: {label}" if j == 0 else label for span in spans
                                       for j, (_, label) in enumerate(cols)) + " |"
    lines = [head, "|---|" + "---|" * (len(spans) * len(cols))]
    for name in sorted(skill):
        r = skill[name]
        lines.append(f"| {name} | " + " | ".join(_fmt(r.get(p, {}).get(key)) for key in TABLE_SPANS for p, _ in cols) + " |")
    return "\n".join(lines)


def _worst(skill: dict[str, Any], pred: str, key: str) -> str:
    """'; measured: at most R of persistence's (system)': the largest ratio of `pred`'s error to persistence's."""
    ratios = {n: r[pred][key] / r["persistence"][key] for n, r in skill.items()
              if pred in r and key in r[pred] and r["persistence"].get(key)}
    if not ratios:
        return ""
    name = max(ratios, key=ratios.__getitem__)
    return f"; measured: at most {ratios[name]:.2f} of persistence's ({name})"


def _floors(skill: dict[str, Any], cols: list[tuple[str, str]], ensemble: int) -> str:
    """The floors, for the model and (when measured) the jitter ensemble."""
    lines = []
    for pred, label in (("model", "Model"), ("ensemble", f"{ensemble}-jitter ensemble")):
        if pred not in dict(cols):
            continue
        f = floors(skill, pred)
        fails_half = sorted(k for k, v in f["one_step_half_of_persistence"].items() if not v)
        fails_ten = sorted(k for k, v in f["rollout10_beats_persistence"].items() if not v)
        won = sorted(k for k, v in f["beats_fno_rollout10"].items() if v)
        lines += [f"{label}:", "",
                  f"- One-step VRMSE at most half of persistence's on every system: **{_holds(f['all_half'])}**"
                  + (f" (fails on {fails_half})" if fails_half else "")
                  + _worst(skill, pred, "one_step") + ".",
                  f"- 10-step rollout better than persistence on every system: **{_holds(f['all_ten'])}**"
                  + (f" (fails on {fails_ten})" if fails_ten else "")
                  + _worst(skill, pred, "rollout_10") + "."]
        if f["fno_systems"]:
            lines.append(f"- Better than the FNO baseline (10-step rollout) on at least three systems: "
                         f"**{_holds(f['fno_wins'] >= 3)}** ({f['fno_wins']} of {f['fno_systems']}"
                         + (f": {won}" if won else "") + f"; one-step: {sum(f['beats_fno_one_step'].values())} "
                         f"of {f['fno_systems']}).")
        lines.append("")
    ratios = [r["model"]["one_step"] / r["fno"]["one_step"] for r in skill.values() if "fno" in r and "model" in r]
    if ratios:
        lines += [f"One-step, the model's VRMSE is {min(ratios):.1f}-{max(ratios):.1f}x the FNO's "
                  f"over the {len(ratios)} systems.", ""]
    return "\n".join(lines)


def _fno_budget(runs: dict[str, Any], model_seconds: float, recipe: str, carried: list[str] | None = None) -> str:
    """What the FNO baseline is and the wall clock it trained for, against the model's."""
    if not runs:
        return "No FNO baseline was trained for these results (the `fno` stage)."
    total = sum(r["seconds"] for r in runs.values())
    text = (f"The FNO baseline (neuraloperator's FNO, one per system, time folded into channels) trained on the same "
            f"data, each system for an equal share of a wall-clock budget: {total / 60:.0f} min in all "
            f"({total / 60 / len(runs):.1f} min each), against the model's {model_seconds / 60:.0f} min of training "
            f"(`physviz pretrain --recipe {recipe} --workdir WORKDIR --stages corpus,fno --fno-seconds "
            f"{model_seconds:g} --fno-workers 2`).")
    if carried:
        text += (f" The FNO rows of {len(carried)} systems are carried from the earlier evaluation of the same test "
                 "sets (`carry_fno`: persistence's errors reproduced to 1e-3), not retrained for this checkpoint, so "
                 "their budget is the one given here, not this model's.")
    return text


def _fno_runs(runs: dict[str, Any]) -> str:
    """A line with what each FNO baseline trained: steps, minutes, batch, threads."""
    if not runs:
        return ""
    return ("FNO training per system (optimiser steps and minutes in its share of the budget, samples per batch, "
            "CPU threads): " + ", ".join(f"{k} {r['steps']} steps in {r['seconds'] / 60:.1f} min (batch {r['batch']}, "
                                         f"{r['threads']} thread{'s' if r['threads'] != 1 else ''})"
                                         for k, r in sorted(runs.items())) + ".\n\n")


def _transfer(transfer: dict[str, Any] | None, figure: str | None, command: str, curves: str | None = None) -> str:
    """The transfer section: its table and floors (and the runs' validation curves), or how to measure it."""
    if not transfer:
        return ("Not measured yet: the transfer experiment (a second model pretrained without the compressible-flow "
                "data, fine-tuned on 1-32 low- and high-Mach trajectories against the same architecture from scratch, "
                "each run until its validation error stops improving) "
                f"is `{command}`; it has not been run for this checkpoint.\n")
    if transfer.get("protocol") == "early_stopping":
        return _transfer_early_stopping(transfer, figure, curves)
    rows = [f"| {task} | {n} | {_fmt(r['pretrained']['one_step'])} | {_fmt(r['scratch']['one_step'])} | "
            f"{_fmt(r['pretrained']['rollout_5'])} | {_fmt(r['scratch']['rollout_5'])} |"
            for task, sizes in transfer["results"].items() for n, r in sorted(sizes.items(), key=lambda kv: int(kv[0]))]
    cells = [r for sizes in transfer["results"].values() for r in sizes.values()]
    wins = {m: sum(r["pretrained"][m] < r["scratch"][m] for r in cells) for m in ("one_step", "rollout_5")}
    return Template(TRANSFER_FIXED_TEMPLATE.read_text()).substitute(
        rows="\n".join(rows), pretrain_steps=transfer["pretrain_steps"], excluded=transfer["excluded"],
        finetune_steps=transfer["finetune_steps"], finetune_lr=f"{transfer['finetune_lr']:g}",
        finetune=f" (the fine-tunes also with finetune {transfer['finetune']})" if transfer["finetune"] else "",
        test_trajectories=transfer["test_trajectories"], total=len(cells),
        one_step_wins=wins["one_step"], one_step_verdict=_holds(wins["one_step"] == len(cells)),
        rollout_5_wins=wins["rollout_5"], rollout_5_verdict=_holds(wins["rollout_5"] == len(cells)),
        figure=f"\n![transfer]({figure})\n" if figure else "")


def _matched(e: dict[str, Any]) -> str:
    """Where scratch matches the pretrained error, in words."""
    need = e["scratch_trajectories"]
    if need is None:
        return f"does not match it within the sizes measured (needs more than {e['largest']} trajectories)"
    if e.get("at_most"):
        return (f"matches it already at {need:g} trajector{'y' if need == 1 else 'ies'}, the smallest size measured "
                f"(gain at most {e['gain']:.1f}x)")
    return f"matches it at {need:.1f} trajectories (gain {e['gain']:.1f}x)"


def _listing(items: list[Any]) -> str:
    """[1, 2, 4] as '1, 2, 4'."""
    return ", ".join(str(n) for n in items)


def _transfer_early_stopping(transfer: dict[str, Any], figure: str | None, curves: str | None = None) -> str:
    """The transfer section of the early-stopping protocol: curves' table, efficiency gain and floor."""
    rows = []
    for task, sizes in transfer["results"].items():
        for n, r in sorted(sizes.items(), key=lambda kv: int(kv[0])):
            p, s = r["pretrained"], r["scratch"]
            rows.append(f"| {task} | {n} | {_fmt(p['one_step'])} | {_fmt(s['one_step'])} | {_fmt(p['rollout_5'])} | "
                        f"{_fmt(s['rollout_5'])} | {p.get('best_step', '-')} / {s.get('best_step', '-')} |")
    labels = {"one_step": "one-step", "rollout_5": "5-step"}
    eff = [f"- {task}, {labels[m]}: pretrained at {e['reference']}: {_fmt(e['pretrained'])}; scratch {_matched(e)}."
           for task, metrics in sorted(transfer["efficiency"].items()) for m, e in metrics.items()]
    floor = transfer["floor"]
    fails = floor["fails"]
    reference = next((e["reference"] for m in transfer["efficiency"].values() for e in m.values()), 2)
    run, planned = transfer.get("sizes"), transfer.get("recipe_sizes")
    sizes = ""
    if run and planned and run != planned:
        not_run = [n for n in planned if n not in run]
        beyond = ", all above the floor's" if all(n > floor["upto"] for n in not_run) else ""
        sizes = (f"\nMeasured so far at {_listing(run)} trajector{'y' if run == [1] else 'ies'} of the recipe's "
                 f"{_listing(planned)} ({_sizes(not_run)} not run yet{beyond}; `--transfer-sizes` runs a leg).\n")
    missing = floor.get("missing") or []
    sizes_missing = _sizes(missing)
    verdict, detail = _holds(floor["held"]), ""
    if fails:  # one failing cell settles it, whatever sizes are still to run
        detail = "; fails at " + ", ".join(f"{f['task']} {f['trajectories']} {labels[f['metric']]} "
                                           f"({_fmt(f['pretrained'])} vs scratch {_fmt(f['scratch'])})" for f in fails)
        detail += f"; {sizes_missing} not run yet" if missing else ""
    elif missing:
        verdict = f"not measured yet ({sizes_missing} not run)"
    return Template(TRANSFER_TEMPLATE.read_text()).substitute(
        rows="\n".join(rows), pretrain_steps=transfer["pretrain_steps"], excluded=_listing(transfer["excluded"]),
        pretrained_on=len(transfer["pretrained_on"]), finetune_lr=f"{transfer['finetune_lr']:g}",
        finetune=f"; the fine-tunes also with finetune {transfer['finetune']}" if transfer["finetune"] else "",
        valid_trajectories=transfer["valid_trajectories"], patience=transfer["patience"],
        by=f" by more than {transfer['min_rel_delta']:.0%}" if transfer.get("min_rel_delta") else "",
        valid_every=transfer["valid_every"], max_steps=transfer["max_steps"],
        test_trajectories=transfer["test_trajectories"], reference=reference,
        efficiency="\n".join(eff) if eff else "- not measured (no runs at that size).",
        sizes=sizes, floor_upto=floor["upto"], floor_verdict=verdict,
        floor_wins=floor["cells"] - len(fails), floor_cells=floor["cells"],
        floor_fails=detail,
        figure=(f"\n![transfer]({figure})\n" if figure else "") + (
            f"\nEach run's validation error while it fine-tuned (the early stopping's view):\n\n"
            f"![transfer validation]({curves})\n" if curves else ""))


def _sizes(ns: list[int]) -> str:
    """'size 8' or 'sizes 16, 32'."""
    return f"size{'s' if len(ns) > 1 else ''} {_listing(ns)}"


def _continues(start: dict[str, Any] | None) -> str:
    """The sentence on the checkpoint this one continues (empty for a model trained from random weights)."""
    if not start:
        return ""
    minutes = float(start.get("training_seconds") or 0.0) / 60
    return (f" It continues `{start['init_from']}` (recipe `{start.get('recipe')}`, {start.get('steps')} steps in "
            f"{minutes:.0f} min, weights `{str(start['hash'])[:16]}...`, still shipped and loadable by that name): "
            f"the steps and minutes above include those, and the settings are this recipe's own part.")


def card_context(results: dict[str, Any], figures: dict[str, str]) -> dict[str, Any]:
    """The values card_template.md is filled with, from `results` and the figures' paths relative to the card."""
    recipe, model, skill = results["recipe"], results["model"], results["skill"]
    cfg = model["config"]
    ensemble = int(recipe["eval_ensemble"])
    cols = _columns(skill, ensemble)
    name = recipe["name"]
    commands = {
        "pretrain": f"physviz pretrain --recipe {name} --workdir WORKDIR",
        "evaluate": f"physviz pretrain --recipe {name} --workdir WORKDIR --stages evaluate,card "
                    f"--bundle-to physviz/model/weights/{model['file']}",
        "transfer": f"physviz pretrain --recipe {name}_transfer --workdir WORKDIR",
    }
    width = int(cfg.get("refine_width") or 0)
    excluded = {k: int(v["excluded_uniform"]) for k, v in skill.items() if v.get("excluded_uniform")}
    model_seconds = float(model["training_seconds"] or 0.0)
    runs = results.get("fno_runs") or {}
    notes = results.get("notes")
    return {
        "title": f"physviz-{name}", "model_file": model["file"], "megabytes": f"{model['megabytes']:.1f}",
        "hash16": model["hash"][:16], **{k: cfg[k] for k in ("n_states", "patch_size", "processor_blocks",
                                                            "embed_dim", "num_heads", "context_frames")},
        "refiner": (f", then a full-resolution refiner of the predicted change ({width} channels: a 3^n convolution "
                    "on the last two frames and the decoded change, a depthwise 3^n and a 1x1 layer, a 1x1 head)"
                    if width else ""),
        "options": (", delta prediction" if cfg.get("delta_prediction") else "")
        + (" in units of the context's own frame-to-frame RMS change (as Walrus; a slow field gets small steps)"
           if cfg.get("step_scale") == "context" else "")
        + (", the refiner fed the context's last change in the unit of the predicted one (so it reads the same at "
           "any speed)" if cfg.get("refine_step") else "")
        + (", patch jittering in training" if cfg.get("jitter") else "")
        + (f", the stem's std normalisation floored at {cfg['norm_floor']:g} of the RMS"
           if float(cfg.get("norm_floor") or 0) >= 0.01 else ""),
        "n_parameters": f"{model['n_parameters']:,}",
        "corpus_rows": "\n".join(f"| {e['name']}{'' if e['used'] else ' (not used)'} | {e['system']} | {e['params']} | "
                                 f"{e['trajectories']} | {e['resolution']}^{e['dims']} | {e['frames']} |"
                                 for e in results["corpus"]),
        "eval_trajectories": recipe["eval_trajectories"], "eval_steps": recipe["eval_steps"],
        "excluded": ("\nLeft out of the skill tables: test trajectories in which a field becomes uniform (the "
                     "Gray-Scott pattern dies out or never forms; VRMSE divides by its spatial variance, 0 there): "
                     + ", ".join(f"{k}: {n}" for k, n in sorted(excluded.items()))
                     + ". The skill is measured on the remaining trajectories of those sets.\n" if excluded else ""),
        "steps": model["steps"] if model["steps"] is not None else "?",
        "training_minutes": f"{model_seconds / 60:.0f}",
        "train_settings": json.dumps(recipe["train"]),
        "finish": (f", then a finish leg from those weights with `{json.dumps(recipe['finish'])}` merged in."
                   if recipe["finish"] else "."),
        "continues": _continues(model.get("continues")),
        "notes": f"\nHow this checkpoint was trained, leg by leg, and the probes behind the recipe: [{notes}]({notes}).\n"
        if notes else "",
        "pretrain_command": commands["pretrain"], "evaluate_command": commands["evaluate"],
        "context": recipe["context"],
        "rollout_spans": " / ".join(k.split("_")[1] for k in TABLE_SPANS[1:]),
        "fno_budget": _fno_budget(runs, model_seconds, name, sorted(k for k, v in skill.items() if v.get("fno_carried"))),
        "fno_runs": _fno_runs(runs),
        "ensemble": (f"The \"x{ensemble} jitter\" column is the same model averaged over {ensemble} patch-jittered "
                     f"passes per step (shifts of the patch grid drawn from seed 0, as MPP and Walrus jitter; "
                     f"`physviz.rollout(..., ensemble={ensemble})`), at {ensemble}x the inference cost.\n\n"
                     if ("ensemble", f"x{ensemble} jitter") in cols else ""),
        "skill_table": _skill_table(skill, cols),
        "floors": _floors(skill, cols, ensemble),
        "rollout_figure": figures["rollout"], "spectra_figure": figures["spectra"],
        "transfer": _transfer(results.get("transfer"), figures.get("transfer"), commands["transfer"],
                              figures.get("transfer_validation")),
        "zero_shot": zero_shot_section(results.get("zero_shot")),
    }


def render_card(results: dict[str, Any], figures: dict[str, str]) -> str:
    """MODEL_CARD.md's text: card_template.md filled from `results` (see `card_context`)."""
    return Template(TEMPLATE.read_text()).substitute(card_context(results, figures))


def write_card(results: dict[str, Any], card: Path) -> dict[str, Any]:
    """Write the card's figures and results.json to card's folder/docs/model_card and the card itself; return the results."""
    from physviz.fields.atomic import write_text_atomic
    from physviz.recipes.evaluate import write_results
    from physviz.recipes.figures import plot_figures, plot_transfer, plot_transfer_validation
    from physviz.recipes.recipe import RecipeError

    missing = [k for k in ("skill", "recipe", "model", "corpus") if k not in results]
    if missing:
        raise RecipeError(f"The results have no {missing} to write a card from; run the evaluate stage first.")

    fig_dir = card.parent / "docs" / "model_card"
    figs = plot_figures(results, fig_dir)
    if results.get("transfer"):
        figs["transfer"] = plot_transfer(results["transfer"], fig_dir)
        curves = plot_transfer_validation(results["transfer"], fig_dir)
        if curves is not None:
            figs["transfer_validation"] = curves
    write_results(fig_dir, results)  # the card's data beside its figures, so the two never drift apart
    rel = {k: str(v.relative_to(card.parent)) for k, v in figs.items()}
    write_text_atomic(card, render_card(results, rel))
    return results
