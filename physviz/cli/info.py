"""`physviz info FILE`: what a field file holds, reading metadata only."""
from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the `info` subcommand."""
    p = sub.add_parser(
        "info",
        help="print format, dims, fields, boundary conditions and size of a field file",
        description="Print what a The Well / PDEBench HDF5 file, NetCDF/Zarr store or directory of Well files holds. "
        "Reads metadata only, so it is fast on large files.",
    )
    p.add_argument("path", help="file or directory to describe")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.add_argument("--split", default="train", choices=["train", "valid", "test"], help="split of a Well dataset directory")
    p.set_defaults(func=run)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def format_description(d: dict[str, Any]) -> str:
    """Human-readable text of `physviz.fields.describe` output."""
    lines = [
        f"path:       {d['path']}",
        f"format:     {d['format']}" + (f" ({d['files']} files)" if d["files"] > 1 else ""),
        f"dataset:    {d['dataset_name']}",
        f"size:       {_human(d['size_bytes'])}",
        "dims:       " + ", ".join(f"{k}={v}" for k, v in d["dims"].items()),
    ]
    for k, c in d["coords"].items():
        if "min" in c:
            lines.append(f"  {k:<9} {c['size']} points in [{c['min']:.6g}, {c['max']:.6g}]")
    lines.append("fields:")
    for name, f in d["fields"].items():
        lines.append(f"  {name:<20} ({', '.join(f['dims'])})  {f['dtype']}")
    bcs = d["boundary_conditions"]
    lines.append("boundary:   " + (", ".join(f"{k}: {v if isinstance(v, str) else '/'.join(v)}" for k, v in bcs.items()) or "none"))
    params = d["simulation_parameters"]
    if params:
        lines.append("parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Describe the file and print it."""
    from physviz.fields.info import describe

    d = describe(args.path, split=args.split)
    print(json.dumps(d, indent=2, default=str) if args.json else format_description(d))
    return 0
