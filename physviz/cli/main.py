"""Argument parsing and dispatch for the `physviz` command."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from physviz import __version__
from physviz.errors import PhysvizError


def build_parser() -> argparse.ArgumentParser:
    """The `physviz` parser with one subparser per subcommand."""
    from physviz.cli import info, kernelspec, pretrain, rollout, serve, simulate, train

    parser = argparse.ArgumentParser(
        prog="physviz",
        description="physviz: physics foundation models in JupyterLab. Fields as xarray, rollouts, spectra, fine-tuning.",
    )
    parser.add_argument("--version", action="version", version=f"physviz {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info.add_parser(sub)
    simulate.add_parser(sub)
    rollout.add_parser(sub)
    pretrain.add_parser(sub)
    kernelspec.add_parser(sub)
    serve.add_parser(sub)
    train.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (errors print one line, exit 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # physviz.train parses its own arguments (torchrun-compatible)
        from physviz.train.cli import main as train_main

        return train_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except PhysvizError as exc:
        print(f"physviz: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
