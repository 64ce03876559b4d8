"""`physviz serve [TRUTH] [--prediction PRED]`: the views as a standalone web page (teaching demos without Jupyter).

Every JavaScript and CSS resource is served by this process itself; nothing comes from a CDN.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the `serve` subcommand."""
    p = sub.add_parser(
        "serve",
        help="serve the field explorer (and, with --prediction, the rollout scrubber and spectra) as a web page",
        description="Serve physviz's views on a local Panel server, offline. With no file, a built-in Taylor-Green "
        "sample is shown; with a prediction, the page has the rollout scrubber and spectrum comparer too.",
    )
    _arguments(p)
    p.set_defaults(func=run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", help="a field file or Well dataset folder (default: a built-in sample)")
    p.add_argument("--prediction", help="a rollout to compare with PATH (same grid, overlapping times)")
    p.add_argument("--trajectory", type=int, default=None,
                   help="trajectory of PATH that a one-trajectory prediction is compared with (default: the one "
                   "`physviz rollout` recorded, else the closest at the first shared time)")
    p.add_argument("--field", help="field shown first")
    p.add_argument("--split", default="train", help="split of a Well dataset folder (default train)")
    p.add_argument("--port", type=int, default=5006, help="port (default 5006; 0 picks a free one)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--allow-websocket-origin", action="append", default=[], metavar="HOST[:PORT]",
                   help="extra origin allowed to connect (repeatable), e.g. when served behind a proxy")
    p.add_argument("--show", action="store_true", help="open a browser tab")


def _open(path: str | None, split: str) -> Any:
    if path is None:
        from physviz.fields.samples import sample_dataset

        return sample_dataset(trajectories=4, n=128, steps=40)
    from physviz.fields.open import open_fields

    return open_fields(path, split=split)


def pair_prediction(truth: Any, pred: Any, trajectory: int | None = None) -> tuple[Any, Any]:
    """Truth and prediction made comparable: a one-trajectory prediction faces one trajectory of the truth.

    That trajectory is `trajectory` when given, else the one `physviz rollout` recorded in the
    prediction's attrs, else the one closest to the prediction at their first shared time. Any
    mismatch (trajectories, grid, fields, times) raises one PhysvizError naming what differs.
    """
    from physviz.errors import SchemaError
    from physviz.widgets.frames import align_rollout

    if "trajectory" in pred.dims and pred.sizes["trajectory"] == 1:
        pred = pred.isel(trajectory=0)
    n_truth = truth.sizes.get("trajectory", 1)
    if trajectory is not None and not 0 <= trajectory < n_truth:
        raise SchemaError(f"--trajectory {trajectory} is out of range: the truth has {n_truth} trajectories (0..{n_truth - 1}).")
    if "trajectory" in pred.dims:
        if pred.sizes["trajectory"] != n_truth:
            raise SchemaError(
                f"the prediction has {pred.sizes['trajectory']} trajectories but the truth has {n_truth}; "
                "give a prediction of one trajectory or of each."
            )
        if trajectory is not None and "trajectory" in truth.dims:
            truth, pred = truth.isel(trajectory=trajectory), pred.isel(trajectory=trajectory)
    elif "trajectory" in truth.dims:
        if trajectory is None:
            recorded = (pred.attrs.get("rollout") or {}).get("trajectory")
            trajectory = int(recorded) if recorded is not None and 0 <= int(recorded) < n_truth else closest_trajectory(truth, pred)
        truth = truth.isel(trajectory=trajectory)
    align_rollout(truth, pred)
    return truth, pred


def closest_trajectory(truth: Any, pred: Any) -> int:
    """The truth's trajectory nearest the prediction (summed squared difference at their first shared time)."""
    import numpy as np

    from physviz.widgets.frames import align_rollout

    errors = []
    for i in range(truth.sizes["trajectory"]):
        t, p, fields = align_rollout(truth.isel(trajectory=i), pred)
        first_t, first_p = t.isel(time=0), p.isel(time=0)
        errors.append(sum(float(np.sum((np.asarray(first_t[f].values, np.float64) - np.asarray(first_p[f].values, np.float64)) ** 2)) for f in fields))
    return int(np.argmin(errors))


def make_views(args: argparse.Namespace) -> Callable[[], list[tuple[str, Any]]]:
    """Open the files once; return a function building one session's views as (tab title, view)."""
    truth = _open(args.path, args.split)
    pair = None
    if args.prediction:
        pair = pair_prediction(truth, _open(args.prediction, args.split), getattr(args, "trajectory", None))

    def views() -> list[tuple[str, Any]]:
        from physviz.widgets.explorer import FieldExplorer

        tabs: list[tuple[str, Any]] = [("Explore", FieldExplorer(truth, field=args.field))]
        if pair is not None:
            from physviz.widgets.scrubber import RolloutScrubber

            scrubber = RolloutScrubber(*pair, field=args.field)
            tabs.append(("Rollout", scrubber))
            if not scrubber.error:
                tabs.append(("Spectra", scrubber.spectrum()))
        return tabs

    return views


def make_app(args: argparse.Namespace) -> Callable[[], Any]:
    """A function building one page (one set of views per browser session)."""
    import panel as pn

    from physviz.widgets.base import ensure_panel

    ensure_panel()
    views = make_views(args)

    def page() -> Any:
        return pn.Column(pn.pane.Markdown("## physviz"), pn.Tabs(*views(), dynamic=True))

    return page


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    os.environ["PANEL_INLINE"] = "true"
    import panel as pn

    page = make_app(args)
    origins = [f"{h}:{args.port}" for h in ("localhost", "127.0.0.1", args.address)] + list(args.allow_websocket_origin)
    print(f"physviz serve: http://{args.address}:{args.port}/ (Ctrl-C stops)", flush=True)
    pn.serve(
        {"/": page}, port=args.port, address=args.address, show=args.show, websocket_origin=sorted(set(origins)),
        title="physviz", threaded=False, print_url=False,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m physviz.cli.serve ...` (the same as `physviz serve ...`)."""
    from physviz.errors import PhysvizError

    parser = argparse.ArgumentParser(prog="physviz serve", description=__doc__)
    _arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except PhysvizError as exc:
        print(f"physviz: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
