"""Job folders and files only their owner can read, private from the moment they exist (folders 0700, files 0600).

A job folder holds the spec (with `environment.env`), the train config and launch scripts.
They are created with these modes (never widened first and narrowed after), so no other
user can read them in between.
"""
from __future__ import annotations

import os
from pathlib import Path

from physviz.jobs.errors import JobSpecError, JobStoreError

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_job_dir(workdir: str | None, default_root: Path, job_id: str) -> str:
    """Create ``<root>/<job_id>`` (0700) and return its absolute path; root is `workdir`, else `default_root`.

    A folder that cannot be made is one clear error: JobSpecError naming ``environment.workdir``
    when the spec set it, else JobStoreError naming the job store's runs folder.
    """
    root = os.path.abspath(os.path.expanduser(workdir)) if workdir else os.path.abspath(default_root)
    job_dir = os.path.join(root, job_id)
    try:
        os.makedirs(root, exist_ok=True)
        os.mkdir(job_dir, DIR_MODE)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if workdir:
            raise JobSpecError(f"Setting environment.workdir={workdir!r}: cannot create the job folder "
                               f"{job_dir!r} ({reason}); give a folder you can write to.") from None
        raise JobStoreError(f"Cannot create the job folder {job_dir!r} next to the job store ({reason}); "
                            "set environment.workdir or PHYSVIZ_JOB_STORE.") from None
    return job_dir


def make_private_dirs(*paths: str) -> None:
    """Create folders (and missing parents) with mode 0700."""
    for path in paths:
        os.makedirs(path, DIR_MODE, exist_ok=True)


def write_private(path: str | os.PathLike[str], text: str | bytes) -> None:
    """Write a file atomically with mode 0600 from its creation (temporary file, fsync, rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = text.encode() if isinstance(text, str) else text
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
