"""`physviz kernelspec install [--user|--sys-prefix|--prefix DIR]`: a Jupyter kernel running this environment's Python.

The kernel spec shipped in the wheel (``share/jupyter/kernels/physviz``) names ``python``, which
Jupyter resolves to the server's own interpreter. This command writes the absolute path of the
interpreter physviz is installed in, so a JupyterLab (or JupyterHub) running from another
environment starts kernels here.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from physviz.errors import OptionError

KERNEL_NAME = "physviz"
DISPLAY_NAME = "Python (physviz)"
LOGOS = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")


def add_parser(sub: Any) -> None:
    """Register the `kernelspec` subcommand."""
    p = sub.add_parser(
        "kernelspec",
        help="install the physviz Jupyter kernel (this environment's Python) for JupyterLab",
        description="Install a Jupyter kernel spec that starts this environment's Python "
        f"({sys.executable}) with physviz, so that any JupyterLab or JupyterHub can run physviz notebooks.",
    )
    actions = p.add_subparsers(dest="kernelspec_command", metavar="ACTION")
    inst = actions.add_parser("install", help="install the kernel spec (default: for this user)",
                              description="Install the physviz kernel spec with jupyter_client's KernelSpecManager.")
    where = inst.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="into this user's Jupyter data dir (the default)")
    where.add_argument("--sys-prefix", action="store_true", help=f"into this environment ({sys.prefix})")
    where.add_argument("--prefix", default=None, metavar="DIR", help="into DIR/share/jupyter/kernels")
    inst.add_argument("--name", default=KERNEL_NAME, help=f"kernel name (default {KERNEL_NAME})")
    inst.add_argument("--display-name", default=None, help=f"name shown in the launcher (default {DISPLAY_NAME!r})")
    inst.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                      help="an environment variable of the kernel (repeatable)")
    inst.set_defaults(func=run)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def shipped_spec_dir() -> Path | None:
    """The kernel spec folder shipped with physviz: the source tree's, else the installed shared data."""
    here = Path(__file__).resolve().parents[2] / "kernels" / KERNEL_NAME
    installed = Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    for folder in (here, installed):
        if (folder / "kernel.json").is_file():
            return folder
    return None


def kernel_spec(display_name: str | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The kernel.json of this environment: its interpreter as an absolute path."""
    spec: dict[str, Any] = {}
    source = shipped_spec_dir()
    if source is not None:
        spec = json.loads((source / "kernel.json").read_text())
    spec["argv"] = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec["display_name"] = display_name or spec.get("display_name") or DISPLAY_NAME
    spec["language"] = "python"
    spec.setdefault("metadata", {"debugger": True})
    spec["env"] = {"PANEL_INLINE": "true", **spec.get("env", {}), **(env or {})}
    return spec


def _parse_env(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--env {item!r} is not KEY=VALUE.")
        out[key.strip()] = value
    return out


def install(name: str = KERNEL_NAME, user: bool = False, sys_prefix: bool = False, prefix: str | None = None,
            display_name: str | None = None, env: dict[str, str] | None = None) -> Path:
    """Install the kernel spec (user dir unless sys_prefix or prefix); return its folder."""
    from jupyter_client.kernelspec import KernelSpecManager, _is_valid_kernel_name

    if not _is_valid_kernel_name(name):
        raise OptionError(f"Kernel name {name!r} is not valid; use letters, digits, '.', '_' and '-' only.")
    if sum(bool(x) for x in (user, sys_prefix, prefix)) > 1:
        raise OptionError("Give at most one of --user, --sys-prefix or --prefix.")
    if sys_prefix:
        prefix = sys.prefix
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / name
        folder.mkdir()
        (folder / "kernel.json").write_text(json.dumps(kernel_spec(display_name, env), indent=1) + "\n")
        source = shipped_spec_dir()
        for logo in LOGOS:
            if source is not None and (source / logo).is_file():
                shutil.copy(source / logo, folder / logo)
        try:
            dest = KernelSpecManager().install_kernel_spec(
                str(folder), kernel_name=name, user=prefix is None, prefix=prefix)
        except OSError as exc:
            raise OptionError(f"Cannot write the kernel spec {name!r} ({exc.strerror or exc}); "
                              "try --user or --prefix DIR.") from None
    return Path(dest)


def run(args: argparse.Namespace) -> int:
    """Install the kernel spec and say where."""
    dest = install(name=args.name, user=args.user, sys_prefix=args.sys_prefix, prefix=args.prefix,
                   display_name=args.display_name, env=_parse_env(args.env))
    print(f"installed kernel spec {args.name!r} ({sys.executable}) in {dest}")
    return 0
