"""LogTail: a job's log as a terminal shows it (carriage returns, ANSI codes, chunks cut anywhere)."""
from __future__ import annotations

from physviz.jobs.logtext import LogTail, terminal_line

BAR = "".join(f"\r\x1b[32m{p:3d}%\x1b[0m|{'#' * (p // 10):10s}|" for p in range(0, 101, 10))
LOG = "starting\n" + BAR + "\n\x1b]0;title\x07done\r\n" + "step 1\n"


def test_a_progress_bar_is_one_line_and_escape_codes_are_gone():
    assert terminal_line("\x1b[1mbold\x1b[0m") == "bold"
    assert terminal_line("  0%\r 50%\r100%") == "100%" and terminal_line("ok\r") == "ok"
    tail = LogTail()
    assert tail.feed(LOG)
    assert tail.lines == ["starting", "100%|##########|", "done", "step 1"]


def test_chunks_cut_anywhere_give_the_same_text():
    for size in (1, 2, 3, 7, 13):
        tail = LogTail()
        for i in range(0, len(LOG), size):
            tail.feed(LOG[i:i + size])
            assert "\x1b" not in tail.text and "\r" not in tail.text
        assert tail.lines == ["starting", "100%|##########|", "done", "step 1"], size


def test_the_open_line_shows_its_last_refresh_and_stays_short():
    tail = LogTail(max_lines=3)
    tail.feed("a\nb\nc\nd\n")
    assert tail.lines == ["b", "c", "d"]
    for p in range(1000):
        tail.feed(f"\r{p}/1000")
    assert tail.lines == ["c", "d", "999/1000"] and len(tail._open) < 20
    assert not tail.feed("") and not tail.feed("\r999/1000")  # nothing new to show
    tail.clear()
    assert tail.text == ""
