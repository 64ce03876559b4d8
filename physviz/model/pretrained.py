"""The bundled pretrained model: a checkpoint shipped inside the package, loaded with no network."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from physviz.errors import FieldFileNotFoundError, ParameterError

if TYPE_CHECKING:
    from physviz.model.family import PhysicsModel

WEIGHTS = Path(__file__).resolve().parent / "weights"
# name -> file under physviz/model/weights (safetensors with the physviz header: config, registry, hash, recipe)
# "bundled" is the shipped model (the second generation, recipe bundled_gen2.yaml); "gen1" is the first
# generation (recipe bundled.yaml), kept because the second continues from it
BUNDLED: dict[str, str] = {"bundled": "physviz-tiny.safetensors", "gen1": "physviz-tiny-gen1.safetensors"}


def pretrained_path(name: str = "bundled") -> Path:
    """Path of a bundled checkpoint file."""
    if name not in BUNDLED:
        raise ParameterError(f"Unknown bundled model {name!r}; bundled models: {sorted(BUNDLED)}.")
    path = WEIGHTS / BUNDLED[name]
    if not path.is_file():
        raise FieldFileNotFoundError(
            f"The bundled checkpoint {str(path)!r} is missing from this installation; reinstall physviz, "
            "or make it with `physviz pretrain --recipe bundled_gen2` (the first generation: `--recipe bundled`)."
        )
    return path


def load_pretrained(name: str = "bundled", *, device: str = "cpu", **options: Any) -> PhysicsModel:
    """The bundled pretrained transformer (eval mode); options override settings the weights leave open (jitter, pad_to_patch...)."""
    from physviz.model.checkpoint import load_model

    return load_model(pretrained_path(name), device=device, **options)
