"""A pretraining recipe: what it trains on, how it trains and is evaluated; the physviz.train runs it makes."""
from __future__ import annotations

import copy
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from physviz.errors import OptionError
from physviz.typed_config import Config, dump_yaml, setting

CONFIGS = Path(__file__).resolve().parent / "configs"


class RecipeError(OptionError):
    """A recipe that cannot be found or read, or a run of it that cannot go on."""


@dataclass
class TransferSettings(Config):
    """The transfer experiment of a recipe: tasks, fine-tuning set sizes and the fine-tune runs.

    ``protocol``: 'fixed_steps' gives each run ``finetune_steps`` steps; 'early_stopping' trains
    each run until the one-step VRMSE on ``valid_trajectories`` other trajectories has not improved
    by more than ``min_delta`` plus ``min_rel_delta`` of its best for ``patience`` validations (every
    ``valid_every`` steps, at most ``max_steps``) and evaluates the best validation weights; its card
    reports how many trajectories scratch needs to match the pretrained model at ``reference_size``,
    and the floor (pretrained better at every size up to ``floor_upto``).
    """

    config_name: ClassVar[str] = "recipe"
    config_error: ClassVar[type[OptionError]] = RecipeError

    tasks: dict[str, dict[str, Any]]  # task -> simulate() arguments, with "system"
    sizes: list[int] = field(default_factory=lambda: [25, 50, 100, 200])  # fine-tuning trajectories
    test_trajectories: int = setting(16, min=1)
    finetune_steps: int = setting(150, min=1)
    finetune_lr: float = setting(5e-4, above=0)
    rollout: int = setting(5, min=1)  # rollout steps of the k-step VRMSE
    finetune: dict[str, Any] = field(default_factory=dict)  # physviz.train `finetune` settings of the pretrained arm
    protocol: Literal["fixed_steps", "early_stopping"] = "fixed_steps"
    valid_trajectories: int = setting(8, min=1)
    valid_every: int = setting(50, min=1)
    valid_batches: int = setting(8, min=1)
    patience: int = setting(5, min=1)
    min_delta: float = setting(0.0, min=0)
    min_rel_delta: float = setting(0.0, min=0, below=1)  # an improvement is by more than this share of the best
    max_steps: int = setting(5000, min=1)
    optimizer: dict[str, Any] = field(default_factory=dict)  # physviz.train optimizer settings of both arms
    reference_size: int = setting(2, min=1)
    floor_upto: int = setting(8, min=1)


@dataclass
class Recipe(Config):
    """What a recipe makes: corpus entries, training, held-out sizes, context and evaluation."""

    config_name: ClassVar[str] = "recipe"
    config_error: ClassVar[type[OptionError]] = RecipeError

    name: str
    train: dict[str, Any]  # a physviz.train config; the pipeline fills `data` and `output_dir`
    context: int = setting(4, min=1)
    eval_trajectories: int = setting(8, min=1)
    eval_steps: int = setting(36, min=2)
    rollout_steps: list[int] = field(default_factory=lambda: [10, 30])
    exclude: list[str] = field(default_factory=list)  # corpus systems or datasets left out
    only: list[str] = field(default_factory=list)  # restrict to these corpus datasets (tests, quick runs)
    corpus_scale: float = setting(1.0, above=0)  # multiplies the corpus trajectory counts (at least 3 each)
    fno_seconds: float | None = None  # None: the model's own training time
    eval_ensemble: int = setting(1, min=1)  # > 1: also the mean over this many patch-jittered passes
    finish: dict[str, Any] = field(default_factory=dict)  # a second training leg from the first's weights
    transfer: TransferSettings | None = None
    # the zero_shot stage: Well files (or folders) of physics outside the corpus, relative ones from the repo
    zero_shot: list[str] = field(default_factory=lambda: ["docs/model_card/zero_shot"])
    zero_shot_steps: int = setting(10, min=1)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike[str]) -> Recipe:
        """A recipe by name (physviz/recipes/configs/NAME.yaml) or YAML path."""
        path = Path(name_or_path)
        if not path.is_file():
            path = CONFIGS / f"{name_or_path}.yaml"
        if not path.is_file():
            raise RecipeError(f"Unknown recipe {str(name_or_path)!r}; known recipes: {known_recipes()} "
                              "(or give the path of a recipe YAML file).")
        return cls.from_yaml(path)


def known_recipes() -> list[str]:
    """Names of the recipes shipped with physviz."""
    return sorted(p.stem for p in CONFIGS.glob("*.yaml"))


def train_config(recipe: Recipe, workdir: Path) -> dict[str, Any]:
    """The physviz.train config of the recipe, with the corpus datasets and output_dir filled in."""
    from physviz.recipes.corpus import corpus_entries

    cfg = copy.deepcopy(recipe.train)
    cfg["output_dir"] = str(workdir / "train")
    cfg["data"] = [{"path": str(workdir / "corpus" / e.name()), "name": e.name()} for e in corpus_entries(recipe)]
    return cfg


def finish_config(recipe: Recipe, workdir: Path) -> dict[str, Any]:
    """The physviz.train config of the recipe's finish leg: the main config with `finish` merged in, from its weights."""
    cfg = _deep_merge(train_config(recipe, workdir), copy.deepcopy(recipe.finish))
    cfg["model"] = {"init_from": str(workdir / "train" / "final.safetensors")}
    cfg["output_dir"] = str(workdir / "finish")
    return cfg


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, nested dicts key by key."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def final_checkpoint(recipe: Recipe, workdir: Path) -> Path:
    """The recipe's trained model: the finish leg's final.safetensors if the recipe has one, else the training's."""
    return workdir / ("finish" if recipe.finish else "train") / "final.safetensors"


def run_train(cfg: dict[str, Any], out: Path, overrides: Sequence[str] = ("progress=false",),
              threads: int | None = None, stop: threading.Event | None = None) -> Path:
    """physviz.train on `cfg` in a subprocess, writing to `out` (resumable); returns out/final.safetensors.

    The config is written beside `out` as ``OUT.yaml``; a run whose final checkpoint exists is skipped.
    ``threads``: the subprocess's CPU threads (None: torch's default, all cores); setting `stop` (from
    another thread) ends the subprocess.
    """
    from physviz.train.command import run_train_process

    final = out / "final.safetensors"
    if final.exists():
        return final
    out.mkdir(parents=True, exist_ok=True)
    path = out.parent / f"{out.name}.yaml"
    dump_yaml({**cfg, "output_dir": str(out)}, path)
    run_train_process(path, overrides, threads, stop)
    if not final.exists():
        raise RecipeError(f"Training in {str(out)!r} finished without {final.name}; rerun to resume.")
    return final


def thread_share(workers: int) -> int:
    """CPU threads of each of `workers` processes training side by side: an equal share of the cores."""
    return max(1, (os.cpu_count() or 1) // workers)


@dataclass
class PoolRun:
    """One run of `run_train_pool`: its physviz.train config, output folder, and the index of the run whose
    weights it starts from (it waits for that one to finish)."""

    cfg: dict[str, Any]
    out: Path
    after: int | None = None
    label: str = ""  # how progress lines name it (default: the output folder's name)


def run_train_pool(runs: Sequence[PoolRun], workers: int = 1, progress: bool = True) -> list[Path]:
    """`run_train` on each run, `workers` subprocesses at a time (each with an equal share of the CPU threads;
    one worker: all of them); returns their final checkpoints.

    A free worker takes the first run in `runs` order whose `after` run has finished, so the runs
    that do not wait (e.g. from-scratch baselines) train while the one the others wait for does.
    On two cores, two one-thread runs train about 1.3x as many steps per second as one run on both.
    When a run fails, no further run starts; the running ones finish and the first failure in `runs` order
    is raised. Ctrl-C, or SIGTERM to this process (``kill PID`` of a run in the background), ends the
    running ones too (each resumes from its last checkpoint when the pool is run again). With `progress`, a
    line on stderr says when each run starts and ends (a finished run found on disk is not trained again).
    """
    import sys
    import time

    from physviz.recipes.signals import sigterm_raises_interrupt

    if workers < 1:
        raise RecipeError(f"Training workers must be at least 1, not {workers}.")
    for i, r in enumerate(runs):
        if r.after is not None and not 0 <= r.after < i:
            raise RecipeError(f"Run {i} ({str(r.out)!r}) waits for run {r.after}, which is not an earlier run.")
    threads = thread_share(workers) if workers > 1 else None
    state = ["todo"] * len(runs)  # todo, running, done, failed
    errors: dict[int, BaseException] = {}
    halt = threading.Event()  # Ctrl-C or SIGTERM in the caller's thread: start nothing more, end the running runs
    cond = threading.Condition()

    def say(line: str) -> None:
        sys.stderr.write(line + "\n")  # one write: lines of workers side by side do not interleave
        sys.stderr.flush()

    def take() -> int | None:
        """The next run to start (None: nothing left for this worker); call holding `cond`."""
        while not errors and not halt.is_set():
            ready = [i for i, r in enumerate(runs) if state[i] == "todo" and (r.after is None or state[r.after] == "done")]
            if ready:
                state[ready[0]] = "running"
                return ready[0]
            if "running" not in state:
                return None
            cond.wait()
        return None

    def work() -> None:
        while True:
            with cond:
                i = take()
            if i is None:
                return
            name, start = runs[i].label or runs[i].out.name, time.monotonic()
            done_before = (runs[i].out / "final.safetensors").exists()
            if progress and not done_before:
                say(f"physviz: training {name} (run {i + 1} of {len(runs)})")
            try:
                run_train(runs[i].cfg, runs[i].out, threads=threads, stop=halt)
            except BaseException as exc:  # noqa: BLE001 - raised below, in the caller's thread
                with cond:
                    state[i], errors[i] = "failed", exc
                    cond.notify_all()
                return
            with cond:
                state[i] = "done"
                cond.notify_all()
                if progress:
                    what = "already trained" if done_before else f"trained in {(time.monotonic() - start) / 60:.1f} min"
                    say(f"physviz: {name} {what} ({state.count('done')} of {len(runs)} runs done)")

    pool = [threading.Thread(target=work, name=f"physviz-train-{w}") for w in range(min(workers, len(runs)))]
    with sigterm_raises_interrupt():
        for t in pool:
            t.start()
        try:
            for t in pool:
                t.join()
        finally:  # on Ctrl-C or SIGTERM in this thread: nothing else starts, the running runs are ended
            with cond:
                halt.set()
                cond.notify_all()
            for t in pool:
                t.join()
    if errors:
        raise errors[min(errors)]
    return [r.out / "final.safetensors" for r in runs]
