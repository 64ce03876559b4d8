"""`physviz train CONFIG.yaml [key.sub=value ...]`: the same as `python -m physviz.train`."""
from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the `train` subcommand (arguments are passed through to physviz.train's own parser)."""
    p = sub.add_parser(
        "train",
        help="train or fine-tune the transformer from a YAML config (alone or under torchrun)",
        description="Runs `python -m physviz.train`: CONFIG.yaml, then key.sub=value overrides; --check validates only, "
        "--print-config prints the resolved config.",
        add_help=False,
    )
    p.add_argument("args", nargs=argparse.REMAINDER, help="CONFIG.yaml [key.sub=value ...] [--check] [--print-config]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Hand over to physviz.train.cli.main."""
    from physviz.train.cli import main

    return main(args.args)
