"""The server extension answers under a non-root base URL and refuses unauthenticated requests."""
from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

import physviz

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"physviz.server": True}}}


@pytest.fixture
def jp_base_url():
    return "/user/alice/"  # as a JupyterHub single-user server is started


async def test_version_under_base_url(jp_fetch, jp_base_url):
    response = await jp_fetch("physviz", "api", "version")
    assert response.code == 200
    assert response.effective_url.split("?")[0].endswith("/user/alice/physviz/api/version")
    assert json.loads(response.body)["version"] == physviz.__version__


async def test_request_without_token_is_refused(jp_fetch):
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("physviz", "api", "version", headers={"Authorization": ""})
    assert e.value.code == 403
