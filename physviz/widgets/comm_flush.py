"""Keep a notebook view's browser-to-kernel messages flowing after an acknowledgement is lost.

Panel's browser-side CommManager sends a batch of changes (a slider move), then holds every
later change until the kernel acknowledges the batch, or until its ``timeout`` (5 s) has passed
*and another change arrives*. An acknowledgement can be lost: under CPU load, JupyterLab's PyViz
extension may find the kernel only on a retry, and then a view's first batch (sent as it renders)
reaches the kernel before the comm is opened there, so the kernel drops it (seen 2026-12-04 with
panel 1.9.4, pyviz_comms 3.0.6, ipykernel 7.4.0: the kernel logged the message 170 ms before the
comm_open it belonged to). The moves made in the next 5 s then sat in the buffer until the user
touched a control again: the slider moved, the frame never did. The script below, appended to
every physviz view's output, runs once per page and sends such a held buffer as soon as the
timeout has passed, which is what Panel would do on the next change.
"""
from __future__ import annotations

from typing import Any

EXEC_MIME = "application/vnd.holoviews_exec.v0+json"

# Idempotent per page; touches only CommManager roots that have the fields Panel 1.x gives them.
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
