"""Ship a further-trained bundled model: bundle it, evaluate it on the held-out sets and rewrite MODEL_CARD.md.

Usage: python scripts/card_from_checkpoint.py WORKDIR CANDIDATE_DIR
WORKDIR is a `physviz pretrain --recipe bundled` workdir with eval/ (the held-out test sets,
`--stages corpus`) and, for the FNO columns, the FNO baselines in fno/ (`--stages fno`);
CANDIDATE_DIR is a training output folder (final.safetensors, metrics.jsonl) that continued the
shipped model, e.g. one of scripts/rollout_probe.py. The new checkpoint's metadata adds the leg's
steps and wall clock to the shipped model's; then the evaluate and card stages run on it.
"""
from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Bundle the candidate with the shipped model's history, evaluate it, write the card."""
    from physviz.model.checkpoint import load_model, read_model_info, save_model
    from physviz.model.pretrained import pretrained_path
    from physviz.recipes.pipeline import run_pipeline, stream_seconds
    from physviz.recipes.recipe import Recipe

    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    work, cand = Path(argv[0]), Path(argv[1])
    recipe = Recipe.load("bundled")
    shipped = pretrained_path()
    old_info = read_model_info(shipped)
    old = old_info["metadata"]
    leg = load_model(cand / "final.safetensors")
    leg_meta = dict(leg.metadata)
    meta = {k: v for k, v in leg_meta.items() if k not in ("hash",)}
    meta.update({"name": old["name"], "recipe": old["recipe"], "recipe_train": old["recipe_train"], "corpus": old["corpus"],
                 "steps": int(old["steps"]) + int(leg_meta.get("trained_steps", 0)),
                 "training_seconds": round(float(old["training_seconds"]) + stream_seconds(cand / "metrics.jsonl"), 1),
                 "recipe_finish": recipe.finish, "previous_hash": old_info["hash"]})
    save_model(leg, shipped, meta)
    run_pipeline(recipe, work, ("evaluate", "card"), card=Path("MODEL_CARD.md"), bundle_to=shipped)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
