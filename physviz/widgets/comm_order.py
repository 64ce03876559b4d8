"""Send a notebook view's kernel-to-browser patches in the order they were made, after the page can take them.

A Panel output in a notebook reaches the browser as the document it had when it was displayed; every
later change goes out as a Bokeh patch over the output's comm. The page opens that comm when it has
drawn the output, and the kernel answers that open only between cell executions: under Run All the
open waits behind every queued cell, so all the patches of a view updated by later cells (a rollout's
frames, a layout whose children are replaced) are made before it. Panel retries each such patch
every 0.1 s until the comm is open, while a patch made after the open goes out at once, ahead of the
older ones still waiting. The browser drops a patch that refers to a model defined in a patch it has
not had yet ("reference ... isn't known"), and with it the frames, titles and children it carried:
the view stays on its first state, or blank.

Here a patch is not made at all while the document's comm is not open: the changes stay held in the
document (Panel holds notebook documents), and when the page opens the comm they go out together, in
one patch, in order (see `compact`). Nothing is retried on a timer.

Upstream versions: it replaces ``panel.io.notebook.diff`` as seen by ``panel.io.notebook.push`` and
wraps ``pyviz_comms.JupyterComm.init`` (the server comm Panel opens when the page opens its client
comm); it reads Panel's ``state._views`` (ref -> (viewable, root, doc, comm)), the comm's private
``_comm`` and Bokeh's ``doc.callbacks._held_events``. Checked on the versions in ``physviz.widgets.comm_flush.CHECKED_ON``;
tests/widgets/test_widgets_views.py fails when those names change.
"""
from __future__ import annotations

from typing import Any


def _server_comm(comm: Any) -> bool:
    """Whether `comm` is a kernel-side comm that Panel opens once the page has opened its own."""
    from pyviz_comms import JupyterComm, JupyterCommJS

    return isinstance(comm, JupyterComm) and not isinstance(comm, JupyterCommJS)


def waiting(doc: Any) -> bool:
    """Whether `doc` is shown in a notebook output whose page has not opened the output's comm yet."""
    from panel.io.state import state

    for _, root, d, comm in list(state._views.values()):
        if d is doc and _server_comm(comm) and "embedded" not in root.tags:
            return comm._comm is None
    return False


_DATA_EVENTS = ("ColumnDataChanged", "ColumnsStreamed", "ColumnsPatched")
MAX_HELD = 200  # held changes of a waiting document compacted beyond this many


def compact(doc: Any) -> None:
    """Make the changes held in `doc` safe to send in one patch to a page that had none of them.

    Changes to models that left the document (a view replaced before the page saw it) are dropped: the
    browser never had those models, and a patch naming one is dropped whole. The changes to each data
    source become one full replacement of its current data, where the first of them was: a held
    document combines a new full `data` with the first one held, ahead of the streams made between the
    two, which the browser would then add again.
    """
    from bokeh.document.events import ColumnDataChangedEvent
    from bokeh.models import ColumnDataSource

    out, replaced = [], set()
    for e in doc.callbacks._held_events:
        model, kind = getattr(e, "model", None), getattr(e, "kind", None)
        if model is None or kind in ("RootAdded", "RootRemoved"):
            out.append(e)
        elif doc.models.get_by_id(model.id) is None:
            continue
        elif isinstance(model, ColumnDataSource) and (kind in _DATA_EVENTS or getattr(e, "attr", None) == "data"):
            if model.id not in replaced:
                replaced.add(model.id)
                out.append(ColumnDataChangedEvent(doc, model, "data"))
        else:
            out.append(e)
    doc.callbacks._held_events = out


def flush(comm: Any) -> None:
    """Send the changes held in the documents shown over `comm` (the page has just opened it)."""
    import panel.io.notebook as nb
    from panel.io.state import state

    for _, root, doc, c in list(state._views.values()):
        if c is comm and "embedded" not in root.tags:
            compact(doc)
            nb.push(doc, comm)


def install() -> None:
    """Patch Panel once so notebook patches wait in their document for the comm, then go out in order."""
    import panel.io.notebook as nb
    from pyviz_comms import JupyterComm

    if getattr(nb, "_physviz_comm_order", False):
        return
    diff, init = nb.diff, JupyterComm.init

    def held_diff(doc: Any, binary: bool = True, events: Any = None) -> Any:
        if events is None and waiting(doc):
            if len(doc.callbacks._held_events) > MAX_HELD:
                compact(doc)  # a page that never opens the comm (a headless run) does not grow the list without end
            return None  # the events stay in the document until flush()
        return diff(doc, binary, events)

    def init_and_flush(self: Any) -> None:
        init(self)
        flush(self)

    nb.diff, JupyterComm.init = held_diff, init_and_flush
    nb._physviz_comm_order = True
