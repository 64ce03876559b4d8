"""`physviz rollout TRUTH -o PRED`: roll a model out from one trajectory of TRUTH and write the prediction."""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the `rollout` subcommand."""
    p = sub.add_parser(
        "rollout",
        help="roll the bundled (or a saved) model out on a field file and write the prediction for `physviz serve`",
        description="Open TRUTH, take CONTEXT frames of one trajectory before frame START, predict STEPS frames "
        "autoregressively and write them to PRED (a Well HDF5 file, written atomically). "
        "`physviz serve TRUTH --prediction PRED` then compares them.",
    )
    p.add_argument("truth", help="a field file or Well dataset folder")
    p.add_argument("-o", "--out", required=True, metavar="PRED", help="prediction file to write (Well HDF5)")
    p.add_argument("--model", default=None, metavar="PATH", help="a model saved by physviz (default: the bundled one)")
    p.add_argument("--trajectory", type=int, default=0, help="trajectory of TRUTH to roll out from (default 0)")
    p.add_argument("--steps", type=int, default=None,
                   help="frames to predict (default: every frame of TRUTH after the context)")
    p.add_argument("--context", type=int, default=None, help="context frames (default: the model's)")
    p.add_argument("--start", type=int, default=None, help="time index of the first predicted frame (default: after the context)")
    p.add_argument("--fields", default=None, help="comma-separated fields to roll out (default: every field over time)")
    p.add_argument("--map", action="append", default=[], metavar="NAME=MODEL_NAME", dest="field_map",
                   help="read field NAME of TRUTH as the model's MODEL_NAME (repeatable), e.g. --map concentration_A=A")
    p.add_argument("--split", default="train", help="split of a Well dataset folder (default train)")
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA when present), cpu, cuda:0 ...")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def one_trajectory(ds: Any, trajectory: int) -> Any:
    """Trajectory `trajectory` of ds (ds itself when it has no trajectory dim and 0 is asked for)."""
    from physviz.errors import ParameterError

    n = ds.sizes.get("trajectory", 1)
    if not 0 <= trajectory < n:
        raise ParameterError(f"--trajectory {trajectory} is out of range: the truth has {n} trajectories (0..{n - 1}).")
    return ds.isel(trajectory=trajectory) if "trajectory" in ds.dims else ds


def parse_field_map(items: list[str]) -> dict[str, str]:
    """--map NAME=MODEL_NAME options as a {dataset name: model name} mapping."""
    from physviz.errors import ParameterError

    out: dict[str, str] = {}
    for item in items:
        name, sep, model_name = item.partition("=")
        if not sep or not name.strip() or not model_name.strip():
            raise ParameterError(f"--map {item!r}: give NAME=MODEL_NAME, e.g. --map concentration_A=A.")
        out[name.strip()] = model_name.strip()
    return out


def predict(model: Any, truth: Any, args: argparse.Namespace) -> Any:
    """physviz.rollout of the chosen trajectory, the trajectory recorded in the prediction's attrs."""
    import physviz
    from physviz.errors import ParameterError
    from physviz.model.autoregressive import plan_rollout

    ds = one_trajectory(truth, args.trajectory)
    field_map = parse_field_map(args.field_map)
    fields = [f.strip() for f in args.fields.split(",") if f.strip()] if args.fields else None
    steps = args.steps
    if steps is None:
        plan = plan_rollout(model, ds, 1, args.context, args.start, fields, field_map=field_map)
        steps = ds.sizes["time"] - plan.start
        if steps < 1:
            raise ParameterError(
                f"the truth has {ds.sizes['time']} frames, all of them context (start={plan.start}, "
                f"context={plan.context}); a rollout to compare needs a frame after them (or pass --steps)."
            )
    pred = physviz.rollout(model, ds, steps, context=args.context, start=args.start, fields=fields,
                           device=args.device, field_map=field_map, progress=not args.quiet)
    pred.attrs["rollout"] = {**pred.attrs["rollout"], "trajectory": int(args.trajectory)}
    return pred


def run(args: argparse.Namespace) -> int:
    """Open, predict, write."""
    import physviz
    from physviz.errors import UnknownFieldError
    from physviz.fields import to_well
    from physviz.model.inputs import resolve_device
    from physviz.model.pretrained import pretrained_path

    args.device = str(resolve_device(args.device))  # a device this machine lacks is one line, not a torch error
    truth = physviz.open_fields(args.truth, split=args.split)
    model = physviz.load_model(args.model if args.model else pretrained_path("bundled"))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pred = predict(model, truth, args)
    except UnknownFieldError as exc:
        hint = "--map NAME=MODEL_NAME maps a name; " if "field_map=" in str(exc) else ""
        raise UnknownFieldError(f"{exc} (Here: {hint}--fields NAME,NAME picks the fields to roll out.)") from None
    for said in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)):  # once, one line
        hint = " (Here: --map NAME=MODEL_NAME maps a name.)" if "field_map" in said else ""
        print(f"warning: {said}{hint}", file=sys.stderr)
    path = to_well(pred, args.out, stats=False)
    times = pred["time"].values
    print(f"wrote {path}: {pred.sizes['time']} predicted frames (t={times[0]:.6g} .. {times[-1]:.6g}) of "
          f"{', '.join(map(str, pred.data_vars))} from trajectory {args.trajectory} of {args.truth}")
    return 0
