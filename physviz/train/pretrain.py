"""The pretraining recipe of the bundled model: corpus, training, held-out evaluation, baselines, model card.

``physviz pretrain --recipe bundled --workdir DIR`` runs the stages in order; each one
skips what is already on disk, so an interrupted run resumes where it stopped:

1. ``corpus``: the built-in simulators write ``BUNDLED_CORPUS`` (Well splits, stats.yaml),
   and held-out test sets (other seeds, hence other random parameters; longer
   trajectories for 30-step rollouts) to ``DIR/eval``.
2. ``train``: ``physviz.train`` on the corpus with the recipe's config (checkpoints, resume),
   then the recipe's ``finish`` leg, if any (e.g. rollout training), from those weights.
3. ``fno``: one neuraloperator FNO per system with the same total wall-clock budget.
4. ``bundle``: the trained model with its recipe in the metadata, to ``DIR/bundle/`` (or
   ``--bundle-to``: ``physviz/model/weights/physviz-tiny.safetensors`` ships it).
5. ``evaluate``: one-step and 10/30-step rollout VRMSE on the test sets for that model,
   persistence and the FNO; spectra after 10 steps; ``DIR/results.json`` and figures.
6. ``card``: ``MODEL_CARD.md`` from the results.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physviz.errors import ParameterError

RECIPES = Path(__file__).resolve().parents[1] / "model" / "recipes"
EVAL_SEED = 900_000  # far from the corpus seeds (0 + 1000 * index)


@dataclass
class Recipe:
    """What the recipe makes: corpus entries, held-out sizes, context, and where the checkpoint goes."""

    name: str
    train: dict[str, Any]
    context: int = 4
    eval_trajectories: int = 8
    eval_steps: int = 36
    rollout_steps: tuple[int, ...] = (10, 30)
    exclude: tuple[str, ...] = ()
    only: tuple[str, ...] = ()  # restrict to these corpus datasets (tests, quick runs)
    corpus_scale: float = 1.0  # multiplies the corpus trajectory counts (at least 3 each)
    fno_seconds: float | None = None  # None: the model's own training time
    eval_ensemble: int = 1  # > 1: also evaluate the mean over this many patch-jittered passes ("ensemble")
    finish: dict[str, Any] = field(default_factory=dict)  # a second training leg from the first's weights (TrainConfig keys)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, name_or_path: str) -> "Recipe":
        """A recipe by name (physviz/model/recipes/NAME.yaml) or path."""
        import yaml

        path = Path(name_or_path)
        if not path.is_file():
            path = RECIPES / f"{name_or_path}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in RECIPES.glob("*.yaml"))
            raise ParameterError(f"Unknown recipe {name_or_path!r}; known recipes: {known}.")
        data = yaml.safe_load(path.read_text()) or {}
        known_keys = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known_keys)
        if unknown:
            raise ParameterError(f"Recipe {str(path)!r} has unknown key(s) {unknown}; known: {sorted(known_keys)}.")
        if "rollout_steps" in data:
            data["rollout_steps"] = tuple(data["rollout_steps"])
        for key in ("exclude", "only"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def corpus_entries(recipe: Recipe) -> tuple[Any, ...]:
    """The corpus entries of a recipe (BUNDLED_CORPUS minus the excluded systems)."""
    from physviz.fields.simulate.corpus import BUNDLED_CORPUS

    return tuple(e for e in BUNDLED_CORPUS if e.system not in recipe.exclude and e.name() not in recipe.exclude
                 and (not recipe.only or e.name() in recipe.only))


def make_corpus(recipe: Recipe, workdir: Path, progress: bool = True) -> dict[str, Path]:
    """Generate the training corpus and the held-out test sets; return test set name -> file."""
    from physviz.fields import to_well
    from physviz.fields.simulate.corpus import BUNDLED_CORPUS, generate_corpus
    from physviz.fields.simulate.run import simulate

    wanted = {e.name() for e in BUNDLED_CORPUS if not recipe.only or e.name() in recipe.only}
    generate_corpus(workdir / "corpus", tuple(e for e in BUNDLED_CORPUS if e.name() in wanted),
                    scale=recipe.corpus_scale, progress=progress)
    out: dict[str, Path] = {}
    for i, entry in enumerate(BUNDLED_CORPUS):
        if entry.name() not in wanted:
            continue
        path = workdir / "eval" / f"{entry.name()}.hdf5"
        if not path.exists():
            params = {**entry.params, "steps": recipe.eval_steps}
            ds = simulate(entry.system, recipe.eval_trajectories, seed=EVAL_SEED + 1000 * i, progress=progress, **params)
            to_well(ds, path, stats=False)
        out[entry.name()] = path
    return out


def load_eval(path: Path) -> tuple[Any, list[str], list[int], np.ndarray]:
    """A test set: the Dataset, its fields, periodic flags and the (B, T, C, *S) array."""
    from physviz.fields import open_fields
    from physviz.model.evaluate import as_array, fields_of, periodic_flags

    ds = open_fields(path)
    fields = fields_of(ds)
    return ds, fields, periodic_flags(ds), as_array(ds, fields)


def load_train_array(dataset_dir: Path) -> np.ndarray:
    """The whole train split of a corpus dataset as (B, T, C, *S) (small enough for memory here)."""
    from physviz.fields import open_fields
    from physviz.model.evaluate import as_array, fields_of

    ds = open_fields(dataset_dir, split="train")
    return as_array(ds, fields_of(ds))


def train_fno_baselines(recipe: Recipe, workdir: Path, seconds_total: float, progress: bool = True,
                        workers: int = 1, systems: list[str] | None = None) -> dict[str, Path]:
    """One FNO per corpus dataset, an equal share of `seconds_total` each; saved under workdir/fno.

    A finished baseline is kept and skipped on a rerun; an unfinished one resumes from its
    checkpoint (``NAME.pt.partial``). With ``workers`` > 1 that many systems train at once, each in
    its own process with an equal share of the CPU threads (same wall clock, all cores in use).
    ``systems`` trains only those datasets, in that order (the share stays that of all datasets),
    so a budget too long for one sitting can be spread over several.
    """
    entries = corpus_entries(recipe)
    share = seconds_total / max(len(entries), 1)
    out = {e.name(): workdir / "fno" / f"{e.name()}.pt" for e in entries}
    if workers < 1:
        raise ParameterError(f"FNO workers must be at least 1, not {workers}.")
    names = list(out)
    if systems is not None:
        unknown = [s for s in systems if s not in out]
        if unknown:
            raise ParameterError(f"No dataset {unknown} in recipe {recipe.name!r}; its datasets are {names}.")
        names = list(dict.fromkeys(systems))
    todo = [(workdir / "corpus" / name, out[name]) for name in names if not out[name].exists()]
    if workers == 1:
        for dataset_dir, path in todo:
            _fit_fno_job(dataset_dir, path, recipe.context, share, 0, progress, 0)
    else:
        _run_fno_jobs(todo, recipe.context, share, workers, progress)
    return out


_STOPPED = 130  # exit code of an FNO worker stopped by a signal (its checkpoint saved)


@contextmanager
def _sigterm_raises_interrupt() -> Iterator[None]:
    """Inside (main thread only), SIGTERM raises KeyboardInterrupt, so ``kill PID`` of a run started in the
    background (where the shell makes it ignore SIGINT) still stops its workers at a checkpoint."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _run_fno_jobs(todo: list[tuple[Path, Path]], context: int, seconds: float, workers: int, progress: bool) -> None:
    """Train the baselines in `todo`, `workers` processes at a time; Ctrl-C, or SIGTERM to this process,
    stops them all at a checkpoint."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    queue, running = list(todo), {}
    try:
        with _sigterm_raises_interrupt():
            _drive_fno_jobs(ctx, queue, running, context, seconds, workers, threads, progress)
    finally:  # on Ctrl-C or a failure: each worker saves its checkpoint on SIGTERM and exits
        for proc in running:
            proc.terminate()
        for proc in running:
            proc.join()


def _drive_fno_jobs(ctx: Any, queue: list[tuple[Path, Path]], running: dict[Any, tuple[int, str]], context: int,
                    seconds: float, workers: int, threads: int, progress: bool) -> None:
    """Keep `workers` FNO processes busy until `queue` is empty; raise when one is stopped or fails."""
    while queue or running:
        while queue and len(running) < workers:
            free = min(set(range(workers)) - {slot for slot, _ in running.values()})
            dataset_dir, path = queue.pop(0)
            proc = ctx.Process(target=_fit_fno_job, args=(dataset_dir, path, context, seconds, threads, progress, free),
                               name=f"fno-{dataset_dir.name}")
            proc.start()
            running[proc] = (free, dataset_dir.name)
        for proc in list(running):
            proc.join(timeout=0.5)
            if proc.exitcode is None:
                continue
            _, name = running.pop(proc)
            if proc.exitcode == _STOPPED:
                raise KeyboardInterrupt(f"the FNO baseline of {name!r} was stopped at a checkpoint; rerun to resume")
            if proc.exitcode != 0:
                raise ParameterError(f"The FNO baseline of {name!r} failed (exit code {proc.exitcode}; its "
                                     "traceback is above); finished baselines are kept, rerun to resume.")


def _fit_fno_job(dataset_dir: Path, path: Path, context: int, seconds: float, threads: int, progress: bool,
                 slot: int) -> None:
    """Train (or resume) and save one system's FNO baseline; `threads` 0 keeps torch's default."""
    import torch

    from physviz.train.baselines import save_fno, train_fno

    if threads:  # a worker process (SIGTERM from the parent stops its fit at a checkpoint)
        torch.set_num_threads(threads)
    data = load_train_array(dataset_dir)
    try:
        model = train_fno(data, context, seconds, progress=progress, checkpoint=path.with_name(path.name + ".partial"),
                          bar_position=slot, name=dataset_dir.name)
    except KeyboardInterrupt:
        if threads:  # a worker: tell the parent it was stopped, not broken
            raise SystemExit(_STOPPED) from None
        raise
    save_fno(model, path)


def load_fno(path: Path, data_shape: tuple[int, ...], context: int) -> Any:
    """A saved FNO baseline for data of shape (B, T, C, *S)."""
    import torch

    from physviz.train.baselines import FNOBaseline

    state = torch.load(path, map_location="cpu", weights_only=True)
    C, n = data_shape[2], len(data_shape) - 3
    model = FNOBaseline(C, context, n, state["mean"].flatten().numpy(), state["std"].flatten().numpy(),
                        state["std_delta"].flatten().numpy())
    missing, unexpected = model.net.load_state_dict(state["net"], strict=False)
    if [k for k in missing if not k.startswith("_")] or unexpected:
        raise ParameterError(f"FNO baseline {str(path)!r} does not fit its network (missing {missing[:4]}, unexpected {unexpected[:4]}).")
    model.steps, model.seconds = int(state["steps"]), float(state["seconds"])
    return model


def evaluate_all(recipe: Recipe, workdir: Path, model: Any, fno: dict[str, Path] | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Skill of the model, persistence and the FNO on every held-out test set; spectra after 10 steps."""
    from tqdm.auto import tqdm

    from physviz.model.evaluate import autoregress, evaluate, live_trajectories, model_predictor, persistence

    results: dict[str, Any] = {}
    spectra: dict[str, Any] = {}
    max_steps = max(recipe.rollout_steps)
    paths = sorted((workdir / "eval").glob("*.hdf5"))
    for path in tqdm(paths, desc="evaluate", disable=not progress):
        name = path.stem
        ds, fields, bcs, data = load_eval(path)
        live = live_trajectories(data, start=recipe.context)
        excluded = int((~live).sum())
        data = data[live]
        predictors = {"model": model_predictor(model, fields, bcs), "persistence": persistence}
        if recipe.eval_ensemble > 1:
            predictors["ensemble"] = model_predictor(model, fields, bcs, ensemble=recipe.eval_ensemble)
        if fno and name in fno and fno[name].exists():
            predictors["fno"] = load_fno(fno[name], data.shape, recipe.context)
        row: dict[str, Any] = {"fields": fields, "trajectories": int(data.shape[0]), "frames": int(data.shape[1]),
                               "resolution": list(data.shape[3:]), "excluded_uniform": excluded}
        for pname, pred in predictors.items():
            skill = evaluate(pred, data, recipe.context, max_steps, fields)
            row[pname] = {"one_step": skill.one_step, "per_field_one_step": skill.per_field_one_step,
                          "curve": [float(v) for v in skill.rollout],
                          **{f"rollout_{k}": skill.mean_rollout(k) for k in recipe.rollout_steps}}
        results[name] = row
        # spectra of the first field after 10 steps, model vs truth (2D: isotropic; 3D: isotropic over x, y, z)
        k = min(10, data.shape[1] - recipe.context)
        roll = autoregress(predictors["model"], data[:, :recipe.context], k)
        spectra[name] = _spectra(roll[:, -1], data[:, recipe.context + k - 1], fields)
    return {"skill": results, "spectra": spectra}


def _spectra(pred: np.ndarray, truth: np.ndarray, fields: list[str]) -> dict[str, Any]:
    """Isotropic spectra of each field of (B, C, *S) frames, averaged over the batch."""
    import xarray as xr

    from physviz.analysis import power_spectrum

    dims = ("trajectory", "x", "y", "z")[: pred.ndim - 1]
    out = {}
    for c, f in enumerate(fields):
        sp = power_spectrum(xr.DataArray(pred[:, c], dims=dims, name=f)).mean("trajectory")
        st = power_spectrum(xr.DataArray(truth[:, c], dims=dims, name=f)).mean("trajectory")
        out[f] = {"k": [float(v) for v in sp["wavenumber"].values], "pred": [float(v) for v in sp.values],
                  "truth": [float(v) for v in st.values]}
    return out


def write_results(workdir: Path, results: dict[str, Any]) -> Path:
    """results.json, atomically."""
    from physviz.fields.atomic import write_text_atomic

    path = workdir / "results.json"
    write_text_atomic(path, json.dumps(results, indent=1))
    return path


def floors(results: dict[str, Any], predictor: str = "model") -> dict[str, Any]:
    """The issue's floors, checked on the skill table for `predictor` ("model" or "ensemble")."""
    skill = {n: r for n, r in results["skill"].items() if predictor in r}
    half = {n: r[predictor]["one_step"] <= 0.5 * r["persistence"]["one_step"] for n, r in skill.items()}
    ten = {n: r[predictor]["rollout_10"] < r["persistence"]["rollout_10"] for n, r in skill.items()}
    fno = {n: r[predictor]["rollout_10"] < r["fno"]["rollout_10"] for n, r in skill.items() if "fno" in r}
    fno_one = {n: r[predictor]["one_step"] < r["fno"]["one_step"] for n, r in skill.items() if "fno" in r}
    return {"one_step_half_of_persistence": half, "rollout10_beats_persistence": ten,
            "beats_fno_rollout10": fno, "beats_fno_one_step": fno_one,
            "all_half": all(half.values()), "all_ten": all(ten.values()),
            "fno_wins": sum(fno.values()), "fno_systems": len(fno)}


def plot_figures(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Figures of the card: rollout VRMSE curves and spectra after 10 steps, one panel per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(results["skill"])
    cols = 4
    rows = -(-len(names) // cols)
    figs = {}
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        row = results["skill"][name]
        for pname, style in (("model", "-"), ("ensemble", "-."), ("persistence", "--"), ("fno", ":")):
            if row.get(pname, {}).get("curve"):  # an entry kept from an earlier card may have no per-step curve
                curve = row[pname]["curve"]
                ax.semilogy(np.arange(1, len(curve) + 1), curve, style, label=pname)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("rollout step")
        ax.set_ylabel("VRMSE")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    figs["rollout"] = out_dir / "rollout_vrmse.png"
    fig.savefig(figs["rollout"], dpi=90)
    plt.close(fig)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        sp = results["spectra"][name]
        for i, (f, s) in enumerate(sp.items()):
            k = np.asarray(s["k"])
            keep = k > 0
            color = f"C{i}"
            ax.loglog(k[keep], np.asarray(s["truth"])[keep], "-", color=color, label=f"{f} truth")
            ax.loglog(k[keep], np.asarray(s["pred"])[keep], "--", color=color, label=f"{f} model")
        ax.set_title(f"{name}: E(k) after 10 steps", fontsize=9)
        ax.set_xlabel("k")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    figs["spectra"] = out_dir / "spectra_10_steps.png"
    fig.savefig(figs["spectra"], dpi=90)
    plt.close(fig)
    return figs


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """fn(*args, **kwargs) and its wall-clock seconds."""
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - t0


# -- the pipeline -------------------------------------------------------------------
STAGES = ("corpus", "train", "fno", "evaluate", "bundle", "transfer", "card")


def train_config(recipe: Recipe, workdir: Path) -> dict[str, Any]:
    """The physviz.train config of the recipe, with the corpus datasets and output_dir filled in."""
    cfg = json.loads(json.dumps(recipe.train))
    cfg["output_dir"] = str(workdir / "train")
    cfg["data"] = [{"path": str(workdir / "corpus" / e.name()), "name": e.name()} for e in corpus_entries(recipe)]
    return cfg


def finish_config(recipe: Recipe, workdir: Path) -> dict[str, Any]:
    """The physviz.train config of the recipe's finish leg: the main config with `finish` merged in, from its weights."""
    cfg = _deep_merge(train_config(recipe, workdir), json.loads(json.dumps(recipe.finish)))
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


def total_training_seconds(recipe: Recipe, workdir: Path) -> float:
    """Wall clock of the training and (if any) the finish leg."""
    extra = stream_seconds(workdir / "finish" / "metrics.jsonl") if recipe.finish else 0.0
    return training_seconds(workdir) + extra


def run_training(recipe: Recipe, workdir: Path, overrides: list[str] | None = None) -> Path:
    """`python -m physviz.train` on the recipe, then its finish leg (each resumes from its checkpoints); returns the final model."""
    import subprocess
    import sys

    import yaml

    from physviz.fields.atomic import write_text_atomic

    final = workdir / "train" / "final.safetensors"
    if not final.exists():
        path = workdir / "train.yaml"
        write_text_atomic(path, yaml.safe_dump(train_config(recipe, workdir), sort_keys=False))
        proc = subprocess.run([sys.executable, "-m", "physviz.train", str(path), *(overrides or [])])
        if proc.returncode != 0 or not final.exists():
            raise ParameterError(f"Training stopped with exit status {proc.returncode}; see {workdir / 'train'} (rerun to resume).")
    if recipe.finish and not final_checkpoint(recipe, workdir).exists():
        _run_train(finish_config(recipe, workdir), workdir / "finish")
    return final_checkpoint(recipe, workdir)


def training_seconds(workdir: Path, max_gap: float = 600.0) -> float:
    """Wall-clock seconds the recipe's training spent (see `stream_seconds`)."""
    return stream_seconds(workdir / "train" / "metrics.jsonl", max_gap)


def stream_seconds(path: Path, max_gap: float = 600.0) -> float:
    """Wall-clock seconds of a metrics stream: the sum of the gaps between lines, leaving out
    gaps over `max_gap` (the run was stopped and resumed later)."""
    times = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                times.append(float(json.loads(line)["time"]))
            except (ValueError, KeyError, TypeError):
                continue
    times.sort()
    return float(sum(d for d in np.diff(times) if d <= max_gap)) if len(times) > 1 else 0.0


def bundle(recipe: Recipe, workdir: Path, target: Path | None = None) -> Path:
    """Write the trained model with its recipe and training facts in the metadata (to `target`, or `bundle_path`)."""
    from physviz.model.checkpoint import load_model, save_model

    model = load_model(final_checkpoint(recipe, workdir))
    steps = _last_step(workdir / "train" / "metrics.jsonl")
    if recipe.finish:
        steps += _last_step(workdir / "finish" / "metrics.jsonl")
    meta = {"name": f"physviz-{recipe.name}", "recipe": recipe.name, "recipe_train": recipe.train,
            "corpus": [e.name() for e in corpus_entries(recipe)], "steps": steps,
            "training_seconds": round(total_training_seconds(recipe, workdir), 1)}
    if recipe.finish:
        meta["recipe_finish"] = recipe.finish
    return save_model(model, target or bundle_path(recipe, workdir), meta)


def _last_step(path: Path) -> int:
    """The highest step in a metrics stream (0 if there is none)."""
    steps = 0
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            steps = max(steps, int(json.loads(line).get("step", 0)))
        except ValueError:
            continue
    return steps


def bundle_path(recipe: Recipe, workdir: Path) -> Path:
    """Where `bundle` writes by default: workdir/bundle/<the package's file name>, never the package itself.

    Shipping a new model is a deliberate step: ``--bundle-to physviz/model/weights/NAME``.
    """
    from physviz.model.pretrained import BUNDLED

    return workdir / "bundle" / BUNDLED.get(recipe.name, f"physviz-{recipe.name}.safetensors")


def _fmt(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4f}"


def card_text(recipe: Recipe, workdir: Path, results: dict[str, Any], model_path: Path, figures: dict[str, str],
              commands: dict[str, str]) -> str:
    """MODEL_CARD.md of the bundled model from the measured results."""
    from physviz.fields.simulate.corpus import BUNDLED_CORPUS
    from physviz.model.checkpoint import read_model_info

    info = read_model_info(model_path)
    cfg, meta = info["config"], info.get("metadata", {})
    n_params = results.get("n_parameters")
    skill = results["skill"]
    model_minutes = meta.get("training_seconds", 0) / 60
    fno_share, fno_full, fno_short = fno_budget_split(results, meta.get("training_seconds", 0))
    has_ens = any("ensemble" in r for r in skill.values())
    cols = [("model", "model")] + ([("ensemble", f"x{recipe.eval_ensemble} jitter")] if has_ens else []) + \
        [("persistence", "persistence"), ("fno", "FNO")]
    lines = [
        f"# Model card: physviz-{recipe.name}",
        "",
        f"The pretrained transformer bundled inside physviz (`physviz.load_pretrained()`), file "
        f"`physviz/model/weights/{model_path.name}` ({model_path.stat().st_size / 1e6:.1f} MB), SHA-256 of the weights "
        f"`{info['hash'][:16]}...`. Every number below was measured by the commands given with it.",
        "",
        "## Architecture",
        "",
        f"MPP-family space-time transformer (`physviz.model.AViT`): per-sample reversible normalisation, field embedding "
        f"indexed by the physviz field registry ({cfg['n_states']} slots), hMLP patch stem (patch {cfg['patch_size']}), "
        f"{cfg['processor_blocks']} blocks of time attention then axial space attention (width {cfg['embed_dim']}, "
        f"{cfg['num_heads']} heads), field-specific hMLP decoder"
        f"{_refiner_words(cfg)}; 2D and 3D in one model"
        f"{', delta prediction' if cfg.get('delta_prediction') else ''}{', patch jittering in training' if cfg.get('jitter') else ''}; "
        f"{cfg['context_frames']} context frames. {n_params:,} parameters." if n_params else "",
        "",
        "## Data",
        "",
        "Generated by the built-in simulators (`physviz.fields.simulate`), `BUNDLED_CORPUS`:",
        "",
        "| dataset | system | parameters | trajectories (train/valid/test split 0.8/0.1/0.1) | resolution | frames |",
        "|---|---|---|---|---|---|",
    ]
    used = {e.name() for e in corpus_entries(recipe)}
    for e in BUNDLED_CORPUS:
        p = {k: v for k, v in e.params.items() if k not in ("resolution", "steps")}
        res = e.params.get("resolution")
        dims = 3 if e.system.endswith("3d") else 2
        mark = "" if e.name() in used else " (not used)"
        lines.append(f"| {e.name()}{mark} | {e.system} | {p} | {e.trajectories} | {res}^{dims} | {e.params.get('steps')} |")
    lines += [
        "",
        f"Held-out test sets: {recipe.eval_trajectories} trajectories per dataset with other seeds (so other random "
        f"initial conditions and random parameters), {recipe.eval_steps} frames each.",
        *_excluded_line(skill),
        "",
        "## Training",
        "",
        f"`physviz.train`, single process on this machine's CPU, {meta.get('steps', '?')} optimiser steps, "
        f"{meta.get('training_seconds', 0) / 60:.0f} min wall clock. Settings: `{json.dumps(recipe.train)}`"
        + (f", then a finish leg from those weights with `{json.dumps(recipe.finish)}` merged in." if recipe.finish else "."),
        "",
        *([str(recipe.extra["note"]), ""] if recipe.extra.get("note") else []),
        f"Reproduce: `{commands['pretrain']}`.",
        "",
        "## Measured skill on held-out trajectories",
        "",
        f"VRMSE (The Well's definition; 1 = as good as predicting the mean), averaged over fields and trajectories. "
        f"One-step: every window of the test trajectories. Rollouts: from frame {recipe.context}, fed back "
        f"autoregressively, mean over the first 10 / 30 steps. Persistence copies the last frame. The FNO baseline "
        f"(neuraloperator's FNO, one per system, time folded into channels) trained on the same data"
        + _fno_budget_words(results, model_minutes, fno_share, fno_full, fno_short),
        "",
        *_fno_steps_line(workdir, results),
        *_ensemble_line(recipe, skill),
        "| dataset | " + " | ".join(f"{span}: {label}" if j == 0 else label for span in ("one-step", "10-step", "30-step")
                                    for j, (_, label) in enumerate(cols)) + " |",
        "|---|" + "---|" * (3 * len(cols)),
    ]
    for name in sorted(skill):
        r = skill[name]
        mark = "*" if fno_full and name in fno_short else ""
        cells = [_fmt(r.get(p, {}).get(key)) + (mark if p == "fno" and p in r else "")
                 for key in ("one_step", "rollout_10", "rollout_30") for p, _ in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Reproduce: `{commands['evaluate']}`.",
        "",
        "### Floors",
        "",
    ]
    for pred, label in ([("model", "model")] + ([("ensemble", f"{recipe.eval_ensemble}-jitter ensemble")] if has_ens else [])):
        f = floors(results, pred)
        fno_verdict, wins_full, open_short = fno_floor_verdict(f["beats_fno_rollout10"], fno_full, fno_short)
        lines += [
            f"{label.capitalize()}:",
            "",
            f"- One-step VRMSE at most half of persistence's on every system: **{'holds' if f['all_half'] else 'does not hold'}**"
            + ("" if f["all_half"] else f" (fails on {sorted(k for k, v in f['one_step_half_of_persistence'].items() if not v)})") + ".",
            f"- 10-step rollout better than persistence on every system: **{'holds' if f['all_ten'] else 'does not hold'}**"
            + ("" if f["all_ten"] else f" (fails on {sorted(k for k, v in f['rollout10_beats_persistence'].items() if not v)})") + ".",
            f"- Better than the FNO baseline (10-step rollout) on at least three systems, counting only FNOs that "
            f"trained their full share of the budget: **{fno_verdict}** ({len(wins_full)} of {len(fno_full)}"
            + (f": {wins_full}" if wins_full else "")
            + (f"; on the other {len(fno_short)} the FNO had a smaller budget and "
               + (f"the model beats it on {open_short}, which do not count yet" if open_short else
                  "the model loses even to that")
               if fno_short else "")
            + ").",
            "",
        ]
    if results.get("fno_note"):  # what the measurements mean, written by whoever ran them (results.json)
        lines += [str(results["fno_note"]), ""]
    lines += [
        f"![rollout VRMSE]({figures['rollout']})",
        "",
        "## Spectra after 10 steps",
        "",
        "Isotropic power spectrum of each field after a 10-step rollout, model (dashed) against the truth (solid), mean over the test trajectories.",
        "",
        f"![spectra]({figures['spectra']})",
        "",
    ]
    transfer = results.get("transfer")
    lines += ["## Transfer to compressible flow", ""]
    if transfer:
        lines += transfer_section(transfer, figures)
    else:
        lines += ["Not measured yet: the transfer experiment (a second model pretrained without the compressible-flow "
                  "data, fine-tuned on 25-200 low- and high-Mach trajectories against the same architecture from scratch) "
                  f"is `{commands['transfer']}`; it has not been run for this checkpoint.", ""]
    return "\n".join(lines)


def _ensemble_line(recipe: Recipe, skill: dict[str, Any]) -> list[str]:
    """What the ensemble column is, when the results have one."""
    if not any("ensemble" in r for r in skill.values()):
        return []
    return [f"The \"x{recipe.eval_ensemble} jitter\" column is the same model averaged over {recipe.eval_ensemble} "
            f"patch-jittered passes per step (shifts of the patch grid drawn from seed 0, as MPP and Walrus jitter; "
            f"`physviz.rollout(..., ensemble={recipe.eval_ensemble})`), at {recipe.eval_ensemble}x the inference cost.", ""]


def _excluded_line(skill: dict[str, Any]) -> list[str]:
    """The card's note on test trajectories left out because a field went uniform (VRMSE undefined there)."""
    out = {k: int(v.get("excluded_uniform", 0)) for k, v in skill.items() if v.get("excluded_uniform")}
    if not out:
        return []
    listed = ", ".join(f"{k}: {n}" for k, n in sorted(out.items()))
    return ["", f"Left out of the skill tables: test trajectories in which a field becomes uniform (the Gray-Scott "
            f"pattern dies out or never forms; VRMSE divides by its spatial variance, 0 there): {listed}. The skill "
            f"is measured on the remaining trajectories of those sets."]


def fno_trained_seconds(workdir: Path) -> float:
    """Total training seconds of the FNO baselines saved under workdir/fno (0 when there are none)."""
    import torch

    return float(sum(torch.load(p, map_location="cpu", weights_only=True).get("seconds", 0.0)
                     for p in (workdir / "fno").glob("*.pt")))


def fno_steps(workdir: Path) -> dict[str, int]:
    """Optimiser steps each FNO baseline saved under workdir/fno reached ({} when there are none)."""
    return {name: run["steps"] for name, run in fno_runs(workdir).items()}


def fno_runs(workdir: Path) -> dict[str, dict[str, Any]]:
    """Per FNO baseline saved under workdir/fno: steps, seconds, batch and threads (0 where not recorded)."""
    import torch

    out = {}
    for p in sorted((workdir / "fno").glob("*.pt")):
        state = torch.load(p, map_location="cpu", weights_only=True)
        out[p.stem] = {"steps": int(state["steps"]), "seconds": round(float(state.get("seconds", 0.0)), 1),
                       "batch": int(state.get("batch", 0)), "threads": int(state.get("threads", 0))}
    return out


def keep_earlier_fno(skill: dict[str, Any], earlier: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Give each row of `skill` without an FNO the FNO row of an `earlier` evaluation, if it has one.

    Returns the kept rows' training records (from the earlier ``fno_runs``), marked ``earlier``, so
    a card can say which FNO numbers come from which budget."""
    old_skill, old_runs = earlier.get("skill") or {}, earlier.get("fno_runs") or {}
    kept: dict[str, dict[str, Any]] = {}
    for name, row in skill.items():
        old = old_skill.get(name) or {}
        if "fno" in row or "fno" not in old or name not in old_runs:
            continue
        row["fno"] = old["fno"]
        kept[name] = {**old_runs[name], "earlier": True}
    return kept


def fno_budget_split(results: dict[str, Any], model_seconds: float) -> tuple[float, list[str], list[str]]:
    """(each system's equal share of the model's training time, systems whose FNO trained that share,
    systems whose FNO had less) over the rows of the skill table that have an FNO."""
    with_fno = [n for n, r in sorted(results["skill"].items()) if "fno" in r]
    share = model_seconds / max(len(results["skill"]), 1)
    runs = results.get("fno_runs") or {}
    if not runs:  # older results: one total for every system
        full = results.get("fno_seconds", 0) >= 0.95 * model_seconds
        return share, (with_fno if full else []), ([] if full else with_fno)
    full = [n for n in with_fno if n in runs and runs[n]["seconds"] >= 0.95 * share]
    return share, full, [n for n in with_fno if n not in full]


def fno_floor_verdict(wins: dict[str, bool], full: list[str], short: list[str]) -> tuple[str, list[str], list[str]]:
    """("holds" / "does not hold" / "not established", systems won against a full-budget FNO, systems won
    against a smaller-budget one). Only full-budget wins count; a smaller-budget system stays open only if
    the model beats even that FNO there."""
    won = sorted(k for k in full if wins.get(k))
    still_open = sorted(k for k in short if wins.get(k))
    verdict = "holds" if len(won) >= 3 else "does not hold" if len(won) + len(still_open) < 3 else "not established"
    return verdict, won, still_open


def _fno_budget_words(results: dict[str, Any], model_minutes: float, share: float, full: list[str],
                      short: list[str]) -> str:
    """The card's words on the FNO budget: equal to the model's training time, smaller, or mixed per system."""
    if not short:
        return (f" for {results.get('fno_seconds', 0) / 60:.0f} min of wall clock in all, split evenly over systems "
                f"({share / 60:.1f} min each; the model's training time).")
    if not full:
        return (f" for {results.get('fno_seconds', 0) / 60:.0f} min of wall clock in all, split evenly over systems; "
                f"the model trained {model_minutes:.0f} min, so the FNO had the smaller budget (its stage ran for an "
                f"earlier, shorter training of the model and was not rerun).")
    runs = results.get("fno_runs") or {}
    minutes = sorted({round(runs[n]["seconds"] / 60, 1) for n in short if n in runs})
    return (f", each system's FNO for an equal share of the model's training time ({model_minutes:.0f} min / "
            f"{len(results['skill'])} = {share / 60:.1f} min). {len(full)} systems have that FNO ({', '.join(full)}); "
            f"the FNO numbers of the other {len(short)} ({', '.join(short)}), marked *, are kept from an earlier, "
            f"shorter FNO stage ({'-'.join(f'{m:g}' for m in minutes[::max(len(minutes) - 1, 1)])} min each) until "
            f"theirs is trained (`--fno-systems` trains chosen systems, each for its full share).")


def _fno_steps_line(workdir: Path, results: dict[str, Any] | None = None) -> list[str]:
    """A line of the card with what each FNO baseline trained: steps, time, batch, threads (from results, else disk)."""
    runs = dict((results or {}).get("fno_runs") or {}) or fno_runs(workdir)
    if runs:
        return ["FNO training per system (optimiser steps and minutes in its share of the budget, samples per batch, "
                "CPU threads): "
                + ", ".join(f"{k} {r['steps']} steps" + (f" in {r['seconds'] / 60:.1f} min" if r.get("seconds") else "")
                            + (f" (batch {r['batch']}" + (f", {r['threads']} thread{'s' if r['threads'] != 1 else ''}"
                                                          if r.get("threads") else "") + ")" if r.get("batch") else "")
                            for k, r in runs.items()) + ".", ""]
    steps = dict((results or {}).get("fno_steps") or {})
    if not steps:
        return []
    return ["FNO optimiser steps reached in that budget (batch 16): "
            + ", ".join(f"{k} {v}" for k, v in steps.items()) + ".", ""]


def transfer_section(transfer: dict[str, Any], figures: dict[str, str]) -> list[str]:
    """The card's transfer table."""
    lines = ["| task | trajectories | pretrained T+1 | scratch T+1 | pretrained 5-step | scratch 5-step |", "|---|---|---|---|---|---|"]
    for task, rows in transfer["results"].items():
        for n, r in sorted(rows.items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {task} | {n} | {_fmt(r['pretrained']['one_step'])} | {_fmt(r['scratch']['one_step'])} | "
                         f"{_fmt(r['pretrained']['rollout_5'])} | {_fmt(r['scratch']['rollout_5'])} |")
    lines += ["", transfer.get("note", ""), ""]
    for metric, label in (("one_step", "one-step"), ("rollout_5", "5-step")):
        wins = [(task, n) for task, rows in transfer["results"].items() for n, r in rows.items()
                if r["pretrained"][metric] < r["scratch"][metric]]
        total = sum(len(rows) for rows in transfer["results"].values())
        verdict = "holds" if len(wins) == total else "does not hold"
        lines.append(f"- Floor: pretrained beats scratch at every size, {label}: **{verdict}** ({len(wins)} of {total}).")
    lines.append("")
    if "transfer" in figures:
        lines += [f"![transfer]({figures['transfer']})", ""]
    if transfer.get("probes"):  # later probes of this experiment (markdown, recorded in results.json by hand)
        lines += [str(transfer["probes"]).rstrip(), ""]
    return lines


def run_pipeline(recipe: Recipe, workdir: Path, stages: list[str] | tuple[str, ...] = STAGES, *,
                 card: Path = Path("MODEL_CARD.md"), bundle_to: Path | None = None, fno_seconds: float | None = None,
                 overrides: list[str] | None = None, progress: bool = True, fno_workers: int = 1,
                 fno_systems: list[str] | None = None) -> dict[str, Any]:
    """Run the chosen stages of a recipe in order; return the results (also in workdir/results.json)."""
    from physviz.model.checkpoint import load_model

    workdir.mkdir(parents=True, exist_ok=True)
    model_path = bundle_to or bundle_path(recipe, workdir)
    results: dict[str, Any] = {}
    if (workdir / "results.json").exists():
        results = json.loads((workdir / "results.json").read_text())
    if "corpus" in stages:
        make_corpus(recipe, workdir, progress)
    if "train" in stages:
        run_training(recipe, workdir, overrides)
    budget = fno_seconds or recipe.fno_seconds or total_training_seconds(recipe, workdir)
    fno: dict[str, Path] = {}
    if "fno" in stages:
        fno = train_fno_baselines(recipe, workdir, budget, progress, workers=fno_workers, systems=fno_systems)
    elif (workdir / "fno").is_dir():
        fno = {p.stem: p for p in (workdir / "fno").glob("*.pt")}
    if "bundle" in stages:
        bundle(recipe, workdir, model_path)
    if "evaluate" in stages:
        model = load_model(model_path if model_path.exists() else final_checkpoint(recipe, workdir))
        skill = evaluate_all(recipe, workdir, model, fno, progress)
        if (workdir / "results.json").exists():  # keep what another stage (transfer) wrote meanwhile
            results = json.loads((workdir / "results.json").read_text())
        kept = keep_earlier_fno(skill["skill"], results)
        results.update(skill)
        results["n_parameters"] = sum(p.numel() for p in model.parameters())
        # what the FNOs trained for: those on disk, and the earlier ones kept where none is on disk
        runs = {**kept, **fno_runs(workdir)}
        results["fno_runs"] = dict(sorted(runs.items()))
        results["fno_steps"] = {k: r["steps"] for k, r in results["fno_runs"].items()}
        results["fno_seconds"] = round(sum(r["seconds"] for r in runs.values()), 1) if runs else budget
        write_results(workdir, results)
    if "transfer" in stages:
        transfer = run_transfer(recipe, workdir, progress)
        if (workdir / "results.json").exists():  # another stage may have written it meanwhile
            results = json.loads((workdir / "results.json").read_text())
        results["transfer"] = transfer
        write_results(workdir, results)
    if "card" in stages:
        card = Path(card)
        fig_dir = card.parent / "docs" / "model_card"
        figs = plot_figures(results, fig_dir)
        write_results(fig_dir, results)  # the card's data beside its figures, so the two never drift apart
        if results.get("transfer"):
            figs["transfer"] = plot_transfer(results["transfer"], fig_dir)
        rel = {k: str(v.relative_to(card.parent)) for k, v in figs.items()}
        commands = {
            "pretrain": f"physviz pretrain --recipe {recipe.name} --workdir WORKDIR",
            "evaluate": f"physviz pretrain --recipe {recipe.name} --workdir WORKDIR --stages evaluate,card "
                        f"--bundle-to physviz/model/weights/{model_path.name}",
            "transfer": f"physviz pretrain --recipe {recipe.name}_transfer --workdir WORKDIR",
        }
        from physviz.fields.atomic import write_text_atomic

        write_text_atomic(card, card_text(recipe, workdir, results, model_path, rel, commands))
    return results


def _refiner_words(cfg: dict[str, Any]) -> str:
    """The card's words for the full-resolution refiner, if the model has one."""
    w = int(cfg.get("refine_width") or 0)
    if not w:
        return ""
    return (f", then a full-resolution refiner of the predicted change ({w} channels: a 3^n convolution on the "
            "last two frames and the decoded change, a depthwise 3^n and a 1x1 layer, a 1x1 head)")


# -- transfer (MPP's experiment) ---------------------------------------------------------
def _transfer_data(recipe: Recipe, workdir: Path, progress: bool) -> dict[str, dict[str, Any]]:
    """Per task: a pool of max(sizes) trajectories written as nested subsets, and a test set."""
    from physviz.fields import to_well
    from physviz.fields.simulate.run import simulate

    ex = recipe.extra
    sizes = sorted(int(n) for n in ex["sizes"])
    out: dict[str, dict[str, Any]] = {}
    for t, (task, spec) in enumerate(sorted(ex["tasks"].items())):
        spec = dict(spec)
        system = spec.pop("system")
        root = workdir / "transfer" / task
        paths = {n: root / f"n{n}" for n in sizes}
        test = root / "test.hdf5"
        if not all((p / "stats.yaml").exists() for p in paths.values()) or not test.exists():
            pool = simulate(system, sizes[-1], seed=700_000 + 1000 * t, progress=progress, **spec)
            for n, p in paths.items():
                to_well(pool.isel(trajectory=slice(0, n)), p / "data" / "train" / f"{task}_{n}.hdf5")
            to_well(simulate(system, int(ex.get("test_trajectories", 16)), seed=800_000 + 1000 * t, progress=progress,
                             **spec), test, stats=False)
        out[task] = {"train": paths, "test": test}
    return out


def _run_train(cfg: dict[str, Any], out: Path) -> Path:
    """physviz.train in a subprocess (resumable); returns final.safetensors."""
    import subprocess
    import sys

    import yaml

    from physviz.fields.atomic import write_text_atomic

    final = out / "final.safetensors"
    if final.exists():
        return final
    out.mkdir(parents=True, exist_ok=True)
    path = out.parent / f"{out.name}.yaml"
    write_text_atomic(path, yaml.safe_dump({**cfg, "output_dir": str(out)}, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "physviz.train", str(path), "progress=false"])
    if proc.returncode != 0 or not final.exists():
        raise ParameterError(f"Training in {out} stopped with exit status {proc.returncode} (rerun to resume).")
    return final


def transfer_config(recipe: Recipe, data: Path, name: str, pretrained: Path | None) -> dict[str, Any]:
    """physviz.train config of one transfer run: fine-tune `pretrained`, or the same architecture from scratch (None)."""
    ex = recipe.extra
    base = json.loads(json.dumps(recipe.train))
    cfg = {**base, "data": [{"path": str(data), "name": name, "valid_split": None}],
           "steps": int(ex.get("finetune_steps", 150)), "checkpoint_every": 0, "valid_every": 0,
           "optimizer": {**base.get("optimizer", {}), "lr": float(ex.get("finetune_lr", 5e-4)), "warmup_steps": 10}}
    if pretrained is not None:
        cfg["model"] = {"init_from": str(pretrained)}
        cfg["finetune"] = dict(ex.get("finetune", {}))  # e.g. blocks_lr_scale: only a pretrained model has a processor to keep
    return cfg


def run_transfer(recipe: Recipe, workdir: Path, progress: bool = True) -> dict[str, Any]:
    """Pretrain without the excluded systems, then fine-tune vs scratch per task and size; evaluate one-step and k-step."""
    from physviz.model.checkpoint import load_model
    from physviz.model.evaluate import evaluate, model_predictor

    ex = recipe.extra
    data = _transfer_data(recipe, workdir, progress)
    pre = _run_train(train_config(recipe, workdir), workdir / "transfer" / "pretrain")
    k = int(ex.get("rollout", 5))
    results: dict[str, Any] = {}
    for task, d in data.items():
        ds, fields, bcs, test = load_eval(d["test"])
        results[task] = {}
        for n, path in sorted(d["train"].items()):
            row = {}
            for kind in ("pretrained", "scratch"):
                cfg = transfer_config(recipe, path, f"{task}_{n}", pre if kind == "pretrained" else None)
                final = _run_train(cfg, workdir / "transfer" / task / f"{kind}_n{n}")
                model = load_model(final)
                skill = evaluate(model_predictor(model, fields, bcs), test, recipe.context, k, fields)
                row[kind] = {"one_step": skill.one_step, f"rollout_{k}": skill.mean_rollout(k),
                             "rollout_5": skill.mean_rollout(5)}
            results[task][str(n)] = row
    return {"results": results, "pretrained_on": [e.name() for e in corpus_entries(recipe)],
            "finetune_steps": int(ex.get("finetune_steps", 150)),
            "note": f"Pretrained {recipe.train.get('steps')} steps without {list(recipe.exclude)}; each fine-tune and "
                    f"each scratch run: {ex.get('finetune_steps', 150)} steps, same settings"
                    + (f" (the fine-tunes also with finetune {dict(ex['finetune'])})" if ex.get("finetune") else "")
                    + f"; test: {ex.get('test_trajectories', 16)} held-out trajectories per task."}


def plot_transfer(transfer: dict[str, Any], out_dir: Path) -> Path:
    """Transfer curves: VRMSE against fine-tuning trajectories, pretrained vs scratch, one-step and 5-step."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted(transfer["results"])
    fig, axes = plt.subplots(1, 2 * len(tasks), figsize=(4 * 2 * len(tasks), 3.2), squeeze=False)
    i = 0
    for task in tasks:
        rows = transfer["results"][task]
        ns = sorted(int(n) for n in rows)
        for metric, title in (("one_step", "T+1"), ("rollout_5", "mean over T+5")):
            ax = axes[0, i]
            for kind, style in (("pretrained", "o-"), ("scratch", "s--")):
                ax.semilogx(ns, [rows[str(n)][kind][metric] for n in ns], style, label=kind)
            ax.set_xticks(ns, [str(n) for n in ns])  # one plain label per size (no crowded minor ticks)
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_title(f"{task}: {title}", fontsize=9)
            ax.set_xlabel("fine-tuning trajectories")
            ax.set_ylabel("VRMSE")
            ax.legend(fontsize=7)
            i += 1
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "transfer.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
