"""FineTuneLauncher and JobMonitor against the real physviz.jobs (local backend, a real training run):
the form builds the right JobSpec, submitting starts processes, the monitor polls status, metrics and logs,
cancels, and reattaches to earlier jobs from the store."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("panel")

from physviz.fields import sample_dataset, to_well  # noqa: E402
from physviz.jobs import JobSpec  # noqa: E402
from physviz.widgets import FineTuneLauncher, JobMonitor  # noqa: E402


@pytest.fixture()
def store(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "jobs.sqlite"
    monkeypatch.setenv("PHYSVIZ_JOB_STORE", str(path))
    return path


@pytest.fixture(scope="module")
def well(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("well") / "tg"
    ds = sample_dataset(trajectories=3, n=32, steps=8, seed=0)
    to_well(ds.isel(trajectory=[0, 1]), root / "data" / "train" / "tg_train.hdf5")
    to_well(ds.isel(trajectory=[2]), root / "data" / "valid" / "tg_valid.hdf5")
    return root


def _set(widget, value) -> None:
    """Change a widget's value as the browser does."""
    widget._process_events({"value": value})


def test_form_builds_the_right_local_spec(well, store):
    la = FineTuneLauncher(store=store, monitor=False)
    _set(la.name_input, "tg fine-tune")
    _set(la.data_dir, str(well))
    _set(la.fields, "vorticity, velocity_x")
    _set(la.steps, 12)
    _set(la.lr, 3e-4)
    _set(la.tokens, 2048)
    _set(la.valid_every, 6)
    _set(la.procs, 2)
    _set(la.mem, "8G")
    _set(la.overrides, "seed=7\n# a comment\nlog_every=2")
    _set(la.workdir, "/scratch/me")
    spec = la.build_spec()
    assert isinstance(spec, JobSpec)
    assert spec.name == "tg fine-tune" and spec.backend == "local"
    assert spec.resources.nodes == 1 and spec.resources.procs_per_node == 2 and spec.resources.mem == "8G"
    assert spec.checkpoint is None and spec.data == [str(well)]
    assert spec.overrides == ["seed=7", "log_every=2"] and spec.environment.workdir == "/scratch/me"
    cfg = spec.train_config
    assert cfg["steps"] == 12 and cfg["optimizer"]["lr"] == pytest.approx(3e-4)
    assert cfg["batch"]["tokens"] == 2048 and cfg["valid_every"] == 6
    assert cfg["data"] == [{"path": str(well), "fields": ["vorticity", "velocity_x"]}]
    assert JobSpec.from_yaml(spec.to_yaml()).to_dict() == spec.to_dict()
    la._preview()
    assert "tg fine-tune" in la.preview.object and la.error == ""


def test_form_builds_ssh_and_slurm_specs(well, store, tmp_path):
    key = tmp_path / "id_ed25519"
    key.write_text("not read by the form")
    la = FineTuneLauncher(data_dir=str(well), store=store, monitor=False)
    la.backend._process_events({"active": 1})  # the "ssh" button
    assert la.backend.value == "ssh" and la.ssh_box.visible and not la.slurm_box.visible
    _set(la.hosts, "alice@10.0.0.5:2222\n10.0.0.6")
    _set(la.key_file, str(key))
    _set(la.shared_fs, True)
    _set(la.nodes, 2)
    _set(la.gpus, 4)
    _set(la.procs, 0)
    _set(la.venv, "/opt/venv")
    _set(la.prologue, "module load cuda")
    spec = la.build_spec()
    hosts = spec.ssh.hosts
    assert [(h.host, h.port, h.user, h.key_file) for h in hosts] == [
        ("10.0.0.5", 2222, "alice", str(key)), ("10.0.0.6", 22, None, str(key))]
    assert spec.ssh.shared_fs and spec.resources.nodes == 2 and spec.resources.nproc == 4
    assert spec.environment.venv == "/opt/venv" and spec.environment.prologue == ["module load cuda"]
    la.backend._process_events({"active": 2})
    _set(la.partition, "gpu")
    _set(la.account, "phys")
    _set(la.time_limit, "01:30:00")
    spec = la.build_spec()
    assert spec.backend == "slurm" and spec.resources.partition == "gpu" and spec.resources.account == "phys"
    assert spec.resources.time_limit_seconds == 5400 and spec.slurm.login is None


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"data_dir": ""}, "Well dataset"),
        ({"backend": 1}, "ssh.hosts"),
        ({"time_limit": "soon"}, "time_limit"),
        ({"overrides": "no equals sign"}, "key.sub=value"),
    ],
)
def test_bad_form_input_is_a_message_in_the_view(well, store, changes, words):
    la = FineTuneLauncher(data_dir=str(well), store=store, monitor=False)
    for name, value in changes.items():
        if name == "backend":
            la.backend._process_events({"active": value})
        else:
            _set(getattr(la, name), value)
    assert la.submit() is None
    assert words in la.error and la.alert.visible


def test_submit_trains_in_processes_and_the_monitor_follows(well, store, tmp_path):
    la = FineTuneLauncher(data_dir=str(well), store=store, workdir=str(tmp_path / "runs"))
    _set(la.steps, 4)
    _set(la.valid_every, 2)
    _set(la.tokens, 512)
    _set(la.overrides, "log_every=1\nvalid_batches=1")
    t0 = time.monotonic()
    job = la.submit()
    assert job is not None, la.error
    assert time.monotonic() - t0 < 10  # submit returns at once: training runs in other processes
    mon = la.monitor
    assert mon.job.id == job.id and mon._callback is not None
    mon.stop()
    deadline = time.monotonic() + 170
    while mon.poll() not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(1)
    assert mon.state == "completed", mon.log.value
    lines = [json.loads(x) for x in (Path(job.output_dir) / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in lines if r["kind"] == "train"]
    valid = [r for r in lines if r["kind"] == "valid"]
    x, y = mon.loss.data("train loss")
    np.testing.assert_allclose(x, [r["step"] for r in train])
    np.testing.assert_allclose(y, [r["loss"] for r in train])
    assert valid and len(mon.valid.data("valid VRMSE (mean)")[0]) == len(valid)
    assert mon.log.value.strip() and "completed" in mon.status.object and "final.safetensors" in mon.status.object
    assert mon.cancel_button.disabled


def test_cancel_and_reattach_to_earlier_jobs(store, tmp_path):
    import physviz.jobs

    script = (
        "import json, os, time\n"
        "out = os.environ['PHYSVIZ_OUTPUT_DIR']\n"
        "os.makedirs(out, exist_ok=True)\n"
        "f = open(os.path.join(out, 'metrics.jsonl'), 'a')\n"
        "for s in range(1000):\n"
        "    f.write(json.dumps({'kind': 'train', 'step': s, 'loss': 1.0 / (s + 1)}) + '\\n'); f.flush()\n"
        "    print('step', s, flush=True); time.sleep(0.2)\n"
    )
    env = {"workdir": str(tmp_path / "runs")}
    first = physviz.jobs.submit(JobSpec(name="quick", command=[sys.executable, "-c", "print('hello from the job')"],
                                        environment=env))
    first.wait(60)
    slow = physviz.jobs.submit(JobSpec(name="slow", command=[sys.executable, "-c", script], environment=env))
    mon = JobMonitor(store=store)
    labels = list(mon.jobs.options)
    assert len(labels) == 2 and labels[0].startswith("slow") and labels[1].startswith("quick")
    mon.jobs.value = first.id  # reattach to the earlier job
    assert mon.job.id == first.id and mon.state == "completed"
    mon.stop()
    assert "hello from the job" in mon.log.value
    mon.jobs.value = slow.id
    mon.stop()
    deadline = time.monotonic() + 60
    while len(mon.loss.data("train loss")[0]) < 3 and time.monotonic() < deadline:
        time.sleep(0.3)
        mon.poll()
    assert mon.state == "running" and not mon.cancel_button.disabled
    n = len(mon.loss.data("train loss")[0])
    assert n >= 3 and "step" in mon.log.value
    mon.cancel_button._process_events({"clicks": 1})
    assert mon.state == "cancelled" and mon.cancel_button.disabled
    assert physviz.jobs.get(slow.id).status() == "cancelled"
    x, y = mon.loss.data("train loss")
    np.testing.assert_allclose(y, 1.0 / (x + 1))  # every step read once, in order


def test_loss_curve_rewinds_when_a_resumed_run_repeats_steps() -> None:
    from physviz.widgets.base import ensure_panel
    from physviz.widgets.plots import CurvePanel

    ensure_panel()
    curve = CurvePanel(["train loss"], "step", "loss", logy=True)
    for step, loss in [(10, 1.0), (20, 0.8), (30, 0.7), (40, 0.6)]:
        curve.append("train loss", step, loss)
    x, y = curve.data("train loss")
    assert x.tolist() == [10, 20, 30, 40]  # HoloViews' construction points are gone
    # killed after step 40, resumed from the checkpoint at step 20: steps 30.. come again
    for step, loss in [(30, 0.69), (40, 0.58), (50, 0.5)]:
        curve.append("train loss", step, loss)
    x, y = curve.data("train loss")
    assert x.tolist() == [10, 20, 30, 40, 50] and np.all(np.diff(x) > 0)
    assert y.tolist() == [1.0, 0.8, 0.69, 0.58, 0.5]  # the repeated steps keep the resumed run's values


class FakeJob:
    """A job handle whose metrics and rank-0 log are byte streams the test grows (no processes)."""

    id, name, backend, output_dir, record = "fake-1", "fake", "local", "", {"status": "running"}

    def __init__(self) -> None:
        self.metrics_bytes, self.log_bytes, self.state = b"", b"", "running"

    def add(self, *records: dict) -> None:
        self.metrics_bytes += b"".join(json.dumps(r).encode() + b"\n" for r in records)

    def status(self) -> str:
        return self.state

    def metrics(self, offset: int = 0):
        from physviz.train.metrics import parse_metrics

        rows, used = parse_metrics(self.metrics_bytes[offset:])
        return rows, offset + used

    def logs(self, offset: int = 0, rank: int = 0):
        return self.log_bytes[offset:].decode(), len(self.log_bytes)


def _train(*steps, scale: float = 1.0) -> list[dict]:
    return [{"kind": "train", "step": s, "loss": scale / s} for s in steps]


@pytest.fixture()
def watched(store):
    """A monitor on a FakeJob, rendered into a Bokeh document whose change events are recorded."""
    from bokeh.document import Document

    from physviz.widgets.base import ensure_panel

    ensure_panel()
    job = FakeJob()
    mon = JobMonitor(store=store)
    mon.attach(job)
    doc = Document()
    doc.add_root(mon.__panel__().get_root(doc))
    events: list = []
    doc.on_change(events.append)
    return mon, job, events


def test_the_monitor_keeps_one_point_a_step_when_steps_come_again(watched):
    mon, job, _events = watched
    job.add(*_train(*range(1, 9)))
    mon.poll()
    job.add(*_train(*range(1, 9)), *_train(*range(2, 9)))  # the stream read again, then again from step 2
    mon.poll()
    assert [r["step"] for r in mon.rows if r["kind"] == "train"] == list(range(1, 9))
    assert mon.loss.data("train loss")[0].tolist() == list(range(1, 9))
    job.add(*_train(*range(5, 10), scale=0.5))  # resumed from the checkpoint at step 4
    mon.poll()
    x, y = mon.loss.data("train loss")
    assert x.tolist() == list(range(1, 10)) and y[4:].tolist() == [0.5 / s for s in range(5, 10)]


def test_a_poll_sends_only_the_curves_that_changed_and_nothing_when_nothing_came(watched):
    """A changed curve goes whole (a streamed point the browser sends back would be appended twice in the
    kernel); an unchanged one, or a poll with nothing new, sends nothing."""
    from bokeh.document.events import ColumnsStreamedEvent

    mon, job, events = watched
    job.add(*_train(1, 2, 3), {"kind": "valid", "step": 3, "loss": 0.5, "vrmse": {"u": 0.2}})
    mon.poll()
    events.clear()
    job.add(*_train(4, 5))
    mon.poll()
    sources = {name: mon.loss.sources[name] for name in ("train loss", "valid loss")}
    touched = [e.model for e in events if getattr(e, "model", None) in sources.values()]
    assert touched == [sources["train loss"]], events  # the valid curves did not change
    assert not [e for e in events if isinstance(e, ColumnsStreamedEvent)]
    assert list(sources["train loss"].data["x"]) == [1, 2, 3, 4, 5]
    events.clear()
    for _ in range(3):
        mon.poll()
    assert events == []  # a poll with no new data sends no patch
    # and the periodic callback backs off: after polls that found nothing it polls every BACKOFF ticks
    from physviz.widgets.jobs import BACKOFF

    calls = []
    mon._poll = lambda: calls.append(1) or False
    for _ in range(4 * BACKOFF):
        mon._tick()
    assert BACKOFF <= len(calls) <= 2 + 4 * BACKOFF // 2 and len(calls) < 4 * BACKOFF


def test_one_validation_point_is_drawn_as_a_marker(watched):
    mon, job, _events = watched
    job.add(*_train(1, 2), {"kind": "valid", "step": 2, "loss": 0.7, "vrmse": {"u": 0.4, "v": 0.2}})
    mon.poll()
    source = mon.valid.sources["valid VRMSE (mean)"]
    assert list(source.data["x"]) == [2.0] and list(source.data["y"]) == pytest.approx([0.3])
    glyphs = {type(r.glyph).__name__ for r in mon.valid.figure.renderers if r.data_source is source}
    assert glyphs == {"Line", "Scatter"}
    # on the loss plot the markers share each curve's legend entry
    item = next(i for i in mon.loss.figure.legend[0].items if i.label.value == "valid loss")
    assert {type(r.glyph).__name__ for r in item.renderers} == {"Line", "Scatter"}


def test_the_log_tail_shows_a_progress_bar_as_a_terminal_does(watched):
    mon, job, _events = watched
    job.log_bytes = b"start\n\x1b[32m 10%\x1b[0m|#"
    mon.poll()
    assert mon.log.value == "start\n 10%|#"
    job.log_bytes += b"\r\x1b[32m 50%\x1b[0m|#####\r\x1b[32m100%"  # a refresh cut inside its colour code
    mon.poll()
    job.log_bytes += b"\x1b[0m|##########\r\nstep 1\n"
    mon.poll()
    assert mon.log.value == "start\n100%|##########\nstep 1"
    css = " ".join(mon.log.stylesheets)
    assert "opacity: 1" in css and "color: #1b1b1b" in css


def test_curve_changes_are_sent_at_once_in_a_notebook(store):
    """A notebook's document holds direct Bokeh changes until a push; the monitor pushes its own, so a
    replaced curve is never sent later together with points streamed after it (the browser's 1..8, 2..8)."""
    from bokeh.document import Document
    from pyviz_comms import Comm

    from physviz.widgets.base import ensure_panel

    class RecordingComm(Comm):
        def __init__(self) -> None:
            super().__init__()
            self._comm, self.sent = True, []

        def send(self, data=None, metadata=None, buffers=None) -> None:
            self.sent.append(data)

    ensure_panel()
    job = FakeJob()
    job.add(*_train(1, 2))
    mon = JobMonitor(job, store=store)
    doc, comm = Document(), RecordingComm()
    doc.hold()  # as Panel holds a notebook output's document
    doc.add_root(mon.__panel__().get_root(doc, comm=comm))
    doc.callbacks._held_events.clear()
    job.add({"kind": "valid", "step": 2, "loss": 0.7, "vrmse": {"u": 0.3}})  # changes no widget, only curves
    mon.poll()
    assert doc.callbacks._held_events == [] and comm.sent
