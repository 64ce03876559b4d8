"""Start Debian's sshd on loopback addresses with throwaway keys (a test's remote "hosts")."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .procs import free_port, stop_process

SSHD = "/usr/sbin/sshd"


@dataclass
class SSHHostInfo:
    """One running sshd: where it listens and how a client logs in."""

    host: str
    port: int
    user: str
    key_file: str
    known_hosts: str
    log: Path
    proc: subprocess.Popen

    def as_spec(self) -> dict:
        """The host as a physviz.jobs SSH host setting."""
        return {"host": self.host, "port": self.port, "user": self.user, "key_file": self.key_file,
                "known_hosts": self.known_hosts}


def _keygen(path: Path) -> None:
    """An ed25519 key pair without a passphrase."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "physviz-test", "-f", str(path)],
                   check=True, capture_output=True)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def start_sshd_hosts(tmp: Path, hosts: tuple[str, ...] = ("127.0.0.1", "127.0.0.2")) -> list[SSHHostInfo]:
    """Start one sshd per loopback address, all accepting one throwaway client key for this user."""
    if not Path(SSHD).exists():
        raise RuntimeError(f"{SSHD} is missing: run scripts/setup-env.sh (Debian openssh-server)")
    tmp.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation directory
    client_key = tmp / "client_ed25519"
    _keygen(client_key)
    host_key = tmp / "host_ed25519"
    _keygen(host_key)
    authorized = tmp / "authorized_keys"
    shutil.copy(f"{client_key}.pub", authorized)
    os.chmod(authorized, 0o600)
    host_pub = Path(f"{host_key}.pub").read_text().split()
    user = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name
    started: list[SSHHostInfo] = []
    known_lines = []
    try:
        for i, host in enumerate(hosts):
            port = free_port(host)
            config = tmp / f"sshd_config.{i}"
            log = tmp / f"sshd.{i}.log"
            config.write_text("\n".join([
                f"Port {port}",
                f"ListenAddress {host}",
                f"HostKey {host_key}",
                f"PidFile {tmp / f'sshd.{i}.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",
                "MaxSessions 64",
                "MaxStartups 64:30:128",
                "LogLevel INFO",
                "Subsystem sftp internal-sftp",
                "",
            ]))
            proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(log)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            info = SSHHostInfo(host, port, user, str(client_key), str(tmp / "known_hosts"), log, proc)
            started.append(info)
            known_lines.append(f"[{host}]:{port} {host_pub[0]} {host_pub[1]}")
        Path(tmp / "known_hosts").write_text("\n".join(known_lines) + "\n")
        deadline = time.monotonic() + 20
        for info in started:
            while not _listening(info.host, info.port):
                if info.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd on {info.host}:{info.port} did not start: {info.log.read_text()}")
                time.sleep(0.05)
    except BaseException:
        stop_sshd_hosts(started)
        raise
    return started


def stop_sshd_hosts(hosts: list[SSHHostInfo]) -> None:
    """Stop the sshd daemons by pid."""
    for info in hosts:
        stop_process(info.proc)


@pytest.fixture(scope="module")
def sshd_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[SSHHostInfo]]:
    """Two sshd "hosts" on 127.0.0.1 and 127.0.0.2 (private ports, throwaway keys), stopped at teardown."""
    hosts = start_sshd_hosts(tmp_path_factory.mktemp("sshd"))
    try:
        yield hosts
    finally:
        stop_sshd_hosts(hosts)
