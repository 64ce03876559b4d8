"""Tornado handlers of the physviz REST API; thin, authenticated, XSRF-respecting."""
from __future__ import annotations

import json
import sys
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

import physviz


class VersionHandler(APIHandler):
    """GET /physviz/api/version: what physviz is installed in this server's environment."""

    @web.authenticated
    def get(self) -> None:
        self.finish(json.dumps({"version": physviz.__version__, "python": sys.executable}))


def setup_handlers(web_app: Any) -> None:
    """Add physviz routes under the server's base_url (so /user/NAME/ works under JupyterHub)."""
    base = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [(url_path_join(base, "physviz", "api", "version"), VersionHandler)])
