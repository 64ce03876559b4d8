"""Durable atomic file writes: a temporary file beside the target, flushed to disk, renamed, the folder flushed.

A reader sees the old file or the complete new one, never a part; after `atomic_path` returns,
the new file survives a crash or power loss (the file is fsynced before the rename and the
folder after it). A write killed midway leaves a ``.<name>.<random>.tmp`` file beside the
target; `remove_stale_tmp` removes those.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path; on success it durably replaces `target`, on error it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file 0600; give it the mode a plain open() would (0666 less the umask)
        os.chmod(tmp_path, 0o666 & ~_umask())
        fsync_file(tmp_path)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file's data to disk (whatever handle wrote it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write a text file durably and atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def remove_stale_tmp(folder: str | os.PathLike[str], names: Iterable[str] | None = None) -> list[Path]:
    """Remove the temporary files killed `atomic_path` writes left in `folder` (of targets `names`, or all).

    Only the owner of the folder may call this (a running writer's temporary file would go too).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    prefixes = None if names is None else tuple(f".{n}." for n in names)
    removed = []
    for p in folder.glob(".*.tmp"):
        if (prefixes is None or p.name.startswith(prefixes)) and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
