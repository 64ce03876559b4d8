"""The `physviz` command: `physviz info FILE`, and more subcommands as layers arrive."""
from __future__ import annotations

from physviz.cli.main import main

__all__ = ["main"]
