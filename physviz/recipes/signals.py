"""Stopping a background recipe run with ``kill PID``: SIGTERM raised as KeyboardInterrupt in the main thread."""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def sigterm_raises_interrupt() -> Iterator[None]:
    """Inside (main thread only), SIGTERM raises KeyboardInterrupt, so ``kill PID`` of a run started in the
    background (where the shell makes it ignore SIGINT) stops it, and its workers, as Ctrl-C would."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
