"""pyviz_comms' stdout capture, serialised: comm handlers in two threads never leave sys.stdout on a lost buffer."""
from __future__ import annotations

import sys
import threading
import time

import pytest

pytest.importorskip("pyviz_comms")


def _overlap() -> object:
    """Two overlapping StandardOutput blocks in two threads (the second begun while the first is open)."""
    from pyviz_comms import StandardOutput

    a_in, b_started = threading.Event(), threading.Event()

    def first() -> None:
        with StandardOutput():
            a_in.set()
            b_started.wait(5)
            time.sleep(0.1)  # the second thread is inside (or waiting for) its block now, and leaves it last

    def second() -> None:
        a_in.wait(5)
        b_started.set()
        with StandardOutput():
            time.sleep(0.3)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return sys.stdout


def test_overlapping_captures_in_two_threads_give_back_the_real_stdout() -> None:
    from physviz.widgets import comm_stdout

    real = sys.stdout
    comm_stdout.install()
    try:
        assert _overlap() is real
    finally:
        sys.stdout = real


def test_the_class_it_wraps_keeps_its_shape() -> None:
    import inspect

    from pyviz_comms import Comm, StandardOutput

    assert issubclass(StandardOutput, list)
    assert "StandardOutput()" in inspect.getsource(Comm._handle_msg)
