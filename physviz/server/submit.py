"""POST physviz/api/jobs: a fine-tune job from the JupyterLab form, checked field by field, then submitted.

The form sends one JSON object (every key but ``data`` optional)::

    {"name": "ft-shallow-water", "data": "data/shallow_water", "model": "bundled",
     "steps": 20, "lr": 1e-4, "freeze": "none", "backend": "local",
     "resources": {"nodes": 1, "procs_per_node": 1, "gpus_per_node": 0, "time_limit": "00:30:00",
                   "partition": "gpu", "account": "..."},
     "ssh": {"hosts": ["node1", {"host": "node2", "port": 22, "user": "me", "key_file": "~/.ssh/id_ed25519"}],
             "shared_fs": false},
     "slurm": {"login": null},
     "environment": {"prologue": "module load cuda", "venv": "...", "python": "...", "workdir": "..."}}

Each value goes through the same checks as Python's ``JobSpec`` and ``TrainConfig`` (the typed loader
with their hooks and bounds, then ``JobSpec.validate()``), plus what only the server can tell:

- ``data`` and a checkpoint ``model`` path must exist on this server when the job reads them from
  here (local backend, Slurm without a login node, SSH without a shared file system); a relative
  path is taken from the server's root folder (where the file browser starts).
- ``name`` holds only letters, digits, spaces and ``. _ - + = @ : ,``: a name from a form never
  carries shell characters (Python's ``JobSpec`` accepts any name and quotes it).
- an SSH host must resolve to an address on this server (``getaddrinfo``); saved SSH profiles in
  the JupyterLab settings fill in known hosts, so a typo shows here, before anything starts.
- a Slurm ``resources.partition`` must be one ``sinfo`` lists (asked through the Slurm backend,
  on the login node if one is set).

A refusal is ``400 {"errors": {"field.path": "sentence", ...}, "message": first sentence}`` and
nothing is recorded or started; success is ``201`` with the job record. Only
``environment.prologue`` is shell code, by design (as in ``JobSpec``).
"""
from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from typing import Any

from physviz.errors import PhysvizError

FORM_KEYS = ("name", "data", "model", "steps", "lr", "freeze", "backend", "resources", "ssh", "slurm",
             "environment")
RESOURCE_KEYS = ("nodes", "procs_per_node", "gpus_per_node", "cpus_per_task", "mem", "time_limit", "partition",
                 "account")
ENVIRONMENT_KEYS = ("prologue", "venv", "python", "workdir")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._\-+=@:,]*$")
DEFAULT_STEPS = 20
DEFAULT_LR = 1e-4


class FormErrors(PhysvizError):
    """The form's values that cannot make a job: field path -> one sentence each."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(next(iter(errors.values())))
        self.errors = errors


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _clean(section: Any) -> dict[str, Any]:
    """A form section without blank values (an empty input means: the default)."""
    if not isinstance(section, Mapping):
        return {}
    return {k: (v.strip() if isinstance(v, str) and k != "prologue" else v)
            for k, v in section.items() if not _blank(v)}


def _message(exc: Exception) -> str:
    text = str(exc)
    return text[len("train_config: "):] if text.startswith("train_config: ") else text


class FormChecker:
    """Checks one form against the job spec's and train config's rules; collects one error per field."""

    def __init__(self, form: Any, root_dir: str) -> None:
        self.form = form if isinstance(form, Mapping) else {}
        self.root_dir = root_dir
        self.errors: dict[str, str] = {}
        if not isinstance(form, Mapping):
            self.errors["form"] = "The request body must be a JSON object of the form's fields."
        for key in self.form:
            if key not in FORM_KEYS:
                self.errors[str(key)] = f"Unknown field {key!r}; known fields: {', '.join(FORM_KEYS)}."

    # -- small helpers -----------------------------------------------------------------------
    def fail(self, field: str, message: str) -> None:
        """Record the first problem of a field."""
        self.errors.setdefault(field, message)

    def path(self, value: str) -> str:
        """A path as the server reads it: ~ expanded, relative paths from the server's root folder."""
        path = os.path.expanduser(value)
        return os.path.normpath(path if os.path.isabs(path) else os.path.join(self.root_dir, path))

    def try_(self, field: str, fn: Any, *args: Any) -> Any:
        """fn(*args), recording a PhysvizError under `field`."""
        try:
            return fn(*args)
        except PhysvizError as exc:
            self.fail(field, _message(exc))
            return None

    # -- the checks ------------------------------------------------------------------------------
    def check(self) -> dict[str, Any]:
        """The JobSpec dict of a valid form; raise FormErrors naming every field that is wrong."""
        from physviz.jobs.spec import JobSpec

        if self.errors:
            raise FormErrors(self.errors)
        form = self.form
        backend = form.get("backend") or "local"
        self.try_("backend", JobSpec.from_dict, {"backend": backend})
        name = self.name(form.get("name"))
        resources = self.section("resources", RESOURCE_KEYS)
        environment = self.section("environment", ENVIRONMENT_KEYS)
        ssh, slurm = self.ssh(backend, resources), self.slurm(backend)
        paths_here = (backend == "local" or (backend == "slurm" and not slurm.get("login"))
                      or (backend == "ssh" and not ssh.get("shared_fs")))
        train_config = self.train_config(paths_here)
        if backend == "slurm" and "backend" not in self.errors and "slurm.login" not in self.errors:
            self.partition(resources.get("partition"), slurm)
        if self.errors:
            raise FormErrors(self.errors)
        spec = {"name": name, "backend": backend, "train_config": train_config, "resources": resources,
                "environment": environment}
        if backend == "ssh":
            spec["ssh"] = ssh
        if backend == "slurm":
            spec["slurm"] = slurm
        # Rules across settings (nodes on a local job, the backend's own checks, the train config).
        try:
            JobSpec.from_dict(spec).validate()
        except PhysvizError as exc:
            raise FormErrors({self.field_of(str(exc)): _message(exc)}) from None
        return spec

    def name(self, value: Any) -> str:
        """The job name: the spec's rules, and no shell characters."""
        from physviz.jobs.spec import JobSpec

        if _blank(value):
            value = "fine-tune"
        if not isinstance(value, str):
            self.fail("name", "Give the job name as text.")
            return "job"
        value = value.strip()
        if not NAME_PATTERN.match(value):
            bad = sorted({c for c in value if not re.match(r"[A-Za-z0-9 ._\-+=@:,]", c)})
            shown = " ".join(repr(c) for c in bad) or repr(value[:1])
            self.fail("name", f"Job name {value!r} holds {shown}; use letters, digits, spaces and . _ - + = @ : , "
                              "(starting with a letter or digit).")
        self.try_("name", JobSpec.from_dict, {"name": value})
        return value

    def section(self, key: str, known: tuple[str, ...]) -> dict[str, Any]:
        """resources or environment: each value checked alone by the spec's loader, under its own field."""
        from physviz.jobs.spec import JobSpec

        raw = self.form.get(key)
        if raw is not None and not isinstance(raw, Mapping):
            self.fail(key, f"Field {key!r} must be an object of settings.")
            return {}
        values = _clean(raw)
        for sub, value in values.items():
            field = f"{key}.{sub}"
            if sub not in known:
                self.fail(field, f"Unknown field {field!r}; known: {', '.join(known)}.")
                continue
            self.try_(field, JobSpec.from_dict, {key: {sub: value}})
        return values

    def ssh(self, backend: str, resources: dict[str, Any]) -> dict[str, Any]:
        """ssh.hosts: each host by the spec's rules, and resolvable from this server."""
        from physviz.jobs.spec import SSHHost
        from physviz.typed_config import build

        raw = self.form.get("ssh") if backend == "ssh" else None
        if raw is None:
            if backend == "ssh":
                self.fail("ssh.hosts", "An SSH job needs at least one host.")
            return {}
        if not isinstance(raw, Mapping):
            self.fail("ssh", "Field 'ssh' must be an object with hosts and shared_fs.")
            return {}
        hosts = raw.get("hosts")
        if isinstance(hosts, str):
            hosts = [h for h in re.split(r"[\s,]+", hosts) if h]
        if not isinstance(hosts, list) or not hosts:
            self.fail("ssh.hosts", "An SSH job needs at least one host.")
            return {}
        shared = raw.get("shared_fs", False)
        if not isinstance(shared, bool):
            self.fail("ssh.shared_fs", "Field ssh.shared_fs must be true or false.")
        out = []
        for i, host in enumerate(hosts):
            field = "ssh.hosts"
            if isinstance(host, Mapping):
                host = _clean(host)
            entry = self.try_(field, build, SSHHost, {"host": host} if isinstance(host, str) else host,
                              f"ssh.hosts[{i}]", SSHHost)
            if entry is None:
                continue
            try:
                socket.getaddrinfo(entry.host, entry.port, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError):
                self.fail(field, f"Host {entry.host!r} (ssh.hosts[{i}]) is not known to this server: its name does "
                                 "not resolve; check the spelling or pick a saved SSH profile.")
            out.append(host)
        nodes = resources.get("nodes", 1)
        if isinstance(nodes, int) and out and len(out) < nodes:
            self.fail("resources.nodes", f"resources.nodes={nodes} but ssh.hosts lists {len(out)}; "
                                         "add hosts or lower nodes.")
        return {"hosts": out, "shared_fs": bool(shared)}

    def slurm(self, backend: str) -> dict[str, Any]:
        """slurm.login: a login node (optional), by the spec's rules."""
        from physviz.jobs.spec import JobSpec

        raw = self.form.get("slurm") if backend == "slurm" else None
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.fail("slurm", "Field 'slurm' must be an object.")
            return {}
        values = _clean(raw)
        for sub in values:
            if sub not in ("login", "env"):
                self.fail(f"slurm.{sub}", f"Unknown field 'slurm.{sub}'; known: login, env.")
        self.try_("slurm.login", JobSpec.from_dict, {"slurm": values})
        return values

    def partition(self, partition: Any, slurm: dict[str, Any]) -> None:
        """The partition is one this cluster has (``sinfo``); nothing is asked without one."""
        if _blank(partition) or "resources.partition" in self.errors:
            return
        from physviz.jobs.backends import get_backend
        from physviz.jobs.spec import JobSpec

        spec = JobSpec.from_dict({"backend": "slurm", "command": ["true"], "slurm": slurm})
        try:
            rc, out, err = get_backend("slurm")._run(spec, ["sinfo", "--noheader", "--format=%R"], timeout=30)
        except PhysvizError as exc:
            self.fail("resources.partition", f"Could not ask Slurm for its partitions: {exc}")
            return
        if rc != 0:
            self.fail("resources.partition", f"sinfo failed ({rc}): {err.strip()[:300] or out.strip()[:300]}")
            return
        known = sorted({line.strip() for line in out.splitlines() if line.strip()})
        if partition not in known:
            self.fail("resources.partition", f"Slurm has no partition {partition!r}; this cluster has: "
                                             f"{', '.join(known) or 'none'}.")

    def train_config(self, paths_here: bool) -> dict[str, Any] | None:
        """The physviz.train config of the fine-tune, each value checked by TrainConfig's own rules."""
        from physviz.train.config import TrainConfig

        form = self.form
        data = form.get("data")
        if _blank(data) or not isinstance(data, str):
            self.fail("data", "Give the data: a Well HDF5 file or a Well dataset folder.")
            data_path = None
        else:
            data_path = self.path(data.strip()) if paths_here else os.path.expanduser(data.strip())
            if paths_here and not os.path.exists(data_path):
                self.fail("data", f"Data path {data.strip()!r} does not exist on the server "
                                  f"(looked for {data_path}).")
        model = form.get("model")
        model = "bundled" if _blank(model) else model
        if not isinstance(model, str):
            self.fail("model", "Give the base model: 'bundled' or a checkpoint path.")
            model = "bundled"
        model = model.strip()
        if model != "bundled":
            model = self.path(model) if paths_here else os.path.expanduser(model)
            if paths_here and not os.path.isfile(model):
                self.fail("model", f"Checkpoint {form['model']!r} is not a file on the server; give an MPP or "
                                   "Walrus checkpoint (or a physviz .safetensors), or 'bundled'.")
        steps = DEFAULT_STEPS if _blank(form.get("steps")) else form.get("steps")
        lr = DEFAULT_LR if _blank(form.get("lr")) else form.get("lr")
        freeze = form.get("freeze") or "none"
        base: dict[str, Any] = {"output_dir": "output", "data": [{"path": "data"}]}
        for field, part in (("steps", {"steps": steps}), ("lr", {"optimizer": {"lr": lr}}),
                            ("freeze", {"finetune": {"freeze": freeze}})):
            self.try_(field, TrainConfig.from_dict, {**base, **part})
        if data_path is None or self.errors.keys() & {"data", "model", "steps", "lr", "freeze"}:
            return None
        return self.build_config(data_path, model, int(steps), float(lr), str(freeze), paths_here)

    @staticmethod
    def build_config(data: str, model: str, steps: int, lr: float, freeze: str, paths_here: bool) -> dict[str, Any]:
        """A fine-tune config from the example config's shape (context, padding from the data when it is here)."""
        from physviz.train.example import example_config

        cfg: dict[str, Any] | None = None
        if paths_here:  # context length and padding from the data's first file
            try:
                cfg = example_config(data, "output", steps=steps)
            except (PhysvizError, OSError):
                cfg = None
        if cfg is None:  # the data is on the hosts (or unreadable here): the example's defaults
            cfg = {"output_dir": "output", "data": [{"path": data}], "model": {"overrides": {}}, "steps": steps,
                   "n_steps_input": 4, "batch": {"tokens": 1024, "scope": "rank", "accumulate": 1},
                   "optimizer": {"warmup_steps": max(0, min(10, steps // 5)), "schedule": "cosine", "clip": 1.0},
                   "checkpoint_every": max(1, steps // 2), "log_every": 1, "valid_batches": 1, "seed": 0}
        cfg["model"] = {"init_from": model, "overrides": {k: v for k, v in cfg["model"]["overrides"].items()
                                                          if k == "pad_to_patch"}}
        cfg["optimizer"]["lr"] = lr
        cfg["finetune"] = {"freeze": freeze}
        cfg["valid_every"] = max(1, steps // 4)
        return cfg

    @staticmethod
    def field_of(message: str) -> str:
        """The form field a JobSpec.validate() sentence is about (best match; 'form' when none)."""
        for needle, field in (("resources.nodes", "resources.nodes"), ("ssh.hosts", "ssh.hosts"),
                              ("slurm.login", "slurm.login"), ("init_from", "model"), ("model", "model"),
                              ("data", "data"), ("Data path", "data"), ("steps", "steps"), ("lr", "lr"),
                              ("freeze", "freeze"), ("environment.", "environment"), ("resources.", "resources")):
            if needle in message:
                return field
        return "form"


def check_form(form: Any, root_dir: str) -> dict[str, Any]:
    """The JobSpec dict the form describes; raise FormErrors (field -> sentence) if any value is wrong."""
    return FormChecker(form, root_dir).check()


async def post_job(handler: Any) -> None:
    """Answer POST physviz/api/jobs: 201 with the job, or 400 with field errors (nothing started)."""
    import asyncio
    import json

    from physviz.server.handlers import fail

    try:
        form = json.loads(handler.request.body or b"{}")
    except ValueError:
        handler.send({"errors": {"form": "The request body is not JSON."},
                      "message": "The request body is not JSON."}, status=400)
        return
    root_dir = os.path.expanduser(handler.settings.get("server_root_dir") or os.getcwd())
    loop = asyncio.get_running_loop()
    try:
        spec = await loop.run_in_executor(None, check_form, form, root_dir)
    except FormErrors as exc:
        handler.send({"errors": exc.errors, "message": str(exc)}, status=400)
        return
    except PhysvizError as exc:
        raise fail(400, str(exc)) from None

    from physviz import jobs

    def run() -> dict[str, Any]:
        from physviz.server.handlers import job_dict

        return job_dict(jobs.submit(spec, store=handler.job_store))

    handler.send(await handler.call(run), status=201)
