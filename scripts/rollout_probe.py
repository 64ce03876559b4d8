"""Continue training the bundled model on its corpus with rollout (pushforward) training, or a one-step control.

Usage: python scripts/rollout_probe.py WORKDIR NAME STEPS ROLLOUT_STEPS [GRADIENT [LR]]
WORKDIR is a `physviz pretrain --recipe bundled --stages corpus` workdir (corpus/ and eval/).
NAME 'shipped' with STEPS 0 evaluates the bundled checkpoint itself. Each run trains in
WORKDIR/rollout/NAME (resumable), evaluates the model and persistence on every held-out test
set (one-step, 10- and 30-step rollout VRMSE, no ensemble) and writes WORKDIR/rollout/NAME.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Train (unless STEPS is 0), evaluate, print a per-system summary."""
    from physviz.model.checkpoint import load_model
    from physviz.recipes.evaluate import evaluate_all
    from physviz.recipes.recipe import Recipe, run_train, train_config
    from physviz.train.config import bundled_checkpoint

    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    work, name, steps, k = Path(argv[0]), argv[1], int(argv[2]), int(argv[3])
    gradient = argv[4] if len(argv) > 4 else "last"
    lr = float(argv[5]) if len(argv) > 5 else 1e-4
    recipe = Recipe.load("bundled")
    recipe.eval_ensemble = 1
    if steps > 0:
        cfg = train_config(recipe, work)
        cfg.update({"model": {"init_from": "bundled"}, "steps": steps, "seed": 1, "valid_every": 0,
                    "checkpoint_every": 100, "rollout": {"steps": k, "gradient": gradient},
                    "optimizer": {**cfg["optimizer"], "lr": lr, "warmup_steps": 20}})
        final = run_train(cfg, work / "rollout" / name)
    else:
        final = bundled_checkpoint()
    results = evaluate_all(recipe, work, load_model(final), progress=False)["skill"]
    summary = {s: {p: {m: r[p][m] for m in ("one_step", "rollout_10", "rollout_30")} for p in ("model", "persistence")}
               for s, r in results.items()}
    out = {"name": name, "steps": steps, "rollout_steps": k, "gradient": gradient, "lr": lr, "skill": summary}
    (work / "rollout").mkdir(parents=True, exist_ok=True)
    (work / "rollout" / f"{name}.json").write_text(json.dumps(out, indent=1))
    for s, r in summary.items():
        m = r["model"]
        print(f"{s:28s} {m['one_step']:.4f} {m['rollout_10']:.4f} {m['rollout_30']:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
