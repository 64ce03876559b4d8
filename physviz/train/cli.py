"""`python -m physviz.train CONFIG.yaml [key.sub=value ...]`: one process or one torchrun worker."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from physviz.errors import PhysvizError
from physviz.train.config import TrainConfig, TrainConfigError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m physviz.train",
        description="Train or fine-tune the physviz transformer from a YAML config; run it alone or under torchrun.",
    )
    parser.add_argument("config", type=Path, help="the YAML train config")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value",
                        help="settings changed from the file, values parsed as YAML (e.g. optimizer.lr=1e-4 data.0.weight=2)")
    parser.add_argument("--check", action="store_true", help="validate the config and the data, then exit")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML, then exit")
    return parser


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0") or 0)


def _error(exc: BaseException) -> None:
    if _rank() == 0:
        print(f"physviz.train: error: {exc}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the config (exit 2 on a config error, before any work), then train; return the exit status."""
    args = build_parser().parse_intermixed_args(argv)  # options may come after the overrides
    try:
        cfg = TrainConfig.from_yaml(args.config, list(args.overrides))
        cfg.validate(check_data=True)
    except PhysvizError as exc:
        _error(exc)
        return 2
    if args.print_config:
        print(cfg.resolved().to_yaml(), end="")
        return 0
    if args.check:
        return 0
    from physviz.train.loop import run

    try:
        run(cfg)
    except TrainConfigError as exc:
        _error(exc)
        return 2
    except PhysvizError as exc:
        _error(exc)
        return 1
    return 0
