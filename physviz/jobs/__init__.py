"""Job specs, the durable job store and local/SSH/Slurm backends; never imports torch.

>>> job = physviz.jobs.submit(JobSpec(name="ft", train_config="ft.yaml", resources=Resources(procs_per_node=2)))
>>> job.status(), job.metrics(0), job.logs(0, rank=0)
>>> physviz.jobs.get(job.id)   # from any process, later
"""
from __future__ import annotations

from typing import Any

_LAZY = {
    "JobSpec": ("physviz.jobs.spec", "JobSpec"),
    "Resources": ("physviz.jobs.spec", "Resources"),
    "Environment": ("physviz.jobs.spec", "Environment"),
    "SSHHost": ("physviz.jobs.spec", "SSHHost"),
    "SSHSettings": ("physviz.jobs.spec", "SSHSettings"),
    "SlurmSettings": ("physviz.jobs.spec", "SlurmSettings"),
    "Job": ("physviz.jobs.job", "Job"),
    "submit": ("physviz.jobs.job", "submit"),
    "list": ("physviz.jobs.job", "list_jobs"),
    "get": ("physviz.jobs.job", "get_job"),
    "JobStore": ("physviz.jobs.store", "JobStore"),
    "default_store_path": ("physviz.jobs.store", "default_store_path"),
    "get_backend": ("physviz.jobs.backends", "get_backend"),
    "Backend": ("physviz.jobs.backends.base", "Backend"),
    "STATES": ("physviz.jobs.states", "STATES"),
    "TERMINAL": ("physviz.jobs.states", "TERMINAL"),
    "is_terminal": ("physviz.jobs.states", "is_terminal"),
    "JobSpecError": ("physviz.jobs.errors", "JobSpecError"),
    "JobNotFoundError": ("physviz.jobs.errors", "JobNotFoundError"),
    "JobStoreError": ("physviz.jobs.errors", "JobStoreError"),
    "BackendError": ("physviz.jobs.errors", "BackendError"),
    "JobTimeoutError": ("physviz.jobs.errors", "JobTimeoutError"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Load public names on first use, so `import physviz.jobs` stays light."""
    if name not in _LAZY:
        raise AttributeError(f"module 'physviz.jobs' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
