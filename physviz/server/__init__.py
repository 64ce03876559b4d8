"""The Jupyter server extension: a REST API for physviz jobs under the server's base URL.

Enabled by ``etc/jupyter/jupyter_server_config.d/physviz.json`` (installed with the package).
Settings, in ``jupyter_server_config.py`` or on the command line::

    c.PhysvizServer.job_store = "/path/jobs.sqlite"   # default: $PHYSVIZ_JOB_STORE or the Jupyter data dir
    c.PhysvizServer.stream_interval = 0.5             # seconds between reads of a log or metrics stream
    c.PhysvizServer.status_interval = 2.0             # least seconds between asking a backend for a job's state

See :mod:`physviz.server.handlers` for the routes. Never imports torch.
"""
from __future__ import annotations

from typing import Any

from traitlets import Float, Unicode
from traitlets.config import Configurable


class PhysvizServer(Configurable):
    """Settings of the physviz server extension."""

    job_store = Unicode(
        None, allow_none=True, config=True,
        help="SQLite job store the REST API reads (default: $PHYSVIZ_JOB_STORE, else <jupyter data dir>/physviz/jobs.sqlite).",
    )
    stream_interval = Float(0.5, config=True, help="Seconds between reads of new text in a job's log or metrics stream.")
    status_interval = Float(
        2.0, config=True,
        help="Least seconds between asking a job's backend (squeue, SSH) for its state while streaming.",
    )


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Tell Jupyter Server where the extension lives."""
    return [{"module": "physviz.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register physviz's handlers, joined with the server's base_url."""
    from physviz.server.handlers import setup_handlers

    settings = PhysvizServer(parent=serverapp)
    setup_handlers(serverapp.web_app, job_store=settings.job_store, stream_interval=settings.stream_interval,
                   status_interval=settings.status_interval)
    serverapp.log.info("physviz server extension loaded under %sphysviz/api/", serverapp.base_url)
