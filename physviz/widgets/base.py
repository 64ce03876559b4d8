"""What every view shares: offline Panel setup, the error Alert, and saving to standalone HTML."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import panel as pn
import param

from physviz.errors import OptionError, PhysvizError


# Panel's page template links its favicons from a CDN; a file meant to open offline drops them.
_OFFLINE_ICON = re.compile(r'<link\b[^>]*\brel="(?:apple-touch-icon|icon|shortcut icon)"[^>]*>', re.IGNORECASE)


def inline_stylesheets(doc: Any) -> int:
    """Replace the stylesheets Panel's models link from its CDN by the same files from the installed package."""
    from bokeh.models import ImportedStyleSheet, InlineStyleSheet
    from panel.io.resources import CDN_DIST

    dist = Path(pn.__file__).parent / "dist"
    cache: dict[str, Any] = {}
    count = 0
    for model in list(doc.models):
        sheets = getattr(model, "stylesheets", None)
        if not sheets or not any(isinstance(s, ImportedStyleSheet) for s in sheets):
            continue
        new = []
        for sheet in sheets:
            url = sheet.url.split("?", 1)[0] if isinstance(sheet, ImportedStyleSheet) else ""
            if url.startswith(CDN_DIST) and (dist / url[len(CDN_DIST):]).is_file():
                if url not in cache:
                    cache[url] = InlineStyleSheet(css=(dist / url[len(CDN_DIST):]).read_text(encoding="utf-8"))
                new.append(cache[url])
                count += 1
            else:
                new.append(sheet)
        model.stylesheets = new
    return count


def ensure_panel(theme: str | None = None) -> None:
    """Load Panel with inline resources (never a CDN) and HoloViews' Bokeh backend once, its JavaScript once per page."""
    import holoviews as hv
    import holoviews.plotting.bokeh  # noqa: F401 - registers the Bokeh backend and its options

    from bokeh.core.validation import silence
    from bokeh.core.validation.warnings import FIXED_SIZING_MODE

    silence(FIXED_SIZING_MODE, True)  # figures are sized by their frame width/height
    from physviz.widgets import page_js

    os.environ.setdefault("PANEL_INLINE", "true")
    if not pn.extension._loaded:
        pn.extension(inline=True, **({"theme": theme} if theme else {}))
        page_js.mark_loaded()
    else:
        pn.config.inline = True
        if theme:
            pn.config.theme = theme
        page_js.ensure_loaded()  # a page that connected to this kernel later gets Panel's JavaScript too
    if hv.Store.current_backend != "bokeh" and "bokeh" not in hv.Store.renderers:
        hv.renderer("bokeh")
    from physviz.widgets import comm_order, comm_stdout, offline_css

    offline_css.install()  # Panel re-sends CDN stylesheet links in later updates; this keeps them inline
    comm_order.install()  # patches made before the page opened a view's comm go out after it, in order
    comm_stdout.install()  # comm handlers in several threads never leave print() writing into a lost buffer


def bokeh_renderer() -> Any:
    """HoloViews' Bokeh renderer (plots are built once from HoloViews elements, then updated in place)."""
    import holoviews as hv

    return hv.renderer("bokeh")


class View(pn.viewable.Viewer):
    """A view: a Panel layout, or an Alert with one clear sentence when the input was bad."""

    error = param.String(default="", doc="The message shown instead of the view when its input is bad.")

    def __init__(self, **params: Any) -> None:
        ensure_panel()
        super().__init__(**params)
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._layout: pn.viewable.Viewable | None = None

    def _fail(self, exc: BaseException) -> pn.pane.Alert:
        """Show `exc` as the view's message (PhysvizError text, or the type and text of anything else)."""
        msg = str(exc) if isinstance(exc, PhysvizError) else f"{type(exc).__name__}: {exc}"
        self.error = msg
        self.alert.object = msg
        self.alert.visible = True
        return self.alert

    def _clear_error(self) -> None:
        """Hide the message after the input became good again."""
        self.error = ""
        self.alert.object = ""
        self.alert.visible = False

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        """Panel's notebook output, plus the script that sends moves held after a lost acknowledgement."""
        from physviz.widgets import page_js
        from physviz.widgets.comm_flush import with_comm_flush

        page_js.ensure_loaded()  # shown on a page that has not had Panel's JavaScript from this kernel
        return with_comm_flush(super()._repr_mimebundle_(include, exclude))

    def __panel__(self) -> pn.viewable.Viewable:
        if self._layout is None:
            return self.alert
        return self._layout

    @property
    def layout(self) -> pn.viewable.Viewable:
        """The Panel object this view shows (its Alert when the input was bad)."""
        return self.__panel__()

    def save_html(
        self, path: str | Path, title: str | None = None, embed: bool = False, max_states: int = 1000, max_opts: int = 50,
    ) -> Path:
        """A standalone HTML file with every JavaScript and CSS resource inline, so it opens offline.

        embed=True also records the view for up to `max_opts` values of each widget (the player's frames,
        fields, ...), at most `max_states` combinations, so the file plays without a kernel; each recorded
        state holds its images, so keep it for short rollouts or small grids.
        """
        from bokeh.document import Document
        from bokeh.resources import INLINE
        from panel.io.embed import embed_state
        from panel.io.model import add_to_doc
        from panel.io.resources import set_resource_mode
        from panel.io.save import save
        from pyviz_comms import Comm

        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise OptionError(f"{path} does not end in .html; save_html writes an HTML file.")
        path.parent.mkdir(parents=True, exist_ok=True)
        obj = self._html_object(embed)
        doc = Document()
        with set_resource_mode("inline"), pn.config.set(embed=embed):
            model = obj.get_root(doc, Comm())
            if embed:
                embed_state(obj, model, doc, max_states, max_opts, False, "", "./", None, False, self._embed_states(max_opts))
            else:
                add_to_doc(model, doc, True)
            inline_stylesheets(doc)
            save(doc, str(path), resources=INLINE, title=title or type(self).__name__)
        html = path.read_text(encoding="utf-8")
        path.write_text(_OFFLINE_ICON.sub("", html), encoding="utf-8")
        return path

    def _embed_states(self, max_opts: int) -> dict[Any, list[Any]]:
        """Every frame of the view's player (up to max_opts, evenly spread; Panel's own sampling skips the last)."""
        player = getattr(self, "player", None)
        if player is None or player.disabled:
            return {}
        n = int(player.end) + 1
        import numpy as np

        return {player: [int(v) for v in np.unique(np.linspace(0, n - 1, min(n, max_opts)).round())]}

    def _html_object(self, embed: bool) -> pn.viewable.Viewable:
        """What save_html writes (views can drop controls that need a Python kernel)."""
        return self.__panel__()
