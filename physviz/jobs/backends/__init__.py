"""Backends: local processes, SSH hosts, Slurm; one interface (`Backend`)."""
from __future__ import annotations

from physviz.jobs.backends.base import Backend
from physviz.jobs.errors import JobSpecError

_CACHE: dict[str, Backend] = {}


def get_backend(name: str) -> Backend:
    """The backend object for 'local', 'ssh' or 'slurm' (modules load on first use)."""
    if name not in _CACHE:
        if name == "local":
            from physviz.jobs.backends.local import LocalBackend as cls
        elif name == "ssh":
            from physviz.jobs.backends.ssh import SSHBackend as cls
        elif name == "slurm":
            from physviz.jobs.backends.slurm import SlurmBackend as cls
        else:
            raise JobSpecError(f"Unknown backend {name!r}; choose local, ssh or slurm.")
        _CACHE[name] = cls()
    return _CACHE[name]


__all__ = ["Backend", "get_backend"]
