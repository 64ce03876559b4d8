"""Running physviz.train in a subprocess: the command line, a failing run's error, no torch in the module."""
from __future__ import annotations

import subprocess
import sys

import pytest

from physviz.errors import PhysvizError, TrainingFailedError
from physviz.jobs.layout import Layout, worker_argv
from physviz.jobs.spec import JobSpec
from physviz.train.command import run_train_process, train_argv


def test_train_argv():
    assert train_argv("run.yaml") == [sys.executable, "-m", "physviz.train", "run.yaml"]
    assert train_argv(__import__("pathlib").Path("/a/b.yaml"), ["steps=3", "progress=false"], python="py") == [
        "py", "-m", "physviz.train", "/a/b.yaml", "steps=3", "progress=false"]


def test_a_job_worker_runs_the_same_command(tmp_path):
    spec = JobSpec.from_dict({"name": "t", "train_config": {"steps": 1}, "overrides": ["steps=2"]})
    layout = Layout(str(tmp_path))
    assert worker_argv(spec, layout) == train_argv(layout.config, ["steps=2"], spec.python())


def test_a_failing_run_names_the_config_and_the_exit_status(tmp_path):
    config = tmp_path / "missing.yaml"
    with pytest.raises(TrainingFailedError, match=r"missing\.yaml.*exit status [1-9]") as err:
        run_train_process(config, ["progress=false"])
    assert isinstance(err.value, PhysvizError)


def test_the_command_module_imports_no_torch():
    code = "import sys, physviz.train.command; assert 'torch' not in sys.modules"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
