"""`physviz pretrain --recipe bundled`: make the corpus, train, evaluate against baselines, bundle, write the card."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the `pretrain` subcommand."""
    from physviz.recipes.pipeline import STAGES

    p = sub.add_parser(
        "pretrain",
        help="pretrain the bundled model from the built-in simulators, evaluate it and write its model card",
        description="Runs the recipe's stages in order (corpus, train, fno, evaluate, bundle, transfer, card); each "
        "skips what is already in the work directory, so an interrupted run resumes. Training runs "
        "`python -m physviz.train`. The card stage writes the card from WORKDIR/results.json, so "
        "`--workdir docs/model_card --stages card` rewrites MODEL_CARD.md from the stored results.",
    )
    p.add_argument("--recipe", default="bundled", help="recipe name (physviz/recipes/configs/NAME.yaml) or YAML path")
    p.add_argument("--workdir", type=Path, default=Path("pretrain"), help="where corpus, runs and results go")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument("--card", type=Path, default=Path("MODEL_CARD.md"), help="model card to write")
    p.add_argument("--bundle-to", type=Path, default=None, help="checkpoint the bundle stage writes and evaluate/card read (default: WORKDIR/bundle/; "
                   "physviz/model/weights/physviz-tiny.safetensors ships it)")
    p.add_argument("--fno-seconds", type=float, default=None, help="FNO budget in total (default: the model's training time)")
    p.add_argument("--fno-workers", type=int, default=1, help="FNO baselines trained at once, each in its own process "
                   "with an equal share of the CPU threads (default 1)")
    p.add_argument("--fno-systems", default=None, help="comma-separated datasets whose FNO baselines to train, in "
                   "that order (default: all); each still gets its share of the whole budget")
    p.add_argument("--transfer-workers", type=int, default=1, help="transfer fine-tunes trained at once, each in "
                   "its own process with an equal share of the CPU threads (default 1; 2 on two cores trains ~1.3x faster)")
    p.add_argument("--transfer-sizes", default=None, help="comma-separated fine-tuning set sizes the transfer stage "
                   "runs and reports (default: all of the recipe's), e.g. 1,2,4,8 for the floor's sizes in one sitting")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", help="train config overrides KEY=VALUE passed to physviz.train")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the pipeline."""
    from physviz.errors import OptionError
    from physviz.recipes.pipeline import STAGES, run_pipeline
    from physviz.recipes.recipe import Recipe

    recipe = Recipe.load(args.recipe)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise OptionError(f"Unknown stage(s) {unknown}; stages are {list(STAGES)}.")
    run_pipeline(recipe, args.workdir.resolve(), stages, card=args.card, bundle_to=args.bundle_to,
                 fno_seconds=args.fno_seconds, overrides=args.overrides, progress=not args.quiet,
                 fno_workers=args.fno_workers, transfer_workers=args.transfer_workers,
                 transfer_sizes=_sizes(args.transfer_sizes),
                 fno_systems=[n.strip() for n in args.fno_systems.split(",") if n.strip()] if args.fno_systems else None)
    return 0


def _sizes(text: str | None) -> list[int] | None:
    """`--transfer-sizes 1,2,4`: the sizes as integers (None when not given)."""
    from physviz.errors import OptionError

    if text is None:
        return None
    try:
        return [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        raise OptionError(f"--transfer-sizes takes comma-separated whole numbers, not {text!r}.") from None
