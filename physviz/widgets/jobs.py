"""FineTuneLauncher (a form that builds a `physviz.jobs.JobSpec` and submits it) and JobMonitor (status, live loss
and validation curves, log tail, cancel, earlier jobs to reattach to).

Training never runs in the kernel: `physviz.jobs` starts it as processes (local, SSH or Slurm) and the
monitor only polls the job's status, metrics and logs from a periodic callback, reading from byte offsets so
each poll costs what is new, and sends the browser only what changed (a curve that changed; a poll with
nothing new sends nothing, and the next one comes later).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import panel as pn
from panel.io.notebook import push_notebook

from physviz.errors import OptionError
from physviz.jobs.logtext import LogTail
from physviz.jobs.states import is_terminal
from physviz.train.metrics import KINDS, MetricsSeries
from physviz.widgets.base import View
from physviz.widgets.controls import button
from physviz.widgets.plots import CurvePanel, flow

LOG_LINES = 200
BACKOFF = 4  # a poll that finds nothing new doubles the period, up to this many times `period_ms`
LOSS_CURVES = ("train loss", "valid loss")
VRMSE_CURVE = "valid VRMSE (mean)"
# the log tail is read-only: dark text on a light background, not the greyed-out look of a disabled input
LOG_CSS = """
:host textarea.bk-input, :host textarea.bk-input:disabled {
  opacity: 1; color: #1b1b1b; background-color: #fafafa; cursor: text;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; line-height: 1.35;
}
"""
STATUS_COLORS = {"pending": "secondary", "running": "primary", "completed": "success", "failed": "danger",
                 "cancelled": "warning", "unknown": "dark"}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip() and not line.strip().startswith("#")]


def parse_host(text: str, key_file: str | None = None) -> dict[str, Any]:
    """'user@host:port' (user and port optional) as an SSH host setting."""
    user, _, rest = text.rpartition("@")
    host, _, port = rest.partition(":")
    if not host:
        raise OptionError(f"SSH host {text!r} is not user@host:port.")
    out: dict[str, Any] = {"host": host}
    if user:
        out["user"] = user
    if port:
        if not port.isdigit():
            raise OptionError(f"SSH host {text!r} has port {port!r}, which is not a number.")
        out["port"] = int(port)
    if key_file:
        out["key_file"] = key_file
    return out


class FineTuneLauncher(View):
    """A form for backend, resources, data and training settings that builds a JobSpec and submits it."""

    def __init__(
        self, data_dir: str | None = None, base_config: dict[str, Any] | str | None = None, checkpoint: str | None = None,
        store: Any = None, name: str = "finetune", monitor: bool = True, workdir: str | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.base_config = base_config
        self.job: Any = None
        w = pn.widgets
        self.name_input = w.TextInput(label="job name", value=name, width=200)
        self.backend = w.RadioButtonGroup(label="backend", options=["local", "ssh", "slurm"], value="local", width=220)
        self.data_dir = w.TextInput(label="data (Well dataset folder)", value=str(data_dir or ""), width=420)
        self.fields = w.TextInput(label="fields (comma-separated, empty: all)", value="", width=420)
        self.checkpoint = w.TextInput(label="start from checkpoint ('bundled', a .safetensors or MPP file; empty: from scratch)", value=checkpoint or "", width=420)
        self.steps = w.IntInput(label="steps", value=200, start=1, width=100)
        self.lr = w.FloatInput(label="learning rate", value=1e-4, start=0, step=1e-5, width=120)
        self.tokens = w.IntInput(label="tokens per batch", value=4096, start=1, width=120)
        self.valid_every = w.IntInput(label="validate every (steps, 0: never)", value=50, start=0, width=160)
        self.nodes = w.IntInput(label="nodes", value=1, start=1, width=80)
        self.procs = w.IntInput(label="processes per node (0: one per GPU)", value=1, start=0, width=160)
        self.gpus = w.IntInput(label="GPUs per node", value=0, start=0, width=100)
        self.time_limit = w.TextInput(label="time limit (min or HH:MM:SS)", value="", width=160)
        self.partition = w.TextInput(label="partition", value="", width=120)
        self.account = w.TextInput(label="account", value="", width=120)
        self.mem = w.TextInput(label="memory per node (e.g. 16G)", value="", width=140)
        self.hosts = w.TextAreaInput(label="SSH hosts, one per line: user@host:port", value="", width=420, height=70)
        self.key_file = w.TextInput(label="SSH key file (a path; never the key)", value="", width=300)
        self.shared_fs = w.Checkbox(label="hosts share this file system", value=False)
        self.login = w.TextInput(label="Slurm login node (user@host:port; empty: sbatch here)", value="", width=420)
        self.venv = w.TextInput(label="virtual environment on the hosts (optional)", value="", width=300)
        self.workdir = w.TextInput(label="folder for job folders on the hosts (optional)", value=str(workdir or ""), width=300)
        self.prologue = w.TextAreaInput(label="prologue lines (e.g. module load cuda)", value="", width=420, height=60)
        self.overrides = w.TextAreaInput(label="more settings, one key.sub=value per line", value="", width=420, height=60)
        self.submit_button = button("Submit", "primary", width=120)
        self.preview_button = button("Preview spec", "default", width=120)
        self.preview = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.submit_button.on_click(lambda e: self.submit())
        self.preview_button.on_click(lambda e: self._preview())
        self.ssh_box = pn.Column(self.hosts, pn.Row(self.key_file, self.shared_fs), visible=False)
        self.slurm_box = pn.Column(self.login, pn.Row(self.partition, self.account), visible=False)
        self.backend.param.watch(self._on_backend, "value")
        self.monitor = JobMonitor(store=store) if monitor else None
        form = pn.Column(
            pn.Row(self.name_input, self.backend),
            self.data_dir, self.fields, self.checkpoint,
            pn.Row(self.steps, self.lr, self.tokens, self.valid_every),
            pn.Row(self.nodes, self.procs, self.gpus),
            pn.Row(self.time_limit, self.mem),
            self.ssh_box, self.slurm_box,
            pn.Row(self.venv, self.workdir), self.prologue, self.overrides,
            pn.Row(self.submit_button, self.preview_button),
            self.preview,
        )
        rows: list[Any] = [self.alert, pn.pane.Markdown("### Fine-tune"), form]
        if self.monitor is not None:
            rows.append(self.monitor)
        self._layout = pn.Column(*rows, name="FineTuneLauncher")

    def _on_backend(self, event: Any) -> None:
        self.ssh_box.visible = event.new == "ssh"
        self.slurm_box.visible = event.new == "slurm"

    # -- form -> spec ---------------------------------------------------------------------------
    def build_spec(self) -> Any:
        """The JobSpec the form describes (validated); raises a PhysvizError naming the bad setting."""
        from physviz.jobs import JobSpec

        backend = self.backend.value
        overrides = _lines(self.overrides.value)
        fields = [f.strip() for f in self.fields.value.split(",") if f.strip()]
        data_dir = self.data_dir.value.strip()
        if self.base_config is not None:
            train_config: Any = self.base_config
            overrides = [f"steps={int(self.steps.value)}", f"optimizer.lr={float(self.lr.value)!r}",
                         f"batch.tokens={int(self.tokens.value)}", f"valid_every={int(self.valid_every.value)}", *overrides]
        else:
            if not data_dir:
                raise OptionError("Give the data: the folder of a Well dataset (DIR/data/train/*.hdf5).")
            from physviz.train import example_config

            train_config = example_config(
                data_dir, "output", steps=int(self.steps.value), fields=fields or None, tokens=int(self.tokens.value),
                valid_every=int(self.valid_every.value),
            )
            train_config["optimizer"]["lr"] = float(self.lr.value)
        resources: dict[str, Any] = {
            "nodes": int(self.nodes.value), "procs_per_node": int(self.procs.value), "gpus_per_node": int(self.gpus.value),
        }
        limit = self.time_limit.value.strip()
        if limit:
            resources["time_limit"] = int(limit) if limit.isdigit() else limit
        for key, widget in (("partition", self.partition), ("account", self.account), ("mem", self.mem)):
            if widget.value.strip() and (backend == "slurm" or key == "mem"):
                resources[key] = widget.value.strip()
        environment: dict[str, Any] = {"prologue": _lines(self.prologue.value)}
        for key, widget in (("venv", self.venv), ("workdir", self.workdir)):
            if widget.value.strip():
                environment[key] = widget.value.strip()
        spec: dict[str, Any] = {
            "name": self.name_input.value.strip(), "backend": backend, "train_config": train_config,
            "overrides": overrides, "data": [data_dir] if data_dir else [],
            "checkpoint": self.checkpoint.value.strip() or None, "resources": resources, "environment": environment,
        }
        key = self.key_file.value.strip() or None
        if backend == "ssh":
            spec["ssh"] = {"hosts": [parse_host(h, key) for h in _lines(self.hosts.value)],
                           "shared_fs": bool(self.shared_fs.value)}
        if backend == "slurm" and self.login.value.strip():
            spec["slurm"] = {"login": parse_host(self.login.value.strip(), key)}
        return JobSpec.from_dict(spec).validate()

    def _preview(self) -> None:
        try:
            self.preview.object = f"```yaml\n{self.build_spec().to_yaml()}```"
            self._clear_error()
        except Exception as exc:
            self._fail(exc)

    def submit(self) -> Any:
        """Submit the form's job (the backend starts processes; nothing trains here) and watch it."""
        try:
            import physviz.jobs

            spec = self.build_spec()
            self.job = physviz.jobs.submit(spec, store=self.store)
            self._clear_error()
            self.preview.object = f"submitted **{self.job.name}** as `{self.job.id}` ({self.job.backend})"
            if self.monitor is not None:
                self.monitor.attach(self.job)
                self.monitor.start()
            return self.job
        except Exception as exc:
            self._fail(exc)
            return None


class JobMonitor(View):
    """Status, live loss and validation curves, log tail and cancel for one job; earlier jobs to reattach to."""

    def __init__(self, job: Any = None, store: Any = None, period_ms: int = 2000, rank: int = 0) -> None:
        super().__init__()
        self.store = store
        self.period_ms = period_ms
        self.job: Any = None
        self._callback: Any = None
        self.series = MetricsSeries()
        self._tail = LogTail(LOG_LINES)
        self._drawn: dict[str, tuple[list[float], list[float]]] = {}
        self._reset_offsets()
        self.jobs = pn.widgets.Select(label="jobs", options={}, width=420)
        self.refresh_button = button("Refresh list", "default", width=110)
        self.cancel_button = button("Cancel job", "danger", width=110, disabled=True)
        self.rank = pn.widgets.IntInput(label="log of rank", value=rank, start=0, width=90)
        self.status = pn.pane.Markdown("no job attached", margin=(0, 10))
        self.loss = CurvePanel(list(LOSS_CURVES), "step", "loss", "loss", logy=True, width=420, height=220)
        self.valid = CurvePanel([VRMSE_CURVE], "step", "VRMSE", "validation VRMSE", logy=True, width=420,
                                height=220, colors=["#2ca02c"])
        for panel in (self.loss, self.valid):
            _add_markers(panel)
        self.log = pn.widgets.TextAreaInput(label="log tail", value="", disabled=True, height=200, min_width=300,
                                            max_width=1000, sizing_mode="stretch_width", stylesheets=[LOG_CSS])
        self.refresh_button.on_click(lambda e: self.refresh_jobs())
        self.cancel_button.on_click(lambda e: self.cancel())
        self.jobs.param.watch(self._on_select, "value")
        self.rank.param.watch(lambda e: self._reset_log(), "value")
        self._layout = pn.Column(
            self.alert, pn.pane.Markdown("### Jobs"),
            flow(self.jobs, self.refresh_button, self.cancel_button, self.rank),
            self.status, flow(pn.pane.Bokeh(self.loss.figure), pn.pane.Bokeh(self.valid.figure)), self.log,
            name="JobMonitor", sizing_mode="stretch_width",
        )
        try:
            self.refresh_jobs()
            if job is not None:
                self.attach(job)
        except Exception as exc:
            self._fail(exc)

    def _reset_offsets(self) -> None:
        self._ticks, self._wait = 0, 1
        self._metrics_offset = 0
        self._log_offset = 0
        self._tail.clear()
        self.series.clear()
        self.state = "unknown"

    def _reset_log(self) -> None:
        self._log_offset = 0
        self._tail.clear()
        self.log.value = ""
        self.poll()

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The job's metrics records as they stand: the last of each step, by kind, in step order."""
        return [r for kind in KINDS for r in self.series.records(kind)]

    # -- jobs -----------------------------------------------------------------------------------
    def refresh_jobs(self) -> None:
        """List the store's jobs, newest first, to reattach to."""
        import physviz.jobs

        jobs = list(reversed(physviz.jobs.list(store=self.store)))
        options = {f"{j.name} · {j.id} · {j.backend} · {j.record.get('status', '?')}": j.id for j in jobs}
        current = self.job.id if self.job is not None else None
        self._listing = True
        try:
            self.jobs.options = options
            if current in options.values():
                self.jobs.value = current
        finally:
            self._listing = False

    def _on_select(self, event: Any) -> None:
        if getattr(self, "_listing", False) or not event.new or (self.job is not None and self.job.id == event.new):
            return
        import physviz.jobs

        try:
            self.attach(physviz.jobs.get(event.new, store=self.store))
            self.start()
        except Exception as exc:
            self._fail(exc)

    def attach(self, job: Any) -> None:
        """Watch `job` (a Job or its id) from the beginning of its metrics and log."""
        import physviz.jobs

        if isinstance(job, str):
            job = physviz.jobs.get(job, store=self.store)
        self.job = job
        self._reset_offsets()
        for panel, names in ((self.loss, LOSS_CURVES), (self.valid, (VRMSE_CURVE,))):
            for name in names:
                panel.set(name, np.array([]), np.array([]))
                self._drawn[name] = ([], [])
        self.log.value = ""
        self.refresh_jobs()
        self.poll()

    # -- polling --------------------------------------------------------------------------------
    def start(self) -> None:
        """Poll every `period_ms` from the event loop (each poll only reads what is new)."""
        if self._callback is None and self.job is not None and not is_terminal(self.state):
            self._callback = pn.state.add_periodic_callback(self._tick, period=self.period_ms)

    def _tick(self) -> None:
        """One periodic tick: a poll every tick while something comes; after a poll that found nothing the
        wait between polls doubles, up to BACKOFF ticks."""
        self._ticks += 1
        if self._ticks < self._wait:
            return
        self._ticks = 0
        self._wait = 1 if self._poll() else min(self._wait * 2, BACKOFF)

    def stop(self) -> None:
        """Stop polling."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def poll(self) -> str:
        """Ask the job's status and read its new metrics and log lines; returns the status."""
        self._poll()
        return self.state

    def _poll(self) -> bool:
        """One poll; True if the status, the metrics or the log changed."""
        if self.job is None:
            return False
        before = self.state
        new = False
        try:
            job = self.job
            self.state = job.status()
            rows, self._metrics_offset = job.metrics(self._metrics_offset)
            if self.series.add(rows):
                new = True
                self._draw()
            text, self._log_offset = job.logs(self._log_offset, rank=int(self.rank.value))
            if self._tail.feed(text):
                new = True
                self.log.value = self._tail.text
            self._show_status()
            self.cancel_button.disabled = is_terminal(self.state)
            if is_terminal(self.state):
                self.stop()
                self.refresh_jobs()
            if self.error:
                self._clear_error()
        except Exception as exc:
            self._fail(exc)
        return new or self.state != before

    def _curves(self) -> dict[str, tuple[list[float], list[float]]]:
        """Each curve's points from the metrics as they stand (one point a step)."""
        train, valid = self.series.records("train"), self.series.records("valid")
        out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in (*LOSS_CURVES, VRMSE_CURVE)}

        def add(name: str, step: Any, value: Any) -> None:
            out[name][0].append(float(step))
            out[name][1].append(float(value))

        for row in train:
            if row.get("loss") is not None:
                add("train loss", row["step"], row["loss"])
        for row in valid:
            if row.get("loss") is not None:
                add("valid loss", row["step"], row["loss"])
            v = row.get("vrmse") or {}
            values = [float(x) for x in (v.values() if isinstance(v, dict) else [v]) if x is not None]
            if values:
                add(VRMSE_CURVE, row["step"], float(np.mean(values)))
        return out

    def _draw(self) -> None:
        """Send each changed curve at once, whole (a resumed run's repeated steps rewrite its end); nothing for
        an unchanged curve.

        Whole curves, not streamed points: in a notebook the browser sends the changes it applied back to the
        kernel, and a streamed point sent back is appended a second time there.
        """
        for name, (x, y) in self._curves().items():
            if (x, y) == self._drawn.get(name):
                continue
            panel = self.valid if name == VRMSE_CURVE else self.loss
            panel.set(name, np.array(x), np.array(y))
            self._drawn[name] = (x, y)
        # In a notebook the document holds changes made to Bokeh models directly until something pushes them.
        push_notebook(self._layout)

    def _show_status(self) -> None:
        job = self.job
        trains, dones = self.series.records("train"), self.series.records("done")
        last, done = (trains[-1] if trains else None), (dones[-1] if dones else None)
        parts = [f"**{job.name}** `{job.id}` · {job.backend} · **{self.state}**"]
        if last is not None:
            parts.append(f"step {last.get('step')} · loss {last.get('loss', float('nan')):.4g} · "
                         f"{last.get('samples_per_s', 0):.3g} samples/s")
        if done is not None:
            parts.append(f"checkpoint: `{Path(job.output_dir) / str(done.get('checkpoint', ''))}`")
        elif job.output_dir:
            parts.append(f"output: `{job.output_dir}`")
        self.status.object = " · ".join(parts)

    def cancel(self) -> None:
        """Cancel the attached job on every host."""
        if self.job is None:
            return
        try:
            self.job.cancel()
        except Exception as exc:
            self._fail(exc)
        self.poll()


def _add_markers(panel: CurvePanel) -> None:
    """A marker at each point of each curve, sharing the curve's data and legend entry (a curve of one
    point, such as a first validation, shows)."""
    figure = panel.figure
    items = {item.label.get("value") if isinstance(item.label, dict) else getattr(item.label, "value", None): item
             for legend in figure.legend for item in legend.items}
    for name, source in panel.sources.items():
        line = next(r for r in figure.renderers if getattr(r, "data_source", None) is source)
        marker = figure.scatter("x", "y", source=source, size=6, color=line.glyph.line_color, name=f"{name} points")
        if name in items:
            items[name].renderers.append(marker)
