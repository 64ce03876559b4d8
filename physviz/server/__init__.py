"""The Jupyter server extension: a REST API under the server's base URL (jobs arrive with issue 9)."""
from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Tell Jupyter Server where the extension lives."""
    return [{"module": "physviz.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register physviz's handlers, joined with the server's base_url."""
    from physviz.server.handlers import setup_handlers

    setup_handlers(serverapp.web_app)
    serverapp.log.info("physviz server extension loaded")
