"""Ship a further-trained bundled model: bundle it, evaluate it on the held-out sets and rewrite MODEL_CARD.md.

Usage: python scripts/card_from_checkpoint.py WORKDIR CANDIDATE_DIR
WORKDIR holds eval/ (the recipe's held-out test sets, `--stages corpus`) and results.json with the
previous card's FNO entries, fno_seconds, fno_steps and transfer results; CANDIDATE_DIR is a training
output folder (final.safetensors, metrics.jsonl) that continued the shipped model, e.g. one of
scripts/rollout_probe.py. The new checkpoint's metadata adds the leg's steps and wall clock to the
shipped model's. The FNO columns are kept from results.json: the FNO files are not re-evaluated, which
is valid because the test sets are regenerated from the recipe's fixed seeds (same trajectories).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Bundle, evaluate, merge the FNO entries, write the card."""
    from physviz.model.checkpoint import load_model, read_model_info, save_model
    from physviz.model.pretrained import pretrained_path
    from physviz.train import pretrain as P

    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    work, cand = Path(argv[0]), Path(argv[1])
    recipe = P.Recipe.load("bundled")
    shipped = pretrained_path()
    old = read_model_info(shipped)["metadata"]
    leg = load_model(cand / "final.safetensors")
    leg_meta = dict(leg.metadata)
    seconds = P.stream_seconds(cand / "metrics.jsonl")
    meta = {k: v for k, v in leg_meta.items() if k not in ("hash",)}
    meta.update({"name": old["name"], "recipe": old["recipe"], "recipe_train": old["recipe_train"], "corpus": old["corpus"],
                 "steps": int(old["steps"]) + int(leg_meta.get("trained_steps", 0)),
                 "training_seconds": round(float(old["training_seconds"]) + seconds, 1),
                 "recipe_finish": recipe.finish, "previous_hash": read_model_info(shipped)["hash"]})
    save_model(leg, shipped, meta)
    results = json.loads((work / "results.json").read_text())
    fno = {name: row["fno"] for name, row in results["skill"].items() if "fno" in row}
    model = load_model(shipped)
    skill = P.evaluate_all(recipe, work, model, progress=True)
    for name, row in skill["skill"].items():
        if name in fno:
            row["fno"] = fno[name]
    results.update(skill)
    results["n_parameters"] = sum(p.numel() for p in model.parameters())
    results["note"] = "The numbers of MODEL_CARD.md's tables; FNO entries kept from the previous card's evaluation."
    P.write_results(work, results)
    P.run_pipeline(recipe, work, ("card",), card=Path("MODEL_CARD.md"), bundle_to=shipped, progress=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
