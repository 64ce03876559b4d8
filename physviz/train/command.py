"""Running ``python -m physviz.train`` as a subprocess: the command line and a blocking run (imports no torch)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence

from physviz.errors import TrainingFailedError


def train_argv(config: str | os.PathLike[str], overrides: Sequence[str] = (), python: str | None = None) -> list[str]:
    """``[python, "-m", "physviz.train", config, *overrides]``, with this interpreter unless `python` is given."""
    return [python or sys.executable, "-m", "physviz.train", str(config), *overrides]


def run_train_process(config: str | os.PathLike[str], overrides: Sequence[str] = (), threads: int | None = None,
                      stop: threading.Event | None = None) -> None:
    """Train as the config file says in a child process of this interpreter; wait for it to end.

    ``threads`` sets the child's CPU threads (``OMP_NUM_THREADS``); None keeps torch's default.
    Its output goes to this process's stdout and stderr. A run that fails raises
    `TrainingFailedError`; rerunning it resumes from the run's last checkpoint. When `stop` is set
    (from another thread), the child is sent SIGTERM; so is it when waiting here is interrupted.
    """
    env = None if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen(train_argv(config, overrides), env=env)
    try:
        while proc.poll() is None:
            if stop is None:
                proc.wait()
            elif stop.wait(0.5):
                proc.terminate()
                proc.wait()
    except BaseException:
        proc.terminate()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise TrainingFailedError(
            f"Training with {config} stopped with exit status {proc.returncode}; rerun to resume from its last checkpoint.")
