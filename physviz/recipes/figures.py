"""The model card's figures: rollout VRMSE curves, spectra after 10 steps, transfer curves and their validations."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Write a figure as PNG and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return path


def _panels(n: int, cols: int = 4) -> tuple[Any, list[Any]]:
    """A figure with `n` panels in rows of `cols`, the spare panels hidden."""
    rows = -(-n // cols)
    fig, axes = _pyplot().subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def plot_figures(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Figures of the card: rollout VRMSE curves and spectra after 10 steps, one panel per system."""
    names = sorted(results["skill"])
    fig, axes = _panels(len(names))
    for ax, name in zip(axes, names):
        row = results["skill"][name]
        for pname, style in (("model", "-"), ("ensemble", "-."), ("persistence", "--"), ("fno", ":")):
            if pname in row:
                curve = row[pname]["curve"]
                ax.semilogy(np.arange(1, len(curve) + 1), curve, style, label=pname)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("rollout step")
        ax.set_ylabel("VRMSE")
        ax.legend(fontsize=7)
    figs = {"rollout": _save(fig, out_dir / "rollout_vrmse.png")}
    fig, axes = _panels(len(names))
    for ax, name in zip(axes, names):
        for i, (f, s) in enumerate(results["spectra"][name].items()):
            k = np.asarray(s["k"])
            keep = k > 0
            ax.loglog(k[keep], np.asarray(s["truth"])[keep], "-", color=f"C{i}", label=f"{f} truth")
            ax.loglog(k[keep], np.asarray(s["pred"])[keep], "--", color=f"C{i}", label=f"{f} model")
        ax.set_title(f"{name}: E(k) after 10 steps", fontsize=9)
        ax.set_xlabel("k")
        ax.legend(fontsize=6)
    figs["spectra"] = _save(fig, out_dir / "spectra_10_steps.png")
    return figs


def plot_transfer(transfer: dict[str, Any], out_dir: Path) -> Path:
    """Transfer curves: VRMSE against fine-tuning trajectories, pretrained vs scratch, one-step and 5-step (with
    the early-stopping protocol's efficiency marks: the pretrained error at the reference size, where scratch meets it)."""
    import matplotlib.ticker

    tasks = sorted(transfer["results"])
    fig, axes = _pyplot().subplots(1, 2 * len(tasks), figsize=(4 * 2 * len(tasks), 3.2), squeeze=False)
    i = 0
    for task in tasks:
        rows = transfer["results"][task]
        ns = sorted(int(n) for n in rows)
        for metric, title in (("one_step", "T+1"), ("rollout_5", "mean over T+5")):
            ax = axes[0, i]
            for kind, style in (("pretrained", "o-"), ("scratch", "s--")):
                ax.semilogx(ns, [rows[str(n)][kind][metric] for n in ns], style, label=kind)
            eff = transfer.get("efficiency", {}).get(task, {}).get(metric)
            if eff:  # the pretrained error at the reference size, and where scratch reaches it
                ax.axhline(eff["pretrained"], color="0.6", lw=0.8, ls=":")
                need = eff["scratch_trajectories"]
                if need is not None:
                    at = f"<= {need:g}" if eff.get("at_most") else f"{need:.1f}"
                    ax.axvline(need, color="0.6", lw=0.8, ls=":", label=f"scratch matches at {at}")
            ax.set_xticks(ns, [str(n) for n in ns])  # one plain label per size (no crowded minor ticks)
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_title(f"{task}: {title}", fontsize=9)
            ax.set_xlabel("fine-tuning trajectories")
            ax.set_ylabel("VRMSE")
            ax.legend(fontsize=7)
            i += 1
    return _save(fig, out_dir / "transfer.png")


def plot_transfer_validation(transfer: dict[str, Any], out_dir: Path) -> Path | None:
    """The transfer runs' validation one-step VRMSE against fine-tuning step, one panel per task, a colour per size
    (pretrained solid, scratch dashed, a dot at each run's best step); None when no run has a curve."""
    tasks = [t for t in sorted(transfer["results"])
             if any(r.get("valid_curve") for row in transfer["results"][t].values() for r in row.values())]
    if not tasks:
        return None
    fig, axes = _pyplot().subplots(1, len(tasks), figsize=(5.5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = transfer["results"][task]
        for c, n in enumerate(sorted(rows, key=int)):
            for kind, style in (("pretrained", "-"), ("scratch", "--")):
                r = rows[n].get(kind, {})
                curve = np.asarray(r.get("valid_curve") or [], dtype=float).reshape(-1, 2)
                if not len(curve):
                    continue
                ax.semilogy(curve[:, 0], curve[:, 1], style, color=f"C{c}", lw=1.2,
                            label=f"{n} {kind}")
                best = curve[curve[:, 0] == r.get("best_step")]
                if len(best):
                    ax.plot(best[:, 0], best[:, 1], "o", color=f"C{c}", ms=4)
        ax.set_title(f"{task}: validation during fine-tuning (dot: best)", fontsize=9)
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel("validation one-step VRMSE")
        ax.legend(fontsize=6, ncol=2)
    return _save(fig, out_dir / "transfer_validation.png")
