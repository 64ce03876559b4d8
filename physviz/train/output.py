"""A run's output folder: made with clear errors, locked by the run that owns it, cleared of killed writes.

The owner holds ``fcntl.flock`` on ``<output_dir>/.lock`` (its pid and host written in it) until
the run ends; the kernel drops the lock when the process dies, so a killed run never blocks its
resume. Under torchrun only global rank 0 locks.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from physviz.errors import PhysvizError
from physviz.train.config import TrainConfigError

LOCK_FILE = ".lock"
# Files a run writes with physviz.fields.atomic in its folder (their killed temporaries are removed at start).
RUN_FILES = ("final.safetensors", "config.yaml", "metrics.jsonl")


class OutputLockedError(PhysvizError):
    """Another run owns the output folder."""


class OutputWriteError(PhysvizError, OSError):
    """A file of a run could not be written (disk full, read-only, ...); the previous version is kept."""


def make_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create the output folder (and parents); an OS refusal becomes a TrainConfigError naming output_dir."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainConfigError(
            f"output_dir {str(out)!r} cannot be created ({exc.strerror or exc}); choose a folder you can write to."
        ) from None
    if not out.is_dir():
        raise TrainConfigError(f"output_dir {str(out)!r} exists and is not a folder; choose another output_dir.")
    return out


class OutputLock:
    """An exclusive lock on a run's output folder, held from `acquire` until `release` (or the process ends)."""

    def __init__(self, output_dir: str | os.PathLike[str]) -> None:
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / LOCK_FILE
        self._fh: IO[str] | None = None

    def acquire(self, wait_s: float = 2.0) -> "OutputLock":
        """Take the lock (retrying for `wait_s`, as a restarted worker's predecessor exits); refuse if another run holds it."""
        import fcntl

        make_output_dir(self.output_dir)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TrainConfigError(
                f"output_dir {str(self.output_dir)!r} cannot be written ({exc.strerror or exc}); "
                "choose a folder you can write to."
            ) from None
        fh = os.fdopen(fd, "r+")
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    owner = _owner(fh)
                    fh.close()
                    raise OutputLockedError(
                        f"output_dir {str(self.output_dir)!r} is in use by another run ({owner}); wait for it to "
                        "end or stop it, or give this run another output_dir."
                    ) from None
                time.sleep(0.1)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}) + "\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Drop the lock (the file stays; its content names the last owner)."""
        if self._fh is not None:
            self._fh.close()  # closing the descriptor releases the flock
            self._fh = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fh is not None


def _owner(fh: IO[str]) -> str:
    """'pid N on host H' from a lock file's content."""
    try:
        fh.seek(0)
        info = json.loads(fh.read() or "{}")
        return f"pid {int(info['pid'])} on host {info.get('host', '?')}"
    except (OSError, ValueError, KeyError, TypeError):
        return "owner unknown"


def remove_killed_writes(output_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files left by killed writes in the run folder and its checkpoints (owner only)."""
    from physviz.fields.atomic import remove_stale_tmp

    out = Path(output_dir)
    removed = remove_stale_tmp(out, RUN_FILES) + remove_stale_tmp(out / "checkpoints")
    legacy = out / "metrics.jsonl.tmp"
    if legacy.is_file():
        legacy.unlink()
        removed.append(legacy)
    return removed


@contextlib.contextmanager
def writing(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Turn an OSError of writing `path` into OutputWriteError naming it (the previous version is kept)."""
    try:
        yield
    except OutputWriteError:
        raise
    except OSError as exc:
        raise OutputWriteError(
            f"Could not write the {what} {str(path)!r} ({exc.strerror or exc}); the previous version, if any, is "
            "unchanged. Free space or fix the folder, then rerun to resume."
        ) from exc


@contextlib.contextmanager
def locked(output_dir: str | os.PathLike[str], enabled: bool = True) -> Iterator[OutputLock | None]:
    """Hold the output folder's lock (if `enabled`) and clear killed writes for the body."""
    if not enabled:
        yield None
        return
    lock = OutputLock(output_dir).acquire()
    try:
        remove_killed_writes(output_dir)
        yield lock
    finally:
        lock.release()
