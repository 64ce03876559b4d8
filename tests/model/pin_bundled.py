"""Outputs of the shipped models on fixed inputs, pinned bit for bit (`python -m tests.model.pin_bundled [NAME ...]` rewrites them)."""
from __future__ import annotations

import numpy as np

from tests.paths import REPO

# one pin per shipped checkpoint file (physviz.model.pretrained.BUNDLED)
PINS = {name: REPO / "tests" / "model" / "data" / f"{name}_outputs.npz" for name in ("bundled", "gen1")}


def bundled_outputs(name: str = "bundled") -> dict[str, np.ndarray]:
    """A shipped model's next frame, a jittered 2-pass ensemble and a 3-step rollout, on fixed inputs, in one thread."""
    import torch

    import physviz
    from physviz.fields import sample_dataset

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = physviz.load_pretrained(name)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, 4, 3, 32, 32, generator=gen, dtype=torch.float32)
        ids = model.field_ids(["vorticity", "velocity_x", "velocity_y"])
        with torch.inference_mode():
            nxt = model(x, ids, [1, 1]).numpy()
            ens = model.predict(x, ids, [1, 1], jitter_seed=3, ensemble=2).numpy()
        truth = sample_dataset(trajectories=1, n=32, steps=8, seed=0).isel(trajectory=0)
        pred = physviz.rollout(model, truth, steps=3, context=4)
        roll = np.stack([pred[f].values for f in ("vorticity", "velocity_x", "velocity_y")])
    finally:
        torch.set_num_threads(threads)
    return {"next": nxt, "ensemble": ens, "rollout": roll}


if __name__ == "__main__":
    import sys

    for name, pin in PINS.items():
        if sys.argv[1:] and name not in sys.argv[1:]:
            continue
        pin.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(pin, **bundled_outputs(name))
        print(f"wrote {pin}")
