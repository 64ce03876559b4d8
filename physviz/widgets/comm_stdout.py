"""Keep the kernel's standard output when comm messages are handled in more than one thread.

pyviz_comms handles each message from a view in the browser inside ``StandardOutput``, which swaps
the process-wide ``sys.stdout`` for a buffer and puts back what it found on exit. ipykernel 7 runs
comm messages of kernel subshells (JupyterLab 4.4 and later open them) in threads of their own, so
two handlers can overlap: the second saves the first's buffer as "the" stdout and restores it last,
and from then on every ``print`` of every cell goes into a buffer nobody reads (a notebook run again
in a second page shows no output). Here the swap is serialised: one handler at a time holds the
captured stdout, and the real one always comes back.

Upstream versions: it wraps ``pyviz_comms.StandardOutput.__enter__``/``__exit__``, checked on the
versions in `physviz.widgets.comm_flush.CHECKED_ON` with ipykernel 7.4; tests/widgets fails when the
class changes shape.
"""
from __future__ import annotations

import threading
from typing import Any

_LOCK = threading.RLock()


def install() -> None:
    """Patch pyviz_comms once so that its stdout capture is held by one thread at a time."""
    import pyviz_comms

    cls = pyviz_comms.StandardOutput
    if getattr(cls, "_physviz_serialised", False):
        return
    enter, exit_ = cls.__enter__, cls.__exit__

    def __enter__(self: Any) -> Any:
        _LOCK.acquire()
        try:
            return enter(self)
        except BaseException:
            _LOCK.release()
            raise

    def __exit__(self: Any, *args: Any) -> Any:
        try:
            return exit_(self, *args)
        finally:
            _LOCK.release()

    cls.__enter__, cls.__exit__ = __enter__, __exit__
    cls._physviz_serialised = True
