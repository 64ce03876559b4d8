"""Job specs, the durable job store and local/SSH/Slurm backends; never imports torch.

>>> job = physviz.jobs.submit(JobSpec(name="ft", train_config="ft.yaml", resources=Resources(procs_per_node=2)))
>>> job.status(), job.metrics(0), job.logs(0, rank=0)
>>> physviz.jobs.get(job.id)   # from any process, later
"""
from __future__ import annotations

from physviz._lazy import lazy_attributes

_LAZY = {
    "JobSpec": "physviz.jobs.spec",
    "Resources": "physviz.jobs.spec",
    "Environment": "physviz.jobs.spec",
    "SSHHost": "physviz.jobs.spec",
    "SSHSettings": "physviz.jobs.spec",
    "SlurmSettings": "physviz.jobs.spec",
    "Job": "physviz.jobs.job",
    "submit": "physviz.jobs.job",
    "list": ("physviz.jobs.job", "list_jobs"),
    "get": ("physviz.jobs.job", "get_job"),
    "JobStore": "physviz.jobs.store",
    "default_store_path": "physviz.jobs.store",
    "get_backend": "physviz.jobs.backends",
    "Backend": "physviz.jobs.backends.base",
    "STATES": "physviz.jobs.states",
    "TERMINAL": "physviz.jobs.states",
    "is_terminal": "physviz.jobs.states",
    "JobSpecError": "physviz.jobs.errors",
    "JobNotFoundError": "physviz.jobs.errors",
    "JobStoreError": "physviz.jobs.errors",
    "BackendError": "physviz.jobs.errors",
    "JobTimeoutError": "physviz.jobs.errors",
    "JobNotStartedError": "physviz.jobs.errors",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes("physviz.jobs", globals(), _LAZY)
