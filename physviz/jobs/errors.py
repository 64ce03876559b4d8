"""Errors of physviz.jobs: one clear sentence naming the setting, job or host."""
from __future__ import annotations

from physviz.errors import OptionError, PhysvizError


class JobSpecError(OptionError):
    """A job spec has an unknown key or a value it cannot take."""


class JobNotFoundError(PhysvizError, KeyError):
    """No job with this id is in the job store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class JobStoreError(PhysvizError):
    """The job store file cannot be opened or is not a physviz job store."""


class BackendError(PhysvizError, RuntimeError):
    """A backend could not reach its hosts or scheduler, or the scheduler refused the job."""


class JobTimeoutError(PhysvizError, TimeoutError):
    """A job did not reach a final state within the time asked for."""


class JobNotStartedError(PhysvizError):
    """A job record has no job folder (the job never started), so it has no logs, metrics or output."""
