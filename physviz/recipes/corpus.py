"""The pretraining corpus of the bundled model: which systems, regimes and sizes, and how to make it."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from physviz.recipes.recipe import Recipe

EVAL_SEED = 900_000  # seeds of the held-out test sets, far from the corpus seeds (0 + 1000 * index)


@dataclass(frozen=True)
class CorpusEntry:
    """One dataset of the corpus: a system, its parameters and how many trajectories."""

    system: str
    trajectories: int
    params: dict[str, Any] = field(default_factory=dict)

    def name(self) -> str:
        """Folder name of the dataset (system plus regime)."""
        regime = self.params.get("regime")
        return f"{self.system}_{regime}" if regime else self.system


# Navier-Stokes at 64^2 with viscosity 5e-3: 1e-3 leaves 6% of the enstrophy at the dealiasing cutoff.
# Gray-Scott at 64^2 with 4x The Well's diffusivities: the dynamics of 128^2 on half the box
# (The Well's own values at 64^2 lock patterns to the grid).
_GS64 = {"dA": 8e-5, "dB": 4e-5}

# Sized so the whole corpus (408 trajectories) is generated on a 2-core CPU in a few minutes:
# 64x64 in 2D (32^3 in 3D), 32 saved frames per trajectory.
BUNDLED_CORPUS: tuple[CorpusEntry, ...] = (
    CorpusEntry("navier_stokes", 48, {"regime": "decaying", "resolution": 64, "steps": 32, "viscosity": 5e-3}),
    CorpusEntry("navier_stokes", 48, {"regime": "kolmogorov", "resolution": 64, "steps": 32, "viscosity": 5e-3}),
    CorpusEntry("shallow_water", 48, {"regime": "dam_break", "resolution": 64, "steps": 32}),
    CorpusEntry("fitzhugh_nagumo", 48, {"resolution": 64, "steps": 32}),
    CorpusEntry("gray_scott", 24, {"regime": "spots", "resolution": 64, "steps": 32, **_GS64}),
    CorpusEntry("gray_scott", 24, {"regime": "maze", "resolution": 64, "steps": 32, **_GS64}),
    CorpusEntry("gray_scott", 24, {"regime": "spirals", "resolution": 64, "steps": 32, **_GS64}),
    CorpusEntry("euler", 48, {"regime": "low_mach", "resolution": 64, "steps": 32}),
    CorpusEntry("euler", 48, {"regime": "high_mach", "resolution": 64, "steps": 32}),
    CorpusEntry("euler", 24, {"regime": "riemann", "resolution": 64, "steps": 32}),
    CorpusEntry("gray_scott_3d", 24, {"regime": "spots", "resolution": 32, "steps": 24}),
)


def generate_corpus(
    out: str | os.PathLike[str],
    entries: tuple[CorpusEntry, ...] = BUNDLED_CORPUS,
    *,
    seed: int = 0,
    scale: float = 1.0,
    progress: bool = True,
) -> dict[str, float]:
    """Simulate every entry into out/NAME (Well splits + stats.yaml); return seconds per dataset.

    scale multiplies the trajectory counts (at least 3 each, so every split has one).
    Datasets already complete on disk are skipped, so an interrupted run resumes.
    """
    from physviz.fields.simulate.run import simulate

    out = Path(out)
    seconds: dict[str, float] = {}
    for i, entry in enumerate(entries):
        target = out / entry.name()
        if (target / "stats.yaml").exists():
            seconds[entry.name()] = 0.0
            continue
        n = max(3, round(entry.trajectories * scale))
        t0 = time.perf_counter()
        # No stats.yaml: an interrupted simulate, whose partial files are rewritten.
        simulate(entry.system, n, seed=seed + 1000 * i, out=target, overwrite=True, progress=progress,
                 **entry.params)
        seconds[entry.name()] = time.perf_counter() - t0
    return seconds


def corpus_entries(recipe: Recipe) -> tuple[CorpusEntry, ...]:
    """The corpus entries of a recipe (BUNDLED_CORPUS minus the excluded systems, within `only` if set)."""
    return tuple(e for e in BUNDLED_CORPUS if e.system not in recipe.exclude and e.name() not in recipe.exclude
                 and (not recipe.only or e.name() in recipe.only))


def make_corpus(recipe: Recipe, workdir: Path, progress: bool = True) -> dict[str, Path]:
    """Generate the training corpus and the held-out test sets; return test set name -> file."""
    from physviz.fields import to_well
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


def corpus_table(recipe: Recipe) -> list[dict[str, Any]]:
    """One row per BUNDLED_CORPUS entry for the model card: name, system, parameters, size, and whether the recipe uses it."""
    used = {e.name() for e in corpus_entries(recipe)}
    return [{"name": e.name(), "system": e.system,
             "params": {k: v for k, v in e.params.items() if k not in ("resolution", "steps")},
             "trajectories": e.trajectories, "resolution": e.params.get("resolution"),
             "dims": 3 if e.system.endswith("3d") else 2, "frames": e.params.get("steps"), "used": e.name() in used}
            for e in BUNDLED_CORPUS]
