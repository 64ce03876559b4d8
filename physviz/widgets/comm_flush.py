"""Keep a notebook view's browser-to-kernel messages flowing after an acknowledgement is lost.

Panel's browser-side CommManager sends a batch of changes (a slider move), then holds every
later change in its ``_event_buffer`` (``_blocked`` set) until the kernel acknowledges the batch,
or until its ``timeout`` (5 s) has passed *and another change arrives*. When an acknowledgement
is lost (the kernel drops a batch that reaches it before the comm is open there, which happens
when JupyterLab's PyViz extension finds a busy kernel only on a retry), the moves made in the next
5 s sit in the buffer until the user touches a control again: the slider moves, the frame does
not. The script below, appended to every physviz view's output, runs once per page and sends such
a held buffer as soon as the timeout has passed, which is what Panel would do on the next change.

Upstream versions: it reads private fields of Panel's CommManager (``_blocked``, ``_event_buffer``,
``_timeout``, ``timeout``, ``process_events``) and Bokeh's ``Bokeh.documents``; it was checked on
the versions in ``CHECKED_ON``. The widgets extra in pyproject.toml sets lower bounds only
(panel>=1.4, bokeh>=3.4), so tests/widgets/test_widgets_views.py reads the installed Panel and
Bokeh bundles and fails when those fields change; on a page where they are missing the script does
nothing. How the lost acknowledgement was found: docs/widgets_comm_flush.md.
"""
from __future__ import annotations

from typing import Any

EXEC_MIME = "application/vnd.holoviews_exec.v0+json"
CHECKED_ON = "panel 1.9.4, bokeh 3.9.2, pyviz_comms 3.0.6"

# Idempotent per page; touches only CommManager roots that have the fields listed above.
FLUSH_JS = """
(function () {
  if (window.__physvizCommFlush) { return; }
  window.__physvizCommFlush = setInterval(function () {
    var docs = (window.Bokeh && window.Bokeh.documents) || [];
    for (var i = 0; i < docs.length; i++) {
      var roots = typeof docs[i].roots === "function" ? docs[i].roots() : [];
      for (var j = 0; j < roots.length; j++) {
        var m = roots[j];
        if (m && typeof m.process_events === "function" && m._blocked === true && m._event_buffer
            && m._event_buffer.length > 0 && typeof m._timeout === "number" && Date.now() > m._timeout) {
          m._timeout = Date.now() + (m.timeout || 5000);
          m.process_events();
        }
      }
    }
  }, 500);
})();
"""


def with_comm_flush(bundle: Any) -> Any:
    """A Panel notebook mimebundle with the flush script appended (any other bundle unchanged)."""
    if not (isinstance(bundle, tuple) and len(bundle) == 2 and isinstance(bundle[0], dict)):
        return bundle
    data, metadata = bundle
    if EXEC_MIME not in data or not isinstance(data.get("text/html"), str):
        return bundle
    script = f'\n<script type="application/javascript">{FLUSH_JS}</script>'
    return {**data, "text/html": data["text/html"] + script}, metadata
