"""Process helpers for tests: free ports, waiting, and a /proc scan for a job's marker."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> object:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def pids_with_env(name: str, value: str) -> list[int]:
    """Live processes whose environment holds NAME=VALUE (independent of the code under test)."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0") and _alive(int(entry)):
            found.append(int(entry))
    return found


def job_pids(job_id: str) -> list[int]:
    """Processes started for the physviz job `job_id` (they carry its marker in their environment)."""
    return pids_with_env("PHYSVIZ_JOB_ID", job_id)


def cmdline(pid: int) -> str:
    """The command line of `pid`, spaces between arguments ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def env_of(pid: int) -> dict[str, str]:
    """The environment of `pid` ({} once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def stop_pids(pids: Iterable[int], grace: float = 5.0) -> None:
    """SIGTERM each pid, then SIGKILL what is left after `grace` seconds."""
    pids = [p for p in pids if _alive(p)]
    for pid in pids:
        with _quiet():
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with _quiet():
                os.kill(pid, signal.SIGKILL)


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Stop a daemon we started (by its pid) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


class _quiet:
    """Ignore ProcessLookupError/PermissionError from a kill."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, tb) -> bool:
        return kind is not None and issubclass(kind, (ProcessLookupError, PermissionError))


def hostile_text(token: str) -> str:
    """A name/path part with spaces, quotes, ;, $(), backticks and a newline (no '/') that would
    create ~/<token> if any shell ever ran it unquoted."""
    return f"a b'c\"d;e$(cd;touch {token})`cd;touch {token}`\nf & cd;touch {token} #"


def canary(token: str) -> Path:
    """Where hostile_text(token) would leave its mark."""
    return Path.home() / token
