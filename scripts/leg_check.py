"""A training leg's checkpoint against the shipped model, in a minute: one-step VRMSE on held-out and zero-shot sets.

    python scripts/leg_check.py WORKDIR CHECKPOINT [--systems a,b] [--trajectories 4] [--frames 12]

WORKDIR is a `physviz pretrain` workdir with eval/ (its held-out test sets); CHECKPOINT is a training
checkpoint (``step_*.pt`` under a run's checkpoints/, read with its model config and registry) or a
physviz ``.safetensors``. Each held-out set is cut to its first ``--frames`` frames of ``--trajectories``
trajectories, so the numbers are for a quick look during a run, not the card's (which use every window).
The card's zero-shot sets (physics outside the corpus) are evaluated whole. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch


def load_candidate(path: Path) -> Any:
    """The model in a training checkpoint (.pt) or a physviz checkpoint (.safetensors), in eval mode."""
    from physviz.model.checkpoint import load_model, load_strict
    from physviz.model.family import build_model
    from physviz.model.registry import FieldRegistry
    from physviz.train.checkpoints import read_checkpoint

    if path.suffix == ".safetensors":
        return load_model(path).eval()
    state = read_checkpoint(path)
    family = (state.get("train_config") or {}).get("model", {}).get("family") or "avit"
    model = build_model(family, state["model_config"], FieldRegistry.from_dict(state["registry"]))
    load_strict(model, state["model"], str(path))
    return model.eval()


def one_step_table(workdir: Path, candidate: Any, systems: list[str] | None, trajectories: int,
                   frames: int) -> list[tuple[str, float, float, float]]:
    """(set, shipped, candidate, persistence) one-step VRMSE for each held-out set (cut) and zero-shot set."""
    import physviz
    from physviz.recipes.evaluate import evaluate, live_trajectories, load_eval, model_predictor, persistence
    from physviz.model.registry import generic_names
    from physviz.recipes.zero_shot import zero_shot_files

    shipped = physviz.load_pretrained()
    paths = sorted((workdir / "eval").glob("*.hdf5"))
    trained = sorted({f for p in paths for f in load_eval(p)[1]})  # the corpus's fields
    if systems:
        paths = [p for p in paths if p.stem in systems]
    rows = []
    for path, cut in [(p, True) for p in paths] + [(p, False) for p in zero_shot_files(["docs/model_card/zero_shot"])]:
        _, fields, bcs, data = load_eval(path)
        if cut:
            data = data[live_trajectories(data, start=4)][:trajectories, :frames]
        # a field the corpus never had goes through a model's generic slot where it has one
        names = [generic_names(m.registry, trained, fields) for m in (shipped, candidate)]
        errs = [evaluate(p, data, 4, 1, fields).one_step
                for p in (model_predictor(shipped, names[0], bcs), model_predictor(candidate, names[1], bcs),
                          persistence)]
        rows.append((path.stem if cut else f"zero-shot {path.stem}", *errs))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--systems", default="", help="comma-separated held-out sets (default: all in WORKDIR/eval)")
    ap.add_argument("--trajectories", type=int, default=4)
    ap.add_argument("--frames", type=int, default=12)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    rows = one_step_table(args.workdir, load_candidate(args.checkpoint), [s for s in args.systems.split(",") if s],
                          args.trajectories, args.frames)
    print("| set | shipped | candidate | persistence |\n|---|---|---|---|")
    for name, a, b, c in rows:
        print(f"| {name} | {a:.4f} | {b:.4f} | {c:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
