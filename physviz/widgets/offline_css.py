"""Keep Panel's stylesheets inline after the first render.

Panel 1.9 inlines its stylesheets in the first render under ``inline=True`` but re-sends
links to cdn.holoviz.org in later updates (a polled monitor, a scrubbed frame), which
fail offline. This wraps the two places Reactive components hand stylesheets to Bokeh
and swaps a CDN or local-dist link for the same file from the installed package, cached
per document. Panel also re-points a cached sheet (one object shared by the models of a
document, already in the page) at the CDN when it renders for a document without a
``dist_url`` (a dynamic tab of a served page): under ``inline`` that rewrite is skipped.

Upstream versions: it wraps Panel's private ``Reactive._get_properties(doc)``,
``Reactive._update_model(events, msg, root, model, doc, comm)`` and the
``patch_stylesheet(stylesheet, dist_url)`` that ``panel.reactive`` calls, checked on panel 1.9.4
(`physviz.widgets.comm_flush.CHECKED_ON`). The widgets extra sets lower bounds only, so
tests/widgets/test_widgets_views.py fails when those signatures change.
"""
from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

_CACHE: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()


def _inline(sheet: Any, doc: Any) -> Any:
    """The inline twin of a CDN stylesheet link (or the sheet unchanged)."""
    import panel as pn
    from bokeh.models import ImportedStyleSheet, InlineStyleSheet
    from panel.io.resources import CDN_DIST, LOCAL_DIST

    if not isinstance(sheet, ImportedStyleSheet) or not pn.config.inline:
        return sheet
    url = str(sheet.url).split("?", 1)[0]
    local = url[2:] if url.startswith("./") else url
    if url.startswith(CDN_DIST):
        rel = url[len(CDN_DIST):]
    elif local.startswith(LOCAL_DIST):
        rel = local[len(LOCAL_DIST):]
    else:
        return sheet
    path = Path(pn.__file__).parent / "dist" / rel
    if not path.is_file():
        return sheet
    cache = _CACHE.setdefault(doc, {}) if doc is not None else {}
    if url not in cache:
        cache[url] = InlineStyleSheet(css=path.read_text(encoding="utf-8"))
    return cache[url]


def install() -> None:
    """Patch Panel's Reactive once so updates carry inline stylesheets, not CDN links."""
    import panel.reactive as reactive

    cls = reactive.Reactive
    if getattr(cls, "_physviz_inline_css", False):
        return
    patch_stylesheet = reactive.patch_stylesheet

    def _patch_stylesheet(stylesheet: Any, dist_url: str) -> None:
        import panel as pn
        from panel.io.resources import CDN_DIST

        if pn.config.inline and dist_url == CDN_DIST:
            return  # never re-point a shared sheet (already in the page) at the CDN; _inline swaps it
        patch_stylesheet(stylesheet, dist_url)

    reactive.patch_stylesheet = _patch_stylesheet
    get_properties, update_model = cls._get_properties, cls._update_model

    def _get_properties(self: Any, doc: Any) -> Any:
        props = get_properties(self, doc)
        if "stylesheets" in props:
            props["stylesheets"] = [_inline(s, doc) for s in props["stylesheets"]]
        return props

    def _update_model(self: Any, events: Any, msg: dict, root: Any, model: Any, doc: Any, comm: Any) -> Any:
        if "stylesheets" in msg:
            msg["stylesheets"] = [_inline(s, doc) for s in msg["stylesheets"]]
        return update_model(self, events, msg, root, model, doc, comm)

    cls._get_properties, cls._update_model = _get_properties, _update_model
    cls._physviz_inline_css = True
