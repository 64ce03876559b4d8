"""`JobSpec`: what a job runs, on what resources, in which environment, through which backend.

A spec holds no secrets: SSH hosts name a key *file* (or rely on ssh-agent), never a
key or a password. Every value that ends up on a command line is passed as one argv
element or shell-quoted, so names and paths may hold spaces, quotes, `;`, `$()` or
newlines. `prologue` lines are the one exception: they are shell code by design
(`module load ...`) and run as written.

Loading (`JobSpec.from_dict` / `from_yaml`, on the typed loader) checks each value;
`JobSpec.validate()` checks the rules that involve several settings, asks the chosen
backend to check its own settings (SSH hosts, the Slurm login node) and checks the train
config with physviz.train's rules.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from physviz.jobs.errors import JobSpecError
from physviz.typed_config import Config, build, read_mapping, setting

BackendName = Literal["local", "ssh", "slurm"]
BACKENDS: tuple[str, ...] = get_args(BackendName)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OVERRIDE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")
_MEM = re.compile(r"^[0-9]+[KMGT]?$")
_SLURM_NAME = r"[A-Za-z0-9_.\-]+"  # partition and account names: no shell or option characters
_SECRET_KEYS = ("password", "passphrase", "private_key", "key", "secret", "token")
_RESERVED_ENV = ("PHYSVIZ_JOB_ID", "PHYSVIZ_JOB_DIR", "PHYSVIZ_OUTPUT_DIR", "PHYSVIZ_TIME_LIMIT")


# -- value checks (run on each value as it is loaded) -------------------------------------------
def check_text(value: Any, label: str, allow_newline: bool = True) -> None:
    """A string without NUL (and without line breaks where a line break cannot be passed on)."""
    if not isinstance(value, str):
        return  # the type check names what it must be
    if "\0" in value:
        raise JobSpecError(f"Setting {label} holds a NUL character, which no command line can carry.")
    if not allow_newline and ("\n" in value or "\r" in value):
        raise JobSpecError(f"Setting {label} holds a line break; give it on one line.")


def _text(value: Any, label: str) -> Any:
    check_text(value, label)
    return value


def _one_line(value: Any, label: str) -> Any:
    check_text(value, label, allow_newline=False)
    return value


def _texts(value: Any, label: str) -> Any:
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_text(item, f"{label}[{i}]")
    return value


def _path(value: Any, label: str) -> Any:
    check_text(value, label)
    if isinstance(value, str) and not value.strip():
        raise JobSpecError(f"Setting {label} is empty; remove it or give a path.")
    return value


def _name(value: Any, label: str) -> Any:
    check_text(value, label)
    if isinstance(value, str):
        if not value.strip():
            raise JobSpecError(f"Setting {label!r} is empty; give the job a name.")
        if len(value) > 200:
            raise JobSpecError(f"Setting {label!r} is longer than 200 characters; shorten it.")
    return value


def _command(value: Any, label: str) -> Any:
    if value is not None and (not isinstance(value, (list, tuple)) or not value):
        raise JobSpecError(f"Setting {label!r} must be a non-empty list of strings (one argv element each).")
    return _texts(value, label)


def _overrides(value: Any, label: str) -> Any:
    if not isinstance(value, (list, tuple)):
        return value
    for i, item in enumerate(value):
        if not isinstance(item, str) or "=" not in item:
            raise JobSpecError(f"{label}[{i}]={item!r} must look like key.sub=value (e.g. optimizer.lr=1e-4).")
        check_text(item, f"{label}[{i}]")
        key = item.split("=", 1)[0]
        if not _OVERRIDE_KEY.match(key):
            raise JobSpecError(f"{label}[{i}] has the key {key!r}; keys are dotted names like optimizer.lr.")
    return value


def _section(value: Any, label: str) -> Any:
    return {} if value is None else value  # a section given as null keeps its defaults


def _mem(value: Any, label: str) -> Any:
    if value is not None and (isinstance(value, bool) or not _MEM.match(str(value))):
        raise JobSpecError(f"Setting {label}={value!r} must look like 4000, 16G or 512M.")
    return value


def _time_limit(value: Any, label: str) -> Any:
    parse_time_limit(value)
    return value


def _sbatch_args(value: Any, label: str) -> Any:
    if isinstance(value, (list, tuple)):
        for i, arg in enumerate(value):
            if not isinstance(arg, str) or not arg.startswith("--"):
                raise JobSpecError(f"{label}[{i}]={arg!r} must be a long option such as --qos=high.")
            check_text(arg, f"{label}[{i}]", allow_newline=False)
    return value


def _prologue(value: Any, label: str) -> Any:
    if isinstance(value, str):
        value = value.splitlines()
    return _texts(value, label)


def _env(value: Any, label: str) -> Any:
    if not isinstance(value, Mapping):
        raise JobSpecError(f"Setting {label!r} must be a mapping of NAME: value.")
    out = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise JobSpecError(f"{label} has the variable name {key!r}; use letters, digits and _ only.")
        if key in _RESERVED_ENV:
            raise JobSpecError(f"{label}.{key} is set by physviz itself; remove it.")
        item = item if isinstance(item, str) else str(item)
        check_text(item, f"{label}.{key}")
        out[key] = item
    return out


def _slurm_names(value: Any, label: str) -> Any:
    """A Slurm partition (or a comma-separated list of them) or account: letters, digits, '_', '.', '-'."""
    check_text(value, label, allow_newline=False)
    if isinstance(value, str) and not re.fullmatch(f"{_SLURM_NAME}(,{_SLURM_NAME})*", value, re.ASCII):
        raise JobSpecError(f"Setting {label}={value!r} is not a Slurm name; use letters, digits, '_', '.' and '-' "
                           "(partitions: several joined by ',').")
    return value


def _user(value: Any, label: str) -> Any:
    check_text(value, label, allow_newline=False)
    if isinstance(value, str) and (not value or value.startswith("-") or any(c.isspace() or c in "@:/" for c in value)):
        raise JobSpecError(f"Setting {label}={value!r} is not a user name.")
    return value


def _host_name(value: Any, label: str) -> Any:
    check_text(value, label, allow_newline=False)
    if isinstance(value, str) and (not value or value.startswith("-") or any(c.isspace() for c in value)):
        raise JobSpecError(f"Setting {label}={value!r} is not a host name or address.")
    return value


def _host(value: Any, label: str) -> Any:
    """A host given as a name stands for {host: name}."""
    if isinstance(value, str):
        return {"host": value}
    if value is not None and not isinstance(value, (Mapping, SSHHost)):
        raise JobSpecError(f"Setting {label!r} must be a host name or a mapping with host, port, user, key_file.")
    return value


def _hosts(value: Any, label: str) -> Any:
    if not isinstance(value, (list, tuple)):
        raise JobSpecError(f"Setting {label!r} must be a list of hosts.")
    return [_host(v, f"{label}[{i}]") for i, v in enumerate(value)]


class _Spec(Config):
    """Every section reports problems as the job spec and refuses secret-looking keys."""

    config_name = "job spec"
    config_error = JobSpecError

    @staticmethod
    def refuse_key(key: str, label: str) -> str | None:
        """The message for a key that looks like a secret (None: the usual unknown-key message)."""
        if key.lower() in _SECRET_KEYS:
            return (f"Setting {label!r} looks like a secret; job specs never hold passwords or keys: "
                    "give key_file (a path) or use ssh-agent.")
        return None


# -- sections -----------------------------------------------------------------------------------
@dataclass
class Resources(_Spec):
    """Nodes, processes (or GPUs) per node, time limit and where a scheduler should place the job.

    ``procs_per_node`` 0 means one per GPU when ``gpus_per_node`` is set, else 1.
    ``time_limit`` is minutes (int) or "HH:MM:SS" / "D-HH:MM:SS". ``sbatch_args`` are extra
    ``--option=value`` arguments for sbatch (each one argv element).
    """

    config_hooks = {"mem": _mem, "time_limit": _time_limit, "partition": _slurm_names, "account": _slurm_names,
                    "sbatch_args": _sbatch_args}

    nodes: int = setting(1, min=1)
    procs_per_node: int = setting(0, min=0)
    gpus_per_node: int = setting(0, min=0)
    cpus_per_task: int | None = setting(None, min=1)
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
class Environment(_Spec):
    """Where and how the job runs on its hosts.

    ``python``: the interpreter on the hosts (default: this one for local jobs, ``python3``
    elsewhere); ``venv``: a virtual environment whose ``bin/python`` is used and whose
    ``bin`` goes first on PATH; ``prologue``: shell lines run first (``module load cuda``;
    a string is split into lines); ``env``: extra environment variables (not secrets: they
    are kept in the job record; values become strings); ``workdir``: folder on the hosts
    under which each job gets its own folder.
    """

    config_hooks = {"python": _path, "venv": _path, "workdir": _path, "prologue": _prologue, "env": _env}

    python: str | None = None
    venv: str | None = None
    prologue: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None


@dataclass
class SSHHost(_Spec):
    """One SSH host: address, port, user and the path of a private key file (never its contents).

    ``known_hosts``: a known_hosts file (default: ~/.ssh/known_hosts); ``check_host_key``
    false skips host key checks (only for throwaway test machines). ``rdzv_addr``: the
    address other nodes use to reach this host, if not ``host``.
    """

    config_hooks = {"host": _host_name, "user": _user, "key_file": _text, "known_hosts": _text,
                    "rdzv_addr": _host_name}

    host: str
    port: int = setting(22, min=1, max=65535)
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    check_host_key: bool = True
    rdzv_addr: str | None = None

    def label(self) -> str:
        """user@host:port, for messages."""
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"


@dataclass
class SSHSettings(_Spec):
    """Hosts of an SSH job (node i runs on hosts[i]) and whether they share a file system with this machine.

    A host is a mapping (host, port, user, key_file, ...) or just its name. ``shared_fs``
    true: the job folder is the same path here and on every host, nothing is copied. False:
    the config, data and checkpoint are staged to each host with SFTP and logs are read back
    over SFTP. The SSH backend checks these settings when a job is submitted.
    """

    config_hooks = {"hosts": _hosts}

    hosts: list[SSHHost] = field(default_factory=list)
    shared_fs: bool = False

    def __post_init__(self) -> None:
        self.hosts = [build(SSHHost, _host(h, f"ssh.hosts[{i}]"), f"ssh.hosts[{i}]")
                      for i, h in enumerate(self.hosts)]


@dataclass
class SlurmSettings(_Spec):
    """How to reach Slurm: ``sbatch`` here (``login`` null) or over SSH on a login node (a host mapping or name).

    ``env``: variables for the Slurm commands themselves (e.g. SLURM_CONF). The Slurm
    backend checks these settings when a job is submitted.
    """

    config_hooks = {"login": _host, "env": _env}

    login: SSHHost | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.login is not None:
            self.login = build(SSHHost, _host(self.login, "slurm.login"), "slurm.login")


_SECTIONS: dict[str, type[Config]] = {"resources": Resources, "environment": Environment, "ssh": SSHSettings,
                                       "slurm": SlurmSettings}


@dataclass
class JobSpec(_Spec):
    """A job: a `physviz.train` config (dict or YAML path) or a command, plus resources and backend.

    ``train_config`` runs ``python -m physviz.train CONFIG [overrides]`` in every worker;
    its ``output_dir`` is set to the job's output folder. ``command`` runs an argv instead
    (``python`` as first item means the environment's Python); it finds its folder in
    ``$PHYSVIZ_OUTPUT_DIR``. ``data`` and ``checkpoint`` are local paths staged to the hosts
    when they share no file system (config values equal to them are rewritten);
    ``checkpoint`` sets the config's ``model.init_from``.
    """

    config_hooks = {"name": _name, "command": _command, "overrides": _overrides, "data": _texts,
                    "checkpoint": _text, **{key: _section for key in _SECTIONS}}

    name: str = "job"
    backend: BackendName = "local"
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
        for key, cls in _SECTIONS.items():  # sections given as mappings (or None) when built directly
            value = getattr(self, key)
            if value is None or isinstance(value, Mapping):
                setattr(self, key, build(cls, dict(value or {}), key, JobSpec))
        if isinstance(self.train_config, os.PathLike):
            self.train_config = os.fspath(self.train_config)

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
        if isinstance(self.train_config, Mapping):
            import copy

            cfg = copy.deepcopy(dict(self.train_config))
        else:
            path = Path(os.path.expanduser(str(self.train_config)))
            if not path.is_file():
                raise JobSpecError(f"train_config {str(path)!r} is not a file; give a YAML path or a dict.")
            cfg = read_mapping(path, f"train_config {self.train_config!r}", JobSpecError)
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
        """Check the spec before submission (values, backend settings, train config); raise JobSpecError."""
        JobSpec.from_dict(self.to_dict())  # every value, also of a spec built directly
        if (self.train_config is None) == (self.command is None):
            raise JobSpecError("Give exactly one of 'train_config' (a physviz.train config) or 'command' (an argv).")
        if self.overrides and self.command is not None:
            raise JobSpecError("Setting 'overrides' applies to a train_config; put a command's options in it.")
        if self.backend == "local" and self.resources.nodes != 1:
            raise JobSpecError("A local job runs on one node; set resources.nodes=1 or use the ssh or slurm backend.")
        from physviz.jobs.backends import get_backend

        get_backend(self.backend).check_spec(self)
        cfg = self.load_train_config()
        if cfg is not None:
            remote_paths = (self.backend == "ssh" and self.ssh.shared_fs) or (
                self.backend == "slurm" and self.slurm.login is not None)
            _check_train_config(cfg, self.overrides, remote_paths)
        return self


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
    m = re.fullmatch(r"(?:([0-9]+)-)?([0-9]+):([0-9]{2})(?::([0-9]{2}))?", text)
    if re.fullmatch(r"[0-9]{1,9}", text):
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


def check_host_files(host: SSHHost, label: str) -> None:
    """The key and known_hosts files a host names exist on this machine."""
    if host.key_file is not None and not os.path.isfile(os.path.expanduser(host.key_file)):
        raise JobSpecError(f"{label}.key_file {host.key_file!r} is not a file; give the path of a private key.")
    if host.known_hosts is not None and not os.path.isfile(os.path.expanduser(host.known_hosts)):
        raise JobSpecError(f"{label}.known_hosts {host.known_hosts!r} is not a file.")


def _check_train_config(cfg: dict[str, Any], overrides: list[str], remote_paths: bool) -> None:
    """Check the train config with physviz.train's own (torch-free) config module when it is there.

    With `remote_paths` the checkpoint names a file on the hosts, so it is not looked for here.
    """
    try:
        from physviz.train.config import TrainConfig
    except ImportError:  # physviz.train not installed on this machine: the hosts check it
        return
    from physviz.errors import PhysvizError

    data = dict(cfg)
    data["output_dir"] = "output"  # the job sets it
    if remote_paths and isinstance(data.get("model"), dict) and data["model"].get("init_from") != "bundled":
        data["model"] = {**data["model"], "init_from": None}
    try:
        TrainConfig.from_yaml(data, list(overrides)).validate(check_data=False)
    except PhysvizError as exc:
        raise JobSpecError(f"train_config: {exc}") from None
