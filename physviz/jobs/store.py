"""The durable job store: one SQLite file (standard library), one JSON record per job.

Every change is one transaction, so a record is never half written, and any process
(a restarted kernel, the Jupyter server) sees the same jobs. The default file is
``<jupyter data dir>/physviz/jobs.sqlite``; ``$PHYSVIZ_JOB_STORE`` overrides it.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from physviz.jobs.errors import JobNotFoundError, JobStoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    backend TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_VERSION = "1"


def default_store_path() -> Path:
    """``$PHYSVIZ_JOB_STORE`` if set, else ``<jupyter data dir>/physviz/jobs.sqlite``."""
    env = os.environ.get("PHYSVIZ_JOB_STORE")
    if env:
        return Path(os.path.expanduser(env))
    try:
        from jupyter_core.paths import jupyter_data_dir
    except ImportError:  # jupyter_core's own default on Linux
        base = os.environ.get("JUPYTER_DATA_DIR") or os.path.join(
            os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "jupyter")
        return Path(base) / "physviz" / "jobs.sqlite"
    return Path(jupyter_data_dir()) / "physviz" / "jobs.sqlite"


class JobStore:
    """Job records in an SQLite file, safe to share between processes."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self._ready = False

    def __repr__(self) -> str:
        return f"JobStore({str(self.path)!r})"

    @property
    def runs_dir(self) -> Path:
        """Default folder of local job folders: ``runs/`` next to the store file."""
        return self.path.parent / "runs"

    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction (IMMEDIATE for writes), committed or rolled back."""
        if not self._ready:
            self._init()
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise JobStoreError(f"Cannot open the job store {str(self.path)!r} ({exc}).") from None
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise JobStoreError(f"The job store {str(self.path)!r} cannot be read or written ({exc}); "
                                    "it is left as it is.") from None
            raise
        finally:
            conn.close()

    def _init(self) -> None:
        """Create the file and tables on first use; refuse a file that is not a job store."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._check_file()
            conn = sqlite3.connect(self.path, timeout=30)
        except (OSError, sqlite3.Error) as exc:
            raise JobStoreError(f"Cannot create the job store {str(self.path)!r} ({exc}).") from None
        try:
            with conn:
                conn.executescript(_SCHEMA)
                conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('version', ?)", (_VERSION,))
        except sqlite3.DatabaseError as exc:
            raise JobStoreError(
                f"{str(self.path)!r} is not a physviz job store ({exc}); set PHYSVIZ_JOB_STORE to another file."
            ) from None
        finally:
            conn.close()
        self._ready = True

    def _check_file(self) -> None:
        """Create the file owner-only (0600) if missing; refuse one that others own or can write.

        Records name commands, hosts and shell lines that status and cancel act on, so a store
        another user can change would let them run code as this user.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise JobStoreError(f"The job store {str(self.path)!r} is not a file.")
            if st.st_uid != os.getuid():
                raise JobStoreError(f"The job store {str(self.path)!r} is owned by another user (uid {st.st_uid}); "
                                    "use a store of your own (PHYSVIZ_JOB_STORE).")
            if st.st_mode & 0o022:
                raise JobStoreError(f"The job store {str(self.path)!r} can be written by others "
                                    f"(mode {stat.S_IMODE(st.st_mode):o}); run chmod 600 on it if its records "
                                    "are yours.")
            if st.st_mode & 0o044:  # readable by others (a store of an older physviz): owner only
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)

    # -- records ------------------------------------------------------------------
    def add(self, record: dict[str, Any]) -> None:
        """Insert a new job record (its ``id`` must be new)."""
        now = time.time()
        with self._connect(write=True) as conn:
            try:
                conn.execute(
                    "INSERT INTO jobs(id, name, backend, created, updated, record) VALUES (?, ?, ?, ?, ?, ?)",
                    (record["id"], record["name"], record["backend"], record.get("created", now), now,
                     json.dumps(record)),
                )
            except sqlite3.IntegrityError:
                raise JobStoreError(f"A job with id {record['id']!r} is already in the store.") from None

    def get(self, job_id: str) -> dict[str, Any]:
        """The record of one job."""
        with self._connect() as conn:
            row = conn.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"No job {job_id!r} in the job store {str(self.path)!r}; see physviz.jobs.list().")
        return json.loads(row[0])

    def update(self, job_id: str, **changes: Any) -> dict[str, Any]:
        """Merge `changes` into a record in one transaction; return the new record."""
        with self._connect(write=True) as conn:
            row = conn.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(f"No job {job_id!r} in the job store {str(self.path)!r}.")
            record = json.loads(row[0])
            record.update(changes)
            conn.execute("UPDATE jobs SET record = ?, updated = ? WHERE id = ?",
                         (json.dumps(record), time.time(), job_id))
        return record

    def records(self, backend: str | None = None) -> list[dict[str, Any]]:
        """Every record (optionally of one backend), oldest first."""
        with self._connect() as conn:
            if backend is None:
                rows = conn.execute("SELECT record FROM jobs ORDER BY created, id").fetchall()
            else:
                rows = conn.execute("SELECT record FROM jobs WHERE backend = ? ORDER BY created, id",
                                    (backend,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def remove(self, job_id: str) -> None:
        """Forget a job (its files stay where they are)."""
        with self._connect(write=True) as conn:
            cur = conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            if cur.rowcount == 0:
                raise JobNotFoundError(f"No job {job_id!r} in the job store {str(self.path)!r}.")


def as_store(store: "JobStore | str | os.PathLike[str] | None") -> JobStore:
    """A JobStore from a store, a path, or None (the default store)."""
    if isinstance(store, JobStore):
        return store
    return JobStore(store)
