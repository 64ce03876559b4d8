"""Zero-shot skill on physics outside the pretraining corpus: the model against persistence on Well files a user
could bring (made by other solvers), with how fast each evolves and the floor (one-step no worse than persistence).

``docs/model_card/zero_shot/`` holds the card's sets (``scripts/make_external_data.py`` made them with FiPy);
a recipe's ``zero_shot`` lists the files or folders to measure.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from physviz.errors import ParameterError
from physviz.model.registry import generic_names, read_through_generic
from physviz.recipes.evaluate import evaluate, load_eval, model_predictor, persistence

REPO = Path(__file__).resolve().parents[2]


def zero_shot_files(entries: Sequence[str]) -> list[Path]:
    """The HDF5 files named by `entries` (files or folders; relative ones from the current folder, else the repo)."""
    files: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if not path.is_absolute() and not path.exists():
            path = REPO / entry
        if path.is_dir():
            files += sorted(path.glob("*.hdf5"))
        elif path.is_file():
            files.append(path)
        else:
            raise ParameterError(f"Zero-shot data {entry!r} is neither an HDF5 file nor a folder of them.")
    if not files:
        raise ParameterError(f"No zero-shot HDF5 file in {list(entries)}; make them with scripts/make_external_data.py.")
    return files


def change_per_frame(data: np.ndarray) -> float:
    """How fast trajectories (B, T, C, *S) evolve: RMS of the frame-to-frame change over the spatial standard
    deviation, mean over trajectories, frames and fields (0.01: about 1% per frame)."""
    axes = tuple(range(3, data.ndim))
    delta = np.sqrt((np.diff(data.astype(np.float64), axis=1) ** 2).mean(axis=axes))
    return float((delta / (data[:, 1:].std(axis=axes) + 1e-12)).mean())


def evaluate_zero_shot(model: Any, files: Sequence[Path], context: int = 4, steps: int = 10,
                       trained: Sequence[str] | None = None) -> dict[str, Any]:
    """Per file: one-step and mean `steps`-step VRMSE of the model and persistence, per field, change per frame,
    and whether one-step is no worse than persistence's; ``floor_held`` over all files.

    `trained`: the fields the model's training saw (default: its metadata's ``trained_fields``); each
    row names the file's fields outside it (``untrained_fields``) and those read through the model's
    generic slot (``generic_fields``).
    """
    out: dict[str, Any] = {}
    if trained is None:
        trained = (getattr(model, "metadata", None) or {}).get("trained_fields")
    for path in files:
        ds, fields, bcs, data = load_eval(path)
        row: dict[str, Any] = {"file": path.name, "fields": fields, "trajectories": int(data.shape[0]),
                               "frames": int(data.shape[1]), "resolution": list(data.shape[3:]),
                               "change_per_frame": change_per_frame(data),
                               "solver": dict(ds.attrs.get("simulation_parameters") or {}).get("solver", "")}
        generic = read_through_generic(model.registry, trained, fields)
        row["untrained_fields"] = [f for f in fields if trained is not None and f not in trained]
        row["generic_fields"] = generic  # read through the model's generic slot: it never trained them
        names = generic_names(model.registry, trained, fields)
        for name, pred in (("model", model_predictor(model, names, bcs)), ("persistence", persistence)):
            skill = evaluate(pred, data, context, steps, fields)
            row[name] = {"one_step": skill.one_step, "per_field_one_step": skill.per_field_one_step,
                         f"rollout_{steps}": skill.mean_rollout(min(steps, data.shape[1] - context)),
                         "curve": [float(v) for v in skill.rollout]}
        row["one_step_no_worse"] = row["model"]["one_step"] <= row["persistence"]["one_step"]
        out[path.stem] = row
    return {"systems": out, "floor_held": all(r["one_step_no_worse"] for r in out.values()), "context": context,
            "steps": steps}


def zero_shot_section(zero: dict[str, Any] | None) -> str:
    """The card's zero-shot section (empty when not measured, so a card without it reads as before)."""
    if not zero:
        return ""
    steps = zero["steps"]
    lines = ["", "## Zero-shot on physics it never saw", "",
             "Systems outside the pretraining corpus, from a solver that is not part of physviz (FiPy; "
             "`scripts/make_external_data.py`, data in `docs/model_card/zero_shot/`), no fine-tuning:", "",
             f"| system | change per frame | model T+1 | persistence T+1 | model {steps}-step | persistence {steps}-step |",
             "|---|---|---|---|---|---|"]
    for name, r in sorted(zero["systems"].items()):
        lines.append(f"| {name} ({', '.join(r['fields'])}) | {100 * r['change_per_frame']:.1f}% | "
                     f"{r['model']['one_step']:.4f} | {r['persistence']['one_step']:.4f} | "
                     f"{r['model'][f'rollout_{steps}']:.4f} | {r['persistence'][f'rollout_{steps}']:.4f} |")
    fails = sorted(n for n, r in zero["systems"].items() if not r["one_step_no_worse"])
    ratios = {n: r["model"]["one_step"] / r["persistence"]["one_step"] for n, r in zero["systems"].items()}
    measured = ", ".join(f"{n} {v:.2f}" for n, v in sorted(ratios.items()))
    lines += ["", "- Floor: one-step no worse than persistence on each: **"
              + ("holds" if zero["floor_held"] else "does not hold") + "**"
              + (f" (fails on {fails})" if fails else "")
              + f"; measured, the model's one-step VRMSE over persistence's: {measured}."]
    generic = sorted({f for r in zero["systems"].values() for f in r.get("generic_fields") or []})
    own = sorted({f for r in zero["systems"].values() for f in r.get("untrained_fields") or []} - set(generic))
    if generic:
        lines += [f"- The model never trained {', '.join(generic)}: it read them through its generic slot, which "
                  "training showed every field in turn (field dropout); a field's own slot would be untrained."]
    if own:
        lines += [f"- The model never trained {', '.join(own)}: it read them through their own slots, whose "
                  "embedding and decoder weights are untrained, so these rows measure no learned physics for them."]
    return "\n".join(lines)
