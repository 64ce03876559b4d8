"""SSH for the backends: asyncssh connections kept on one background event loop, called synchronously.

The loop runs in its own daemon thread, so the blocking API works the same in a
script, in a Jupyter kernel (whose loop is already running) and in the server.
Remote commands are sent as a POSIX `sh` script on stdin (`sh -s`), so the login
shell (bash, zsh, tcsh, fish) only ever parses the fixed words ``sh -s``.
Connections authenticate with the key *file* named in the spec or with ssh-agent;
no key or password passes through physviz.
"""
from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from physviz.jobs.errors import BackendError
from physviz.jobs.spec import SSHHost

T = TypeVar("T")


@dataclass
class Result:
    """Exit status and output of one remote command."""

    returncode: int
    stdout: str
    stderr: str


class _Pool:
    """Connections (and their SFTP clients) by host settings, all on one loop thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="physviz-ssh", daemon=True)
        self.thread.start()
        self.conns: dict[tuple, Any] = {}
        self.sftps: dict[tuple, Any] = {}
        self.locks: dict[tuple, asyncio.Lock] = {}

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run a coroutine on the loop and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise BackendError(f"An SSH operation did not finish within {timeout:.0f} s.") from None


_POOL: _Pool | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> _Pool:
    """The process's connection pool (a cache, started on first use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or not _POOL.thread.is_alive():
            _POOL = _Pool()
        return _POOL


def _key(host: SSHHost) -> tuple:
    return (host.host, host.port, host.user, host.key_file, host.known_hosts, host.check_host_key)


async def _connect(host: SSHHost) -> Any:
    import asyncssh

    pool = _pool()
    key = _key(host)
    lock = pool.locks.setdefault(key, asyncio.Lock())
    async with lock:
        conn = pool.conns.get(key)
        if conn is not None and not conn.is_closed():
            return conn
        options: dict[str, Any] = {"port": host.port, "connect_timeout": 20, "keepalive_interval": 30}
        if host.user:
            options["username"] = host.user
        if host.key_file:
            options["client_keys"] = [os.path.expanduser(host.key_file)]
        if not host.check_host_key:
            options["known_hosts"] = None
        elif host.known_hosts:
            options["known_hosts"] = os.path.expanduser(host.known_hosts)
        try:
            conn = await asyncssh.connect(host.host, **options)
        except (OSError, asyncssh.Error) as exc:
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            raise BackendError(f"Cannot connect to {host.label()} over SSH ({reason}).") from None
        pool.conns[key] = conn
        pool.sftps.pop(key, None)
        return conn


async def _sftp(host: SSHHost) -> Any:
    pool = _pool()
    key = _key(host)
    conn = await _connect(host)
    client = pool.sftps.get(key)
    if client is None:
        client = await conn.start_sftp_client()
        pool.sftps[key] = client
    return client


def _retrying(host: SSHHost, make: Any, timeout: float) -> Any:
    """Run `make()` (a coroutine factory) once, and again on a fresh connection if the old one died."""
    import asyncssh

    pool = _pool()
    for attempt in (0, 1):
        try:
            return pool.call(make(), timeout)
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError, BrokenPipeError, ConnectionError):
            pool.conns.pop(_key(host), None)
            pool.sftps.pop(_key(host), None)
            if attempt:
                raise BackendError(f"The SSH connection to {host.label()} was lost.") from None
        except asyncssh.Error as exc:
            raise BackendError(f"SSH to {host.label()} failed ({exc.reason or type(exc).__name__}).") from None
    raise AssertionError("unreachable")


def run_script(host: SSHHost, script: str, timeout: float = 60) -> Result:
    """Run a POSIX sh script on the host (sent on stdin to ``sh -s``)."""

    async def go() -> Result:
        conn = await _connect(host)
        res = await conn.run("sh -s", input=script, check=False, timeout=timeout)
        status = res.exit_status if res.exit_status is not None else 255
        return Result(status, str(res.stdout or ""), str(res.stderr or ""))

    return _retrying(host, go, timeout + 30)


def read_bytes(host: SSHHost, path: str, offset: int = 0, limit: int = 1 << 20) -> bytes:
    """Up to `limit` bytes of a remote file from `offset` (b'' if it does not exist)."""
    import asyncssh

    async def go() -> bytes:
        sftp = await _sftp(host)
        try:
            async with sftp.open(path, "rb") as f:
                await f.seek(offset)
                return await f.read(limit)
        except asyncssh.SFTPNoSuchFile:
            return b""

    return _retrying(host, go, 120)


def size(host: SSHHost, path: str) -> int | None:
    """Size of a remote file, None if missing."""
    import asyncssh

    async def go() -> int | None:
        sftp = await _sftp(host)
        try:
            return int((await sftp.stat(path)).size or 0)
        except asyncssh.SFTPNoSuchFile:
            return None

    return _retrying(host, go, 60)


def write_bytes(host: SSHHost, path: str, data: bytes, mode: int = 0o600) -> None:
    """Write a remote file atomically (temp file, then rename), created with `mode` (default: owner only)."""
    import asyncssh

    async def go() -> None:
        sftp = await _sftp(host)
        tmp = f"{path}.physviz-tmp"
        async with sftp.open(tmp, "wb", attrs=asyncssh.SFTPAttrs(permissions=mode)) as f:
            await f.write(data)
        await sftp.chmod(tmp, mode)
        await sftp.posix_rename(tmp, path)

    _retrying(host, go, 120)


def makedirs(host: SSHHost, path: str, mode: int | None = None) -> None:
    """mkdir -p on the host; folders it creates get `mode` (default: the host's umask)."""
    import asyncssh

    async def go() -> None:
        sftp = await _sftp(host)
        await sftp.makedirs(path, attrs=asyncssh.SFTPAttrs(permissions=mode), exist_ok=True)

    _retrying(host, go, 60)


def realpath(host: SSHHost, path: str) -> str:
    """The absolute form of a remote path (relative paths are under the login's home)."""

    async def go() -> str:
        sftp = await _sftp(host)
        out = await sftp.realpath(path)
        return out if isinstance(out, str) else out.decode()

    return _retrying(host, go, 60)


def _copy(host: SSHHost, method: str, src: str, dst: str, failure: str) -> None:
    """SFTP `method` ("put" or "get") of a file or folder (recursively), as BackendError(`failure`) if it fails."""
    import asyncssh

    async def go() -> None:
        sftp = await _sftp(host)
        try:
            await getattr(sftp, method)(src, dst, recurse=True, preserve=True)
        except (OSError, asyncssh.SFTPError) as exc:
            raise BackendError(f"{failure} ({exc}).") from None

    _retrying(host, go, 3600)


def put(host: SSHHost, local: str, remote: str) -> None:
    """Copy a local file or folder to the host (folders recursively)."""
    _copy(host, "put", local, remote, f"Cannot stage {local!r} to {host.label()}:{remote!r}")


def get(host: SSHHost, remote: str, local: str) -> None:
    """Copy a remote file or folder here (folders recursively)."""
    _copy(host, "get", remote, local, f"Cannot fetch {host.label()}:{remote!r}")


def close_all() -> None:
    """Close every cached connection (tests, shutdown)."""
    pool = _POOL
    if pool is None:
        return

    async def go() -> None:
        for conn in list(pool.conns.values()):
            conn.close()
        pool.conns.clear()
        pool.sftps.clear()

    pool.call(go(), 30)
