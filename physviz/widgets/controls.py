"""Widgets the views share: time player, field and trajectory selectors, 3D slice controls."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import panel as pn

from physviz.widgets import frames as fr


def time_player(n: int, name: str = "time", interval: int = 200) -> pn.widgets.Player:
    """A play/pause/step player over n frames."""
    return pn.widgets.Player(
        label=name, start=0, end=max(n - 1, 1), value=0, step=1, interval=interval, loop_policy="once",
        show_loop_controls=False, width=380, disabled=n <= 1,
        visible_buttons=["first", "previous", "pause", "play", "next", "last"],
    )


class TimeLabel:
    """The time value of the player's frame ('t = 0.25 s'), shown next to the player and kept in step with it.

    `labels` gives the label of each frame (a callable, so a view that replaces its frames needs no update).
    """

    def __init__(self, player: pn.widgets.Player, labels: Callable[[], Sequence[str]]) -> None:
        self.player, self._labels = player, labels
        self.pane = pn.pane.HTML("", margin=(22, 10, 0, 10), styles={"font-size": "1.1em", "font-weight": "600"},
                                 width=170)
        player.param.watch(lambda *events: self.refresh(), ["value", "end"])
        self.refresh()

    @property
    def text(self) -> str:
        """The label shown now."""
        labels = self._labels()
        t = int(self.player.value)
        return str(labels[t]) if 0 <= t < len(labels) else ""

    def refresh(self) -> None:
        """Show the label of the player's frame."""
        self.pane.object = self.text

    def __panel__(self) -> pn.pane.HTML:
        return self.pane


def set_frames(player: pn.widgets.Player, n: int, value: int | None = None) -> None:
    """Let the player run over n frames (keeping its value when it still fits)."""
    v = min(int(player.value), max(n - 1, 0)) if value is None else value
    player.param.update(end=max(n - 1, 1), value=v, disabled=n <= 1)


def field_select(fields: Sequence[str], value: str) -> pn.widgets.Select:
    """The field selector."""
    return pn.widgets.Select(label="field", options=list(fields), value=value, width=170)


def trajectory_slider(n: int, shown: bool) -> pn.widgets.IntSlider:
    """The trajectory selector (hidden when there is no trajectory dim)."""
    return pn.widgets.IntSlider(label="trajectory", start=0, end=max(n - 1, 1), value=0, width=180, visible=shown, disabled=n <= 1)


class SliceControls:
    """Axis and index of the slice shown from a 3D field (hidden for 2D)."""

    def __init__(self, spatial: Sequence[str], sizes: dict[str, int]) -> None:
        self.spatial = list(spatial)
        self.sizes = dict(sizes)
        self.is3d = len(self.spatial) == 3
        last = self.spatial[-1]
        self.axis = pn.widgets.RadioButtonGroup(
            label="slice axis", options=self.spatial if self.is3d else ["-"], value=last if self.is3d else "-",
            visible=self.is3d, width=120,
        )
        self.index = pn.widgets.IntSlider(
            label="slice index", start=0, end=max(self.sizes[last] - 1, 1) if self.is3d else 1,
            value=self.sizes[last] // 2 if self.is3d else 0, visible=self.is3d, width=180,
        )

    @property
    def current(self) -> fr.Slice:
        """The slice now selected."""
        axis = self.axis.value if self.is3d else None
        return fr.Slice(fr.image_axes(self.spatial, axis), axis, int(self.index.value))

    def on_axis(self, axis: str) -> None:
        """Fit the index slider to a new axis."""
        n = self.sizes[axis]
        self.index.param.update(end=max(n - 1, 1), value=min(int(self.index.value), n - 1))

    @property
    def widgets(self) -> list[pn.widgets.Widget]:
        return [self.axis, self.index]


def button(label: str, kind: str = "default", **kw: object) -> pn.widgets.Button:
    """A button of a kind (primary, warning, danger, ...) in this Panel version's terms."""
    key = "color" if "color" in pn.widgets.Button.param else "button_type"
    return pn.widgets.Button(label=label, **{key: kind}, **kw)
