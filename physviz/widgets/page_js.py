"""Panel's JavaScript once per browser page, not once per kernel.

`pn.extension()` publishes Panel's JavaScript (BokehJS, Panel's models, the PyViz comm manager) as
outputs of the cell that first calls it, and later calls in the same kernel publish nothing. A page
that connects to a running kernel later (the notebook reopened in a new tab, a reloaded page) never
gets it: every Panel output there stays empty, with only the console warning "Unable to run Panel
code because Bokeh or Panel library is missing".

Each JupyterLab page talks to the kernel through its own connection, which names itself in the
``session`` field of every message header. The kernel keeps the sessions that have Panel's
JavaScript; a cell run from any other page publishes the same outputs `pn.extension` publishes
(inline, no CDN), each script guarded so that a page that already has Bokeh and Panel of this version
(or the PyViz comm manager) runs nothing twice.

Upstream versions: it captures what ``panel.io.notebook.load_notebook(inline=True)`` publishes
(three display outputs: Panel's notebook CSS, the autoload script under ``LOAD_MIME``, the comm
manager script) and reads ipykernel's ``kernel.get_parent()``; checked on the versions in
``physviz.widgets.comm_flush.CHECKED_ON``, and tests/widgets/test_widgets_views.py fails when the
outputs change shape.
"""
from __future__ import annotations

import json
from typing import Any

LOAD_MIME = "application/vnd.holoviews_load.v0+json"
JS_MIME = "application/javascript"

# Client sessions (one per page's connection to this kernel) known to have Panel's JavaScript.
_LOADED: set[str] = set()
_OUTPUTS: list[dict[str, Any]] = []


def client() -> tuple[str, str] | None:
    """(session, msg_type) of the message this kernel is answering, or None outside a Jupyter kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None or not hasattr(kernel, "get_parent"):
        return None
    header = (kernel.get_parent() or {}).get("header") or {}
    session = header.get("session")
    return (str(session), str(header.get("msg_type", ""))) if session else None


def _guarded(js: str, loaded: str) -> str:
    """`js`, run in the page's global scope only when the JavaScript condition `loaded` is false."""
    code = json.dumps(js).replace("</", "<\\/")
    return f"(function () {{ if ({loaded}) {{ return; }} (0, eval)({code}); }})();"


def _have_panel(version: str) -> str:
    """A JavaScript condition: the page has BokehJS `version` with Panel's models."""
    v = json.dumps(version)
    return (f"(function () {{ var B = window.Bokeh; var b = B && (B.version === {v} ? B : (B.versions && B.versions.get({v})));"
            f" return !!(b && b.Panel); }})()")


HAVE_COMM_MANAGER = "!!(window.PyViz && window.PyViz.comm_manager)"


def outputs() -> list[dict[str, Any]]:
    """The display outputs that give a fresh page Panel's JavaScript and CSS (what pn.extension publishes, guarded)."""
    if _OUTPUTS:
        return _OUTPUTS
    import bokeh
    import IPython.display as display
    from panel.io.notebook import load_notebook
    from pyviz_comms import JupyterCommManager

    captured: list[dict[str, Any]] = []
    publish = display.publish_display_data
    display.publish_display_data = lambda data, *a, **kw: captured.append(dict(data))
    try:
        load_notebook(inline=True, reloading=False)
    finally:
        display.publish_display_data = publish
    result = []
    for data in captured:
        if LOAD_MIME in data:
            js = data[LOAD_MIME]
            loaded = HAVE_COMM_MANAGER if JupyterCommManager.js_manager in js else _have_panel(bokeh.__version__)
            js = _guarded(js, loaded)
            result.append({JS_MIME: js, LOAD_MIME: js})
        else:
            result.append(data)
    _OUTPUTS[:] = result
    return _OUTPUTS


def mark_loaded() -> None:
    """Record that the page this kernel is answering has Panel's JavaScript (pn.extension just published it)."""
    who = client()
    if who is not None:
        _LOADED.add(who[0])


def ensure_loaded() -> bool:
    """Publish Panel's JavaScript into the running cell if its page has not had it from this kernel; True if it did.

    A message from a page's Panel output (a click: a comm message) shows that page has it already.
    """
    who = client()
    if who is None or who[0] in _LOADED:
        return False
    session, kind = who
    _LOADED.add(session)
    if kind != "execute_request":
        return False
    from IPython.display import publish_display_data

    for data in outputs():
        publish_display_data(data)
    return True
