"""`physviz simulate SYSTEM ...`: run a built-in simulator and write Well train/valid/test splits."""
from __future__ import annotations

import argparse
from typing import Any

SYSTEM_HELP = "navier_stokes, shallow_water, fitzhugh_nagumo, gray_scott, gray_scott_3d, euler"


def add_parser(sub: Any) -> None:
    """Register the `simulate` subcommand."""
    p = sub.add_parser(
        "simulate",
        help="run a built-in PDE simulator and write Well-format train/valid/test splits with stats.yaml",
        description="Run a built-in, seeded PyTorch simulator and write The Well's layout: "
        "DIR/data/{train,valid,test}/NAME.hdf5 and DIR/stats.yaml. A DIR that already holds this dataset is "
        "refused unless --overwrite; one that holds another dataset always (a Well folder holds one dataset). "
        "`physviz simulate --list` shows the systems and their parameters.",
    )
    p.add_argument("system", nargs="?", help=f"one of: {SYSTEM_HELP}")
    p.add_argument("--list", action="store_true", help="list systems, regimes and parameters, then exit")
    p.add_argument("-n", "--trajectories", type=int, default=8, help="number of trajectories (default 8)")
    p.add_argument("-r", "--resolution", type=int, default=None, help="grid points per axis (default: the system's)")
    p.add_argument("-t", "--steps", type=int, default=None, help="saved frames per trajectory, the initial one included")
    p.add_argument("-s", "--seed", type=int, default=0, help="seed; trajectory i depends only on (seed, i)")
    p.add_argument("-o", "--out", required=False, help="output directory (a Well dataset folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the dataset already in -o DIR (checked before simulating; without it, refused)")
    p.add_argument("--regime", default=None, help="regime of the system (see --list)")
    p.add_argument("--dt-save", type=float, default=None, help="time between saved frames")
    p.add_argument("--cfl", type=float, default=None, help="Courant number of the automatic time step")
    p.add_argument("--dt", type=float, default=None, help="fixed solver step (refused if it breaks the CFL limit)")
    p.add_argument("--float64", action="store_true", help="simulate and store in float64")
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA when present), cpu, cuda:0 ...")
    p.add_argument("--batch-size", type=int, default=None, help="trajectories simulated together (default: all)")
    p.add_argument("--splits", default="0.8,0.1,0.1", help="train,valid,test fractions (default 0.8,0.1,0.1)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="a system parameter, e.g. -p viscosity=1e-4")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_params(system: str, items: list[str]) -> dict[str, Any]:
    """`-p KEY=VALUE` items as config values, typed by the system's config dataclass fields."""
    from dataclasses import fields
    from typing import get_type_hints

    from physviz.errors import ParameterError
    from physviz.fields.simulate.run import solver_class

    config_cls = solver_class(system).config_cls
    hints = get_type_hints(config_cls)
    known = [f.name for f in fields(config_cls)]
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"-p {item!r} is not KEY=VALUE (e.g. -p viscosity=1e-4).")
        if key not in hints:
            raise ParameterError(f"{system} has no parameter {key!r}; its parameters: {', '.join(known)}.")
        out[key] = _typed(system, key, text.strip(), hints[key])
    return out


def _typed(system: str, key: str, text: str, hint: Any) -> Any:
    """One parameter's text as its declared type (int, float, bool or str, each optionally None)."""
    import types
    import typing

    import yaml

    from physviz.errors import ParameterError

    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    args = typing.get_args(hint) if union else ()
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if optional and text.lower() in ("none", "null", "~", ""):
        return None
    if base is str:
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
        elif base is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            number = float(value)
            if number.is_integer():
                return int(number)
        elif base is float:
            if not isinstance(value, bool):
                return float(value)  # YAML 1.1 reads 1e-4 as a string; float() reads it
        else:
            return value
    except (TypeError, ValueError):
        pass
    kind = {int: "a whole number", float: "a number", bool: "true or false"}.get(base, str(base))
    raise ParameterError(f"-p {key}={text!r}: {system}'s {key} must be {kind}{' or none' if optional else ''}.")


def list_systems() -> str:
    """Every system with its regimes (aliases too) and its parameters with their defaults."""
    from dataclasses import fields

    from physviz.fields.simulate.base import SimConfig
    from physviz.fields.simulate.run import SYSTEMS, regimes, solver_class

    run_fields = {f.name for f in fields(SimConfig)}
    lines = []
    for name in SYSTEMS:
        cls = solver_class(name)
        cfg = cls.config_cls()
        lines.append(f"{name}: {cls.ndim}D, resolution {cfg.resolution}, steps {cfg.steps}, dt_save {cls.default_dt_save}")
        names, aliases = regimes(name)
        if names:
            default = getattr(cfg, "regime", None)
            shown = []
            for r in names:
                also = [a for a, target in aliases.items() if target == r]
                shown.append(r + (" (default)" if r == default else "") + (f" (alias {', '.join(also)})" if also else ""))
            lines.append(f"  regimes: {', '.join(shown)}")
        own = [f"{f.name}={getattr(cfg, f.name)!r}" for f in fields(cfg) if f.name not in run_fields | {"regime"}]
        lines.append(f"  parameters: {', '.join(own)}")
    shared = [f"{f.name}={getattr(SimConfig(), f.name)!r}" for f in fields(SimConfig)]
    lines.append(f"every system also takes: {', '.join(shared)} (-p KEY=VALUE sets any parameter)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Simulate and write the splits."""
    from physviz.errors import ParameterError

    if args.list:
        print(list_systems())
        return 0
    if not args.system or not args.out:
        raise ParameterError("physviz simulate needs a SYSTEM and -o DIR (or --list).")
    from physviz.fields.simulate.run import simulate

    try:
        splits = tuple(float(s) for s in args.splits.split(","))
    except ValueError as exc:
        raise ParameterError(f"--splits {args.splits!r} is not three comma-separated numbers.") from exc
    params = parse_params(args.system, args.param)
    for key, value in (
        ("resolution", args.resolution),
        ("steps", args.steps),
        ("regime", args.regime),
        ("dt_save", args.dt_save),
        ("cfl", args.cfl),
        ("dt", args.dt),
    ):
        if value is not None:
            params[key] = value
    if args.float64:
        params["dtype"] = "float64"
    if args.device != "auto":
        params["device"] = args.device
    ds = simulate(
        args.system,
        args.trajectories,
        seed=args.seed,
        out=args.out,
        batch_size=args.batch_size,
        progress=not args.quiet,
        splits=splits,  # type: ignore[arg-type]
        overwrite=args.overwrite,
        **params,
    )
    fields = ", ".join(str(v) for v in ds.data_vars if len(ds[v].dims) > 2)
    print(
        f"wrote {ds.attrs['dataset_name']}: {ds.sizes['trajectory']} trajectories x {ds.sizes['time']} frames "
        f"of {'x'.join(str(ds.sizes[d]) for d in ('x', 'y', 'z') if d in ds.sizes)} ({fields}) "
        f"in {ds.attrs['source']['solver_steps']} solver steps to {args.out}"
    )
    return 0
