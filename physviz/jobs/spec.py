"""`JobSpec`: what a job runs, on what resources, in which environment, through which backend.

A spec holds no secrets: SSH hosts name a key *file* (or rely on ssh-agent), never a
key or a password. Every value that ends up on a command line is passed as one argv
element or shell-quoted, so names and paths may hold spaces, quotes, `;`, `$()` or
newlines. `prologue` lines are the one exception: they are shell code by design
(`module load ...`) and run as written.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from physviz.jobs.errors import JobSpecError

BACKENDS = ("local", "ssh", "slurm")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OVERRIDE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")
_MEM = re.compile(r"^[0-9]+[KMGT]?$")
_SECRET_KEYS = ("password", "passphrase", "private_key", "key", "secret", "token")
_RESERVED_ENV = ("PHYSVIZ_JOB_ID", "PHYSVIZ_JOB_DIR", "PHYSVIZ_OUTPUT_DIR", "PHYSVIZ_TIME_LIMIT")


@dataclass
class Resources:
    """Nodes, processes (or GPUs) per node, time limit and where a scheduler should place the job.

    ``procs_per_node`` 0 means one per GPU when ``gpus_per_node`` is set, else 1.
    ``time_limit`` is minutes (int) or "HH:MM:SS" / "D-HH:MM:SS". ``sbatch_args`` are extra
    ``--option=value`` arguments for sbatch (each one argv element).
    """

    nodes: int = 1
    procs_per_node: int = 0
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem: str | None = None
    time_limit: int | str | None = None
    partition: str | None = None
    account: str | None = None
    sbatch_args: list[str] = field(default_factory=list)

    @property
    def nproc(self) -> int:
        """Worker processes per node."""
        if self.procs_per_node:
            return self.procs_per_node
        return self.gpus_per_node or 1

    @property
    def world_size(self) -> int:
        """Total worker processes."""
        return self.nodes * self.nproc

    @property
    def time_limit_seconds(self) -> int | None:
        """The time limit in seconds (None: no limit)."""
        return parse_time_limit(self.time_limit)


@dataclass
class Environment:
    """Where and how the job runs on its hosts.

    ``python``: the interpreter on the hosts (default: this one for local jobs, ``python3``
    elsewhere); ``venv``: a virtual environment whose ``bin/python`` is used and whose
    ``bin`` goes first on PATH; ``prologue``: shell lines run first (``module load cuda``);
    ``env``: extra environment variables (not secrets: they are kept in the job record);
    ``workdir``: folder on the hosts under which each job gets its own folder.
    """

    python: str | None = None
    venv: str | None = None
    prologue: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None


@dataclass
class SSHHost:
    """One SSH host: address, port, user and the path of a private key file (never its contents).

    ``known_hosts``: a known_hosts file (default: ~/.ssh/known_hosts); ``check_host_key``
    false skips host key checks (only for throwaway test machines). ``rdzv_addr``: the
    address other nodes use to reach this host, if not ``host``.
    """

    host: str
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    check_host_key: bool = True
    rdzv_addr: str | None = None

    def label(self) -> str:
        """user@host:port, for messages."""
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"


@dataclass
class SSHSettings:
    """Hosts of an SSH job (node i runs on hosts[i]) and whether they share a file system with this machine.

    ``shared_fs`` true: the job folder is the same path here and on every host, nothing is
    copied. False: the config, data and checkpoint are staged to each host with SFTP and
    logs are read back over SFTP.
    """

    hosts: list[SSHHost] = field(default_factory=list)
    shared_fs: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.hosts, list):
            self.hosts = [_host(h, f"ssh.hosts[{i}]") for i, h in enumerate(self.hosts)]


@dataclass
class SlurmSettings:
    """How to reach Slurm: ``sbatch`` here (``login`` null) or over SSH on a login node.

    ``env``: variables for the Slurm commands themselves (e.g. SLURM_CONF).
    """

    login: SSHHost | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.login is not None:
            self.login = _host(self.login, "slurm.login")


@dataclass
class JobSpec:
    """A job: a `physviz.train` config (dict or YAML path) or a command, plus resources and backend.

    ``train_config`` runs ``python -m physviz.train CONFIG [overrides]`` in every worker;
    its ``output_dir`` is set to the job's output folder. ``command`` runs an argv instead
    (``python`` as first item means the environment's Python); it finds its folder in
    ``$PHYSVIZ_OUTPUT_DIR``. ``data`` and ``checkpoint`` are local paths staged to the hosts
    when they share no file system (config values equal to them are rewritten);
    ``checkpoint`` sets the config's ``model.init_from``.
    """

    name: str = "job"
    backend: str = "local"
    train_config: dict[str, Any] | str | None = None
    overrides: list[str] = field(default_factory=list)
    command: list[str] | None = None
    data: list[str] = field(default_factory=list)
    checkpoint: str | None = None
    resources: Resources = field(default_factory=Resources)
    environment: Environment = field(default_factory=Environment)
    ssh: SSHSettings = field(default_factory=SSHSettings)
    slurm: SlurmSettings = field(default_factory=SlurmSettings)

    def __post_init__(self) -> None:
        nested = {"resources": Resources, "environment": Environment, "ssh": SSHSettings, "slurm": SlurmSettings}
        for key, cls in nested.items():
            value = getattr(self, key)
            if value is None:
                setattr(self, key, cls())
            elif isinstance(value, dict):
                setattr(self, key, _build(cls, value, key))
        if isinstance(self.train_config, os.PathLike):
            self.train_config = os.fspath(self.train_config)

    # -- YAML and dicts ------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any) -> "JobSpec":
        """Build a spec from a plain dict; unknown keys raise JobSpecError."""
        if isinstance(data, JobSpec):
            return data
        if not isinstance(data, dict):
            raise JobSpecError(f"A job spec must be a mapping of settings, not {type(data).__name__}.")
        return _build(cls, data, "")

    @classmethod
    def from_yaml(cls, text_or_path: str | os.PathLike[str]) -> "JobSpec":
        """Read a spec from YAML text or a .yaml file."""
        import yaml

        text = _read_text(text_or_path, "job spec")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise JobSpecError(f"The job spec is not valid YAML ({first}).") from None
        return cls.from_dict(data or {})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able dict of every setting."""
        return asdict(self)

    def to_yaml(self, path: str | os.PathLike[str] | None = None) -> str:
        """YAML text; also written atomically to `path` if given."""
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        if path is not None:
            from physviz.fields.atomic import write_text_atomic

            write_text_atomic(path, text)
        return text

    # -- resolved values -------------------------------------------------------------
    def python(self) -> str:
        """The interpreter workers and helpers run with."""
        env = self.environment
        if env.venv:
            return env.venv.rstrip("/") + "/bin/python"
        if env.python:
            return env.python
        if self.backend == "local":
            import sys

            return sys.executable
        return "python3"

    def load_train_config(self) -> dict[str, Any] | None:
        """The train config as a dict (read from its YAML file if a path), with ``checkpoint`` applied."""
        if self.train_config is None:
            return None
        if isinstance(self.train_config, dict):
            cfg = _deepcopy(self.train_config)
        else:
            import yaml

            path = Path(os.path.expanduser(str(self.train_config)))
            if not path.is_file():
                raise JobSpecError(f"train_config {str(path)!r} is not a file; give a YAML path or a dict.")
            text = path.read_text()
            try:
                cfg = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                first = str(exc).splitlines()[0] if str(exc) else ""
                raise JobSpecError(f"train_config {self.train_config!r} is not valid YAML ({first}).") from None
            if not isinstance(cfg, dict):
                raise JobSpecError(f"train_config {self.train_config!r} must hold a YAML mapping of settings.")
        if self.checkpoint:
            model = cfg.get("model")
            if model is None:
                model = cfg["model"] = {}
            if not isinstance(model, dict):
                raise JobSpecError("train_config 'model' must be a mapping to take the job's checkpoint.")
            model["init_from"] = self.checkpoint
        return cfg

    def staged_paths(self) -> list[str]:
        """Local paths that go to hosts without a shared file system: data, checkpoint, dataset paths."""
        paths = list(self.data)
        if self.checkpoint and self.checkpoint != "bundled":
            paths.append(self.checkpoint)
        cfg = self.load_train_config()
        if cfg is not None:
            items = cfg.get("data") or []
            for item in items if isinstance(items, list) else [items]:
                if isinstance(item, dict) and isinstance(item.get("path"), str):
                    paths.append(item["path"])
        out: list[str] = []
        for p in paths:
            absolute = os.path.abspath(os.path.expanduser(p))
            if absolute not in out:
                out.append(absolute)
        return out

    # -- validation ----------------------------------------------------------------------
    def validate(self) -> "JobSpec":
        """Check every setting before submission; raise JobSpecError naming the first problem."""
        _check_text(self.name, "name", allow_newline=True)
        if not self.name.strip():
            raise JobSpecError("Setting 'name' is empty; give the job a name.")
        if len(self.name) > 200:
            raise JobSpecError("Setting 'name' is longer than 200 characters; shorten it.")
        if self.backend not in BACKENDS:
            raise JobSpecError(f"Setting backend={self.backend!r} is not valid; choose one of {', '.join(BACKENDS)}.")
        if (self.train_config is None) == (self.command is None):
            raise JobSpecError("Give exactly one of 'train_config' (a physviz.train config) or 'command' (an argv).")
        if self.command is not None:
            if not self.command or not all(isinstance(a, str) for a in self.command):
                raise JobSpecError("Setting 'command' must be a non-empty list of strings (one argv element each).")
            for i, arg in enumerate(self.command):
                _check_text(arg, f"command[{i}]", allow_newline=True)
        for i, item in enumerate(self.overrides):
            if not isinstance(item, str) or "=" not in item:
                raise JobSpecError(f"overrides[{i}]={item!r} must look like key.sub=value (e.g. optimizer.lr=1e-4).")
            _check_text(item, f"overrides[{i}]", allow_newline=True)
            if not _OVERRIDE_KEY.match(item.split("=", 1)[0]):
                key = item.split("=", 1)[0]
                raise JobSpecError(f"overrides[{i}] has the key {key!r}; keys are dotted names like optimizer.lr.")
        if self.overrides and self.command is not None:
            raise JobSpecError("Setting 'overrides' applies to a train_config; put a command's options in it.")
        for i, p in enumerate(self.data):
            _check_text(p, f"data[{i}]", allow_newline=True)
        if self.checkpoint is not None:
            _check_text(self.checkpoint, "checkpoint", allow_newline=True)
        self._validate_resources()
        self._validate_environment()
        if self.backend == "local" and self.resources.nodes != 1:
            raise JobSpecError("A local job runs on one node; set resources.nodes=1 or use the ssh or slurm backend.")
        if self.backend == "ssh":
            hosts = self.ssh.hosts
            if not hosts:
                raise JobSpecError("An ssh job needs ssh.hosts; list at least one {host: ..., key_file: ...}.")
            if len(hosts) < self.resources.nodes:
                n = self.resources.nodes
                raise JobSpecError(f"resources.nodes={n} but ssh.hosts lists {len(hosts)}; add hosts or lower nodes.")
            for i, h in enumerate(hosts):
                _check_host(h, f"ssh.hosts[{i}]")
            if not self.ssh.shared_fs:
                for p in self.staged_paths():
                    if not os.path.exists(p):
                        raise JobSpecError(f"Data path {p!r} does not exist here, so it cannot be staged to the hosts.")
        if self.backend == "slurm":
            if self.slurm.login is not None:
                _check_host(self.slurm.login, "slurm.login")
            _check_env(self.slurm.env, "slurm.env")
        cfg = self.load_train_config()
        if cfg is not None:
            remote_paths = (self.backend == "ssh" and self.ssh.shared_fs) or (
                self.backend == "slurm" and self.slurm.login is not None)
            _check_train_config(cfg, self.overrides, remote_paths)
        return self

    def _validate_resources(self) -> None:
        r = self.resources
        for name in ("nodes", "procs_per_node", "gpus_per_node"):
            value = getattr(r, name)
            low = 1 if name == "nodes" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise JobSpecError(f"Setting resources.{name}={value!r} must be an integer of at least {low}.")
        if r.cpus_per_task is not None and (isinstance(r.cpus_per_task, bool) or not isinstance(r.cpus_per_task, int)
                                            or r.cpus_per_task < 1):
            raise JobSpecError(f"Setting resources.cpus_per_task={r.cpus_per_task!r} must be a positive integer.")
        if r.mem is not None and not _MEM.match(str(r.mem)):
            raise JobSpecError(f"Setting resources.mem={r.mem!r} must look like 4000, 16G or 512M.")
        parse_time_limit(r.time_limit)
        for name in ("partition", "account"):
            value = getattr(r, name)
            if value is not None:
                _check_text(value, f"resources.{name}", allow_newline=False)
        for i, arg in enumerate(r.sbatch_args):
            if not isinstance(arg, str) or not arg.startswith("--"):
                raise JobSpecError(f"resources.sbatch_args[{i}]={arg!r} must be a long option such as --qos=high.")
            _check_text(arg, f"resources.sbatch_args[{i}]", allow_newline=False)

    def _validate_environment(self) -> None:
        e = self.environment
        for name in ("python", "venv", "workdir"):
            value = getattr(e, name)
            if value is not None:
                _check_text(value, f"environment.{name}", allow_newline=True)
                if not value.strip():
                    raise JobSpecError(f"Setting environment.{name} is empty; remove it or give a path.")
        for i, line in enumerate(e.prologue):
            _check_text(line, f"environment.prologue[{i}]", allow_newline=True)
        _check_env(e.env, "environment.env")


# -- helpers -------------------------------------------------------------------------------
def parse_time_limit(value: int | str | None) -> int | None:
    """Seconds from minutes (int) or "HH:MM:SS" / "D-HH:MM:SS" / "D-HH:MM"; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise JobSpecError(f"Setting resources.time_limit={value!r} must be minutes or HH:MM:SS.")
    if isinstance(value, int):
        if value <= 0:
            raise JobSpecError(f"Setting resources.time_limit={value!r} must be a positive number of minutes.")
        return value * 60
    text = str(value).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+):(\d{2})(?::(\d{2}))?", text)
    if text.isdigit():
        return parse_time_limit(int(text))
    if not m or (m.group(1) is None and m.group(4) is None):
        raise JobSpecError(f"Setting resources.time_limit={value!r} must be minutes, HH:MM:SS or D-HH:MM:SS.")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise JobSpecError(f"Setting resources.time_limit={value!r} must be positive.")
    return total


def format_slurm_time(seconds: int) -> str:
    """Seconds as Slurm's D-HH:MM:SS."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def _check_text(value: Any, label: str, allow_newline: bool) -> None:
    """A string without NUL (and without newlines where a newline cannot be passed on)."""
    if not isinstance(value, str):
        raise JobSpecError(f"Setting {label}={value!r} must be a string.")
    if "\0" in value:
        raise JobSpecError(f"Setting {label} holds a NUL character, which no command line can carry.")
    if not allow_newline and ("\n" in value or "\r" in value):
        raise JobSpecError(f"Setting {label} holds a line break; give it on one line.")


def _check_env(env: Any, label: str) -> None:
    if not isinstance(env, dict):
        raise JobSpecError(f"Setting {label} must be a mapping of NAME: value.")
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise JobSpecError(f"{label} has the variable name {key!r}; use letters, digits and _ only.")
        if key in _RESERVED_ENV:
            raise JobSpecError(f"{label}.{key} is set by physviz itself; remove it.")
        _check_text(value, f"{label}.{key}", allow_newline=True)


def _check_host(h: SSHHost, label: str) -> None:
    _check_text(h.host, f"{label}.host", allow_newline=False)
    if not h.host or h.host.startswith("-") or any(c.isspace() for c in h.host):
        raise JobSpecError(f"Setting {label}.host={h.host!r} is not a host name or address.")
    if isinstance(h.port, bool) or not isinstance(h.port, int) or not 0 < h.port < 65536:
        raise JobSpecError(f"Setting {label}.port={h.port!r} must be a port number (1-65535).")
    if h.user is not None:
        _check_text(h.user, f"{label}.user", allow_newline=False)
    if h.key_file is not None:
        _check_text(h.key_file, f"{label}.key_file", allow_newline=True)
        if not os.path.isfile(os.path.expanduser(h.key_file)):
            raise JobSpecError(f"{label}.key_file {h.key_file!r} is not a file; give the path of a private key.")
    if h.known_hosts is not None and not os.path.isfile(os.path.expanduser(h.known_hosts)):
        raise JobSpecError(f"{label}.known_hosts {h.known_hosts!r} is not a file.")
    if h.rdzv_addr is not None:
        _check_text(h.rdzv_addr, f"{label}.rdzv_addr", allow_newline=False)


def _check_train_config(cfg: dict[str, Any], overrides: list[str], remote_paths: bool) -> None:
    """Check the train config with physviz.train's own (torch-free) config module when it is there.

    With `remote_paths` the checkpoint names a file on the hosts, so it is not looked for here.
    """
    try:
        from physviz.train.config import TrainConfig, apply_overrides
    except ImportError:  # physviz.train not installed on this machine: the hosts check it
        return
    from physviz.errors import PhysvizError

    data = _deepcopy(cfg)
    data["output_dir"] = "output"  # the job sets it
    if remote_paths and isinstance(data.get("model"), dict) and data["model"].get("init_from") != "bundled":
        data["model"]["init_from"] = None
    try:
        TrainConfig.from_dict(apply_overrides(data, list(overrides))).validate(check_data=False)
    except PhysvizError as exc:
        raise JobSpecError(f"train_config: {exc}") from None


def _read_text(text_or_path: str | os.PathLike[str], what: str) -> str:
    """YAML text as given, or the contents of the file it names."""
    if isinstance(text_or_path, os.PathLike) or ("\n" not in str(text_or_path) and
                                                 str(text_or_path).endswith((".yaml", ".yml"))):
        path = Path(os.path.expanduser(str(text_or_path)))
        if not path.is_file():
            raise JobSpecError(f"The {what} file {str(path)!r} does not exist.")
        return path.read_text()
    return str(text_or_path)


def _deepcopy(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass `cls` from `data`, refusing unknown keys (and any secret-looking key)."""
    known = {f.name: f for f in fields(cls)}
    for key in data:
        label = f"{where}.{key}" if where else str(key)
        if key not in known:
            if str(key).lower() in _SECRET_KEYS:
                raise JobSpecError(
                    f"Setting {label!r} looks like a secret; job specs never hold passwords or keys: "
                    "give key_file (a path) or use ssh-agent."
                )
            raise JobSpecError(f"Unknown setting {label!r} in the job spec; known: {', '.join(sorted(known))}.")
    kwargs: dict[str, Any] = {}
    nested = {"resources": Resources, "environment": Environment, "ssh": SSHSettings, "slurm": SlurmSettings}
    for key, value in data.items():
        label = f"{where}.{key}" if where else key
        if cls is JobSpec and key in nested:
            if value is None:
                continue
            if not isinstance(value, (dict, nested[key])):
                raise JobSpecError(f"Setting {label!r} must be a mapping of settings.")
            kwargs[key] = value if isinstance(value, nested[key]) else _build(nested[key], value, label)
        elif cls is SSHSettings and key == "hosts":
            if not isinstance(value, list):
                raise JobSpecError(f"Setting {label!r} must be a list of hosts.")
            kwargs[key] = [_host(v, f"{label}[{i}]") for i, v in enumerate(value)]
        elif cls is SlurmSettings and key == "login":
            kwargs[key] = None if value is None else _host(value, label)
        elif key in ("prologue", "overrides", "data", "sbatch_args", "command") and value is not None:
            if isinstance(value, str) and key == "prologue":
                value = value.splitlines()
            if not isinstance(value, (list, tuple)):
                raise JobSpecError(f"Setting {label!r} must be a list.")
            kwargs[key] = [os.fspath(v) if isinstance(v, os.PathLike)
                           else str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                           for v in value]
        elif key == "env":
            if not isinstance(value, dict):
                raise JobSpecError(f"Setting {label!r} must be a mapping of NAME: value.")
            kwargs[key] = {k: v if isinstance(v, str) else str(v) for k, v in value.items()}
        elif key in ("data", "checkpoint", "train_config", "workdir", "python", "venv", "key_file") and isinstance(
                value, os.PathLike):
            kwargs[key] = os.fspath(value)
        else:
            kwargs[key] = value
    if cls is JobSpec and isinstance(kwargs.get("train_config"), os.PathLike):
        kwargs["train_config"] = os.fspath(kwargs["train_config"])
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise JobSpecError(f"The job spec section {where or 'top level'!r} is incomplete: {exc}.") from None


def _host(value: Any, label: str) -> SSHHost:
    if isinstance(value, SSHHost):
        return value
    if isinstance(value, str):
        return SSHHost(host=value)
    if not isinstance(value, dict):
        raise JobSpecError(f"Setting {label!r} must be a host name or a mapping with host, port, user, key_file.")
    if "host" not in value:
        raise JobSpecError(f"Setting {label!r} needs 'host'.")
    return _build(SSHHost, value, label)
