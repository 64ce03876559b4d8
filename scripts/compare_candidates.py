"""Candidate models at equal CPU time on a few corpus systems, judged by held-out one-step and 10-step VRMSE.

Each candidate is a physviz.train model section (AViT at patch 8 as bundled, the same with the change
predicted in units of the context's step and the stem's norm floor (bundled_gen2.yaml's options), AViT at
patch 4, a tiny Walrus); all train from scratch on the same corpus datasets with the bundled
recipe's settings. Equal time: a short calibration run of each measures its seconds per
step, and its main run gets as many steps as fit in ``--seconds``. The held-out test sets (other seeds) then give one-step and mean 10-step rollout VRMSE, and
the model card's zero-shot sets (physics outside the corpus) one-step VRMSE against persistence.

    python scripts/compare_candidates.py WORKDIR [--seconds 1800] [--systems a,b,c] [--candidates x,y]
    python scripts/compare_candidates.py WORKDIR --toy   # a minute: one small system, a few steps each

Writes WORKDIR/candidates.json and prints a Markdown table. Reruns reuse the corpus and finished runs.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

CANDIDATES: dict[str, dict[str, Any]] = {
    "avit_p8": {"preset": "tiny", "overrides": {"n_spatial_dims": 3, "context_frames": 4, "delta_prediction": True,
                                               "jitter": True, "refine_width": 32}},
    "avit_p8_ctx": {"preset": "tiny", "overrides": {"n_spatial_dims": 3, "context_frames": 4, "delta_prediction": True,
                                                   "jitter": True, "refine_width": 32, "step_scale": "context",
                                                   "norm_floor": 0.1}},
    "avit_p4": {"preset": "tiny", "overrides": {"n_spatial_dims": 3, "context_frames": 4, "delta_prediction": True,
                                               "jitter": True, "refine_width": 32, "patch_size": 4}},
    "walrus_tiny": {"family": "walrus", "preset": "tiny"},
}
SYSTEMS = ["navier_stokes_decaying", "shallow_water_dam_break", "gray_scott_spots"]


def _train(cfg: dict[str, Any], out: Path) -> tuple[Path, float]:
    """physviz.train in this process; the final model and the wall-clock seconds per step of its logged steps."""
    from physviz.train.loop import run
    from physviz.train.metrics import read_metrics

    final = out / "final.safetensors"
    if not final.exists():
        run({**cfg, "output_dir": str(out), "progress": False})
    recs = [r for r in read_metrics(out / "metrics.jsonl") if r.get("kind") == "train" and "time" in r]
    span = recs[-1]["time"] - recs[0]["time"] if len(recs) > 1 else 0.0
    per_step = span / max(recs[-1]["step"] - recs[0]["step"], 1) if len(recs) > 1 else float("nan")
    return final, per_step


def compare(workdir: Path, seconds: float, systems: list[str], names: list[str], *, calibration_steps: int = 6,
            corpus_scale: float = 1.0, eval_trajectories: int = 8, eval_steps: int = 16,
            tokens: int | None = None) -> dict[str, Any]:
    """Train each candidate for `seconds` on `systems` and evaluate it on their test sets; the results by candidate."""
    from physviz.model.checkpoint import load_model
    from physviz.recipes.corpus import make_corpus
    from physviz.recipes.evaluate import evaluate, live_trajectories, load_eval, model_predictor, persistence
    from physviz.recipes.recipe import Recipe, train_config
    from physviz.recipes.zero_shot import evaluate_zero_shot, zero_shot_files

    recipe = Recipe.load("bundled")
    recipe.only, recipe.corpus_scale = systems, corpus_scale
    recipe.eval_trajectories, recipe.eval_steps = eval_trajectories, eval_steps
    make_corpus(recipe, workdir, progress=False)
    base = train_config(recipe, workdir)
    base.update(checkpoint_every=0, valid_every=0, log_every=1)
    if tokens:
        base["batch"] = {"tokens": tokens}
    tests = {s: load_eval(workdir / "eval" / f"{s}.hdf5") for s in systems}
    out: dict[str, Any] = {"seconds": seconds, "systems": systems, "candidates": {}}
    for name in names:
        cfg = copy.deepcopy(base)
        cfg["model"] = copy.deepcopy(CANDIDATES[name])
        _, per_step = _train({**cfg, "steps": calibration_steps, "optimizer": {**cfg["optimizer"], "warmup_steps": 1}},
                             workdir / "candidates" / f"{name}_calibrate")
        steps = max(calibration_steps, int(seconds / per_step))
        cfg["steps"] = steps
        cfg["optimizer"] = {**cfg["optimizer"], "warmup_steps": min(cfg["optimizer"].get("warmup_steps", 0), steps // 10)}
        t0 = time.perf_counter()
        final, _ = _train(cfg, workdir / "candidates" / name)
        model = load_model(final)
        row: dict[str, Any] = {"steps": steps, "seconds_per_step": per_step, "train_seconds": time.perf_counter() - t0,
                               "parameters": sum(p.numel() for p in model.parameters()), "skill": {}}
        for system, (_, fields, bcs, data) in tests.items():
            data = data[live_trajectories(data, start=recipe.context)]
            k = min(10, data.shape[1] - recipe.context)
            skill = evaluate(model_predictor(model, fields, bcs), data, recipe.context, k, fields)
            base_skill = evaluate(persistence, data, recipe.context, k, fields)
            row["skill"][system] = {"one_step": skill.one_step, "rollout_10": skill.mean_rollout(k),
                                    "persistence_one_step": base_skill.one_step,
                                    "persistence_rollout_10": base_skill.mean_rollout(k)}
        # physics outside the corpus (the card's zero-shot sets): one-step against persistence
        zero = evaluate_zero_shot(model, zero_shot_files(recipe.zero_shot), recipe.context, 10)
        row["zero_shot"] = {k: {"one_step": v["model"]["one_step"], "persistence_one_step": v["persistence"]["one_step"]}
                            for k, v in zero["systems"].items()}
        out["candidates"][name] = row
    (workdir / "candidates.json").write_text(json.dumps(out, indent=1))
    return out


def table(results: dict[str, Any]) -> str:
    """A Markdown table: one row per candidate and system."""
    lines = ["| candidate | steps | system | one-step | 10-step | persistence one-step | persistence 10-step |",
             "|---|---|---|---|---|---|---|"]
    for name, row in results["candidates"].items():
        for system, s in row["skill"].items():
            lines.append(f"| {name} | {row['steps']} | {system} | {s['one_step']:.4f} | {s['rollout_10']:.4f} | "
                         f"{s['persistence_one_step']:.4f} | {s['persistence_rollout_10']:.4f} |")
    for name, row in results["candidates"].items():
        for system, s in row.get("zero_shot", {}).items():
            lines.append(f"| {name} | {row['steps']} | zero-shot {system} | {s['one_step']:.4f} | - | "
                         f"{s['persistence_one_step']:.4f} | - |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--seconds", type=float, default=1800.0, help="training wall clock per candidate")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated corpus datasets")
    ap.add_argument("--candidates", default=",".join(CANDIDATES), help=f"comma-separated, of {list(CANDIDATES)}")
    ap.add_argument("--toy", action="store_true", help="one small system, a few seconds per candidate (tests)")
    args = ap.parse_args(argv)
    names = [c for c in args.candidates.split(",") if c]
    unknown = [c for c in names if c not in CANDIDATES]
    if unknown:
        ap.error(f"unknown candidate(s) {unknown}; known: {list(CANDIDATES)}")
    systems = [s for s in args.systems.split(",") if s]
    if args.toy:
        res = compare(args.workdir, min(args.seconds, 3.0), ["fitzhugh_nagumo"], names, calibration_steps=2,
                      corpus_scale=0.01, eval_trajectories=1, eval_steps=8, tokens=512)
    else:
        res = compare(args.workdir, args.seconds, systems, names)
    print(table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
