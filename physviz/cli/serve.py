"""`physviz serve [TRUTH] [--prediction PRED]`: the views as a standalone web page (teaching demos without Jupyter).

Every JavaScript and CSS resource is served by this process itself; nothing comes from a CDN.
"""
from __future__ import annotations

import argparse
import os
import sys
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


def make_app(args: argparse.Namespace) -> Any:
    """A function building one page (one set of views per browser session)."""
    import panel as pn

    from physviz.widgets.base import ensure_panel

    ensure_panel()
    truth = _open(args.path, args.split)
    pred = _open(args.prediction, args.split) if args.prediction else None

    def page() -> Any:
        from physviz.widgets.explorer import FieldExplorer

        tabs = [("Explore", FieldExplorer(truth, field=args.field))]
        if pred is not None:
            from physviz.widgets.scrubber import RolloutScrubber

            scrubber = RolloutScrubber(truth, pred, field=args.field)
            tabs.append(("Rollout", scrubber))
            if not scrubber.error:
                tabs.append(("Spectra", scrubber.spectrum()))
        return pn.Column(pn.pane.Markdown("## physviz"), pn.Tabs(*tabs, dynamic=True))

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
