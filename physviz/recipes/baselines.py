"""The FNO baseline of the model card: neuraloperator's FNO, one per system, trained on the same data.

As in The Well's baselines, time is folded into channels (context x fields in, fields out)
and fields are z-scored with the training split's statistics; the network predicts the
z-scored change to the next frame (so it starts from persistence, which makes it a
strong baseline). Each system's FNO gets an equal share of a wall-clock budget. A batch holds
a fixed number of grid points (16 frames of 64x64, 2 of 32^3), so a 3D system gets as many steps
as a 2D one; training keeps a resumable checkpoint, so a stopped run loses at most a few minutes.
`train_fno_baselines` trains a recipe's baselines, several systems at once in worker processes.
"""
from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from physviz.errors import ParameterError
from physviz.recipes.signals import sigterm_raises_interrupt

if TYPE_CHECKING:
    from physviz.recipes.recipe import Recipe


@dataclass
class FNOConfig:
    """Size and training of one FNO baseline."""

    hidden_channels: int = 48
    modes_2d: int = 16
    modes_3d: int = 8
    n_layers: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int | None = None  # None: points_per_batch grid points per batch
    points_per_batch: int = 65536
    seconds: float = 300.0
    checkpoint_every: float = 60.0  # seconds of training between resumable checkpoints
    max_steps: int = 100_000
    seed: int = 0
    device: str = "auto"  # "auto": the GPU when there is one, else the CPU


def _require_neuralop() -> Any:
    try:
        from neuralop.models import FNO
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ParameterError(
            "The FNO baseline needs neuraloperator: pip install 'physviz[bench]' (or neuraloperator)."
        ) from exc
    return FNO


@contextmanager
def _deferred_interrupts() -> Iterator[threading.Event]:
    """While inside, SIGINT and SIGTERM set the yielded event (checked between steps) instead of
    stopping mid-update; a second Ctrl-C stops at once. Outside the main thread, signals are untouched."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in old:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


class FNOBaseline:
    """An FNO next-frame predictor with its normalisation; call it like any predictor (numpy in, numpy out)."""

    def __init__(self, n_fields: int, context: int, n_spatial: int, mean: np.ndarray, std: np.ndarray,
                 std_delta: np.ndarray, config: FNOConfig | None = None) -> None:
        import torch

        FNO = _require_neuralop()
        self.cfg = config or FNOConfig()
        self.context, self.n_fields, self.n_spatial = context, n_fields, n_spatial
        modes = self.cfg.modes_2d if n_spatial == 2 else self.cfg.modes_3d
        torch.manual_seed(self.cfg.seed)
        self.net = FNO(n_modes=(modes,) * n_spatial, hidden_channels=self.cfg.hidden_channels,
                       in_channels=context * n_fields, out_channels=n_fields, n_layers=self.cfg.n_layers)
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if self.cfg.device == "auto"
                                   else self.cfg.device)
        self.net.to(self.device)
        shape = (1, 1, n_fields) + (1,) * n_spatial
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(shape)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(shape)
        self.std_delta = torch.tensor(std_delta, dtype=torch.float32, device=self.device).view(shape[1:])
        self.steps = 0
        self.seconds = 0.0
        self.threads = 0  # torch threads of the last fit
        self.batch = 0  # samples per step of the last fit
        self.losses: list[float] = []

    def num_parameters(self) -> int:
        """Parameter count of the network."""
        return sum(p.numel() for p in self.net.parameters())

    def _forward(self, x: Any) -> Any:
        """Torch (B, T, C, *S) raw -> (B, C, *S) raw."""
        z = (x - self.mean) / self.std
        B = z.shape[0]
        delta = self.net(z.reshape(B, -1, *z.shape[3:]))
        return x[:, -1] + delta * self.std_delta[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Next frames (B, C, *S) from context (B, T, C, *S)."""
        import torch

        self.net.eval()
        with torch.inference_mode():
            xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
            return self._forward(xt).cpu().numpy()

    def batch_size(self, spatial: tuple[int, ...] | list[int]) -> int:
        """Samples per optimiser step for frames of this spatial shape."""
        if self.cfg.batch_size is not None:
            return self.cfg.batch_size
        return max(1, self.cfg.points_per_batch // math.prod(spatial))

    def fit(self, data: np.ndarray, seconds: float | None = None, progress: bool = False,
            checkpoint: str | Path | None = None, bar_position: int = 0, name: str = "") -> list[float]:
        """Train on trajectories (B, T, C, *S) for `seconds` of wall clock; return the loss per step.

        With `checkpoint`, the optimiser, sampler and clock are saved there every
        ``checkpoint_every`` seconds and a later call resumes from them (the file is removed at the end).
        """
        import torch
        from tqdm.auto import tqdm

        cfg = self.cfg
        budget = float(cfg.seconds if seconds is None else seconds)
        B, T, C, *S = data.shape
        if T <= self.context:
            raise ParameterError(f"Trajectories of {T} frames are too short for context {self.context}.")
        batch = self.batch_size(S)
        gen = np.random.default_rng(cfg.seed)
        data_t = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).to(self.device)
        opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        losses: list[float] = []
        done = 0.0  # seconds trained before this call (from the checkpoint)
        ckpt = Path(checkpoint) if checkpoint is not None else None
        if ckpt is not None and ckpt.exists():
            done, losses = self._resume(ckpt, opt, gen, budget, data.shape)
        n_win = T - self.context
        t0 = time.perf_counter()
        last_save = t0
        bar = tqdm(total=round(budget), initial=min(round(done), round(budget)), desc=f"FNO {name}".strip(), unit="s",
                   disable=not progress, position=bar_position, leave=bar_position == 0)
        self.net.train()
        rng_state = gen.bit_generator.state
        try:
            with _deferred_interrupts() as stop:
                while done + time.perf_counter() - t0 < budget and len(losses) < cfg.max_steps:
                    rng_state = gen.bit_generator.state  # a step cut short is redone with the same batch
                    if stop.is_set():
                        raise KeyboardInterrupt
                    frac = (done + time.perf_counter() - t0) / budget
                    for g in opt.param_groups:  # cosine decay over the wall-clock budget
                        g["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
                    b = gen.integers(0, B, batch)
                    t = gen.integers(0, n_win, batch) + self.context
                    bt, tt = torch.from_numpy(b).to(self.device), torch.from_numpy(t).to(self.device)
                    idx = tt[:, None] - self.context + torch.arange(self.context, device=self.device)[None]
                    x = data_t[bt[:, None], idx]  # (b, context, C, *S)
                    y = data_t[bt, tt]
                    pred = self._forward(x)
                    loss = (((pred - y) / self.std[0]) ** 2).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                    opt.step()
                    losses.append(loss.item())
                    now = time.perf_counter()
                    bar.set_postfix(step=len(losses), loss=f"{losses[-1]:.3g}", refresh=False)
                    bar.update(min(round(done + now - t0), round(budget)) - bar.n)
                    if ckpt is not None and now - last_save >= cfg.checkpoint_every:
                        self._save_partial(ckpt, opt, gen.bit_generator.state, budget, done + now - t0, losses,
                                           data.shape)
                        last_save = now
        except KeyboardInterrupt:  # keep what was trained (at a step boundary); a later call resumes from here
            if ckpt is not None:
                self._save_partial(ckpt, opt, rng_state, budget, done + time.perf_counter() - t0, losses, data.shape)
            raise
        finally:
            bar.close()
        self.steps, self.losses = len(losses), losses
        self.seconds = done + time.perf_counter() - t0
        self.threads, self.batch = torch.get_num_threads(), batch
        if ckpt is not None:
            ckpt.unlink(missing_ok=True)
        return losses

    def _save_partial(self, path: Path, opt: Any, rng: dict[str, Any], budget: float, seconds: float,
                      losses: list[float], shape: tuple[int, ...]) -> None:
        """Everything a resumed fit needs, written atomically."""
        import torch

        from physviz.fields.atomic import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save({"net": {k: v.cpu() for k, v in self.net.state_dict().items() if torch.is_tensor(v)},
                        "opt": opt.state_dict(), "rng": rng, "budget": budget,
                        "seconds": seconds, "losses": losses, "shape": list(shape)}, tmp)

    def _resume(self, path: Path, opt: Any, gen: np.random.Generator, budget: float,
                shape: tuple[int, ...]) -> tuple[float, list[float]]:
        """Load a partial fit into the network, optimiser and sampler; return (seconds done, losses)."""
        import torch

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ParameterError(f"The FNO checkpoint {str(path)!r} cannot be read ({exc}); delete it to start "
                                 "that baseline over.") from exc
        if abs(float(state["budget"]) - budget) > 1e-6 or list(state["shape"]) != list(shape):
            raise ParameterError(
                f"The FNO checkpoint {str(path)!r} is for a {state['budget']:.0f} s budget on data {tuple(state['shape'])}, "
                f"not {budget:.0f} s on {tuple(shape)}; delete it to start that baseline over.")
        self.net.load_state_dict(state["net"], strict=False)
        opt.load_state_dict(state["opt"])
        gen.bit_generator.state = state["rng"]
        return float(state["seconds"]), [float(v) for v in state["losses"]]


def train_fno(data: np.ndarray, context: int, seconds: float, config: FNOConfig | None = None,
              progress: bool = False, checkpoint: str | Path | None = None, bar_position: int = 0,
              name: str = "") -> FNOBaseline:
    """An FNO baseline fitted to trajectories (B, T, C, *S), with statistics from the same data."""
    B, T, C, *S = data.shape
    axes = (0, 1, *range(3, 3 + len(S)))
    mean = data.mean(axis=axes)
    std = data.std(axis=axes) + 1e-6
    std_delta = np.diff(data, axis=1).std(axis=axes) + 1e-6
    model = FNOBaseline(C, context, len(S), mean, std, std_delta, config)
    model.fit(data, seconds, progress=progress, checkpoint=checkpoint, bar_position=bar_position, name=name)
    return model


def save_fno(model: FNOBaseline, path: str | Path) -> None:
    """Keep a trained baseline (weights and normalisation) with torch.save, atomically."""
    import torch

    from physviz.fields.atomic import atomic_path

    with atomic_path(Path(path)) as tmp:
        weights = {k: v.cpu() for k, v in model.net.state_dict().items() if torch.is_tensor(v)}  # neuralop adds non-tensors
        torch.save({"net": weights, "mean": model.mean.cpu(), "std": model.std.cpu(), "std_delta": model.std_delta.cpu(),
                    "steps": model.steps, "seconds": model.seconds, "threads": model.threads, "batch": model.batch,
                    "losses": model.losses}, tmp)


def load_fno(path: Path, data_shape: tuple[int, ...], context: int) -> FNOBaseline:
    """A saved FNO baseline for data of shape (B, T, C, *S)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    C, n = data_shape[2], len(data_shape) - 3
    model = FNOBaseline(C, context, n, state["mean"].flatten().numpy(), state["std"].flatten().numpy(),
                        state["std_delta"].flatten().numpy())
    missing, unexpected = model.net.load_state_dict(state["net"], strict=False)
    if [k for k in missing if not k.startswith("_")] or unexpected:
        raise ParameterError(f"FNO baseline {str(path)!r} does not fit its network (missing {missing[:4]}, "
                             f"unexpected {unexpected[:4]}).")
    model.steps, model.seconds = int(state["steps"]), float(state["seconds"])
    return model


def fno_runs(workdir: Path) -> dict[str, dict[str, Any]]:
    """Per FNO baseline saved under workdir/fno: steps, seconds, batch and threads."""
    import torch

    out = {}
    for p in sorted((workdir / "fno").glob("*.pt")):
        state = torch.load(p, map_location="cpu", weights_only=True)
        out[p.stem] = {"steps": int(state["steps"]), "seconds": round(float(state["seconds"]), 1),
                       "batch": int(state["batch"]), "threads": int(state["threads"])}
    return out


# -- a recipe's baselines, in worker processes ------------------------------------------------------
def train_fno_baselines(recipe: Recipe, workdir: Path, seconds_total: float, progress: bool = True,
                        workers: int = 1, systems: list[str] | None = None) -> dict[str, Path]:
    """One FNO per corpus dataset, an equal share of `seconds_total` each; saved under workdir/fno.

    A finished baseline is kept and skipped on a rerun; an unfinished one resumes from its
    checkpoint (``NAME.pt.partial``). With ``workers`` > 1 that many systems train at once, each in
    its own process with an equal share of the CPU threads (same wall clock, all cores in use).
    ``systems`` trains only those datasets, in that order (the share stays that of all datasets),
    so a budget too long for one sitting can be spread over several.
    """
    from physviz.recipes.corpus import corpus_entries

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


def _run_fno_jobs(todo: list[tuple[Path, Path]], context: int, seconds: float, workers: int, progress: bool) -> None:
    """Train the baselines in `todo`, `workers` processes at a time; Ctrl-C, or SIGTERM to this process,
    stops them all at a checkpoint."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    from physviz.recipes.recipe import thread_share

    threads = thread_share(workers)
    queue: list[tuple[Path, Path]] = list(todo)
    running: dict[Any, tuple[int, str]] = {}
    try:
        with sigterm_raises_interrupt():
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

    from physviz.recipes.evaluate import load_train_array

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
