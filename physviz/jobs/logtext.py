"""LogTail: a job's log text as a terminal shows it, fed in chunks (carriage returns overwrite, no ANSI codes)."""
from __future__ import annotations

import re

# CSI sequences (colours, cursor moves), OSC sequences (titles, links) and two-byte escapes
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
# an escape sequence cut at the end of a chunk (its rest comes with the next one)
ANSI_CUT = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*)?$")


def terminal_line(raw: str) -> str:
    """What a terminal shows of one line: the text after its last carriage return, without ANSI codes."""
    text = ANSI_CUT.sub("", ANSI.sub("", raw)).rstrip("\r")
    return text[text.rfind("\r") + 1:]


class LogTail:
    """The last `max_lines` lines of a log fed in chunks; a line still being written (a progress bar) is kept
    raw until its newline, so a carriage return or escape code cut between two chunks is handled whole."""

    def __init__(self, max_lines: int = 200) -> None:
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._open = ""

    def feed(self, chunk: str) -> bool:
        """Add text; True if what is shown changed."""
        if not chunk:
            return False
        before = self.text
        *done, self._open = (self._open + chunk).split("\n")
        if done:
            self._lines = (self._lines + [terminal_line(line) for line in done])[-self.max_lines:]
        cut = self._open.rstrip("\r").rfind("\r")
        if cut > 0:  # a progress bar's earlier refreshes are overwritten: keep the open line short
            self._open = self._open[cut:]
        return self.text != before

    def clear(self) -> None:
        """Forget every line."""
        self._lines, self._open = [], ""

    @property
    def lines(self) -> list[str]:
        """The lines shown, the one being written last (if it shows anything)."""
        current = terminal_line(self._open)
        return (self._lines + [current])[-self.max_lines:] if current else list(self._lines)

    @property
    def text(self) -> str:
        """The lines shown, joined by newlines."""
        return "\n".join(self.lines)
