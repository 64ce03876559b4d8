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
        "DIR/data/{train,valid,test}/NAME.hdf5 and DIR/stats.yaml. `physviz simulate --list` shows the "
        "systems and their parameters.",
    )
    p.add_argument("system", nargs="?", help=f"one of: {SYSTEM_HELP}")
    p.add_argument("--list", action="store_true", help="list systems, regimes and parameters, then exit")
    p.add_argument("-n", "--trajectories", type=int, default=8, help="number of trajectories (default 8)")
    p.add_argument("-r", "--resolution", type=int, default=None, help="grid points per axis (default: the system's)")
    p.add_argument("-t", "--steps", type=int, default=None, help="saved frames per trajectory, the initial one included")
    p.add_argument("-s", "--seed", type=int, default=0, help="seed; trajectory i depends only on (seed, i)")
    p.add_argument("-o", "--out", required=False, help="output directory (a Well dataset folder)")
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


def _parse_params(items: list[str]) -> dict[str, Any]:
    import yaml

    from physviz.errors import ParameterError

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ParameterError(f"--param {item!r} is not KEY=VALUE.")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def list_systems() -> str:
    """Systems with their regimes and parameters (defaults)."""
    from dataclasses import fields

    from physviz.fields.simulate.base import SimConfig
    from physviz.fields.simulate.run import SYSTEMS, solver_class

    run_fields = {f.name for f in fields(SimConfig)}
    lines = []
    for name in SYSTEMS:
        cls = solver_class(name)
        cfg = cls.config_cls()
        own = [f"{f.name}={getattr(cfg, f.name)!r}" for f in fields(cfg) if f.name not in run_fields]
        lines.append(f"{name:16s} {cls.ndim}D, resolution {cfg.resolution}, dt_save {cls.default_dt_save}: {', '.join(own)}")
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
    params = _parse_params(args.param)
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
    params["dtype"] = "float64" if args.float64 else "float32"
    params["device"] = args.device
    ds = simulate(
        args.system,
        args.trajectories,
        seed=args.seed,
        out=args.out,
        batch_size=args.batch_size,
        progress=not args.quiet,
        splits=splits,  # type: ignore[arg-type]
        **params,
    )
    fields = ", ".join(str(v) for v in ds.data_vars if len(ds[v].dims) > 2)
    print(
        f"wrote {ds.attrs['dataset_name']}: {ds.sizes['trajectory']} trajectories x {ds.sizes['time']} frames "
        f"of {'x'.join(str(ds.sizes[d]) for d in ('x', 'y', 'z') if d in ds.sizes)} ({fields}) "
        f"in {ds.attrs['source']['solver_steps']} solver steps to {args.out}"
    )
    return 0
