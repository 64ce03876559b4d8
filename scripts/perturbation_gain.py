"""How far a model's one-step prediction moves when one input value moves a little (its input sensitivity).

    python scripts/perturbation_gain.py [--model PATH] [--eps 1e-3 1e-6]

For each dataset (built-in systems in the pretraining corpus, the zero-shot files of the model card,
and physviz's Taylor-Green sample), one value of the last context frame is moved by eps times its
field's standard deviation; the table gives the largest change of the predicted frame, in units of
that frame's standard deviation, divided by eps. A smooth model gives about the same gain at every
eps; a gain that grows as eps shrinks means the prediction jumps (saturated attention).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import physviz
from physviz.fields.samples import sample_dataset

ZERO_SHOT = Path(__file__).resolve().parents[1] / "docs" / "model_card" / "zero_shot"


def datasets() -> dict[str, object]:
    """One trajectory of each dataset to probe."""
    out: dict[str, object] = {}
    for system, kw in [("navier_stokes", {"viscosity": 5e-3}), ("gray_scott", {}), ("shallow_water", {})]:
        out[system] = physviz.simulate(system, 1, resolution=64, steps=8, seed=0, progress=False, **kw).isel(trajectory=0)
    for path in sorted(ZERO_SHOT.glob("*.hdf5")):
        out[f"zero_shot/{path.stem}"] = physviz.open_fields(path).isel(trajectory=0).load()
    out["taylor_green (sample_dataset)"] = sample_dataset(trajectories=3, n=32, steps=8).isel(trajectory=1)
    return out


def gains(model: object, ds: object, eps_list: list[float], context: int = 4) -> list[float]:
    """Largest relative change of the one-step prediction per relative input change, for each eps."""
    spatial = [d for d in ("x", "y") if d in ds.dims]
    fields = [f for f in ds.data_vars if ds[f].dims == ("time", *spatial)]
    x = torch.from_numpy(np.stack([ds[f].values[:context] for f in fields], axis=1)[None].astype(np.float32))
    ids = model.field_ids(fields)
    bcs = torch.tensor(model.boundary_input(ds.attrs.get("boundary_conditions"), spatial))
    out = []
    with torch.inference_mode():
        y0 = model(x, ids, bcs)
        scale = float(y0.std())
        for eps in eps_list:
            x2 = x.clone()
            x2[0, -1, 0, 5, 5] += eps * float(x[0, :, 0].std())
            out.append(float((model(x2, ids, bcs) - y0).abs().max()) / scale / eps)
    return out


def main() -> None:
    """Print the gain table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a physviz checkpoint (default: the bundled model)")
    ap.add_argument("--eps", type=float, nargs="+", default=[1e-3, 1e-6])
    args = ap.parse_args()
    torch.manual_seed(0)
    model = physviz.load_model(args.model) if args.model else physviz.load_pretrained()
    print("| dataset | " + " | ".join(f"gain at eps {e:g}" for e in args.eps) + " |")
    print("|---|" + "---|" * len(args.eps))
    for name, ds in datasets().items():
        print(f"| {name} | " + " | ".join(f"{g:.3g}" for g in gains(model, ds, args.eps)) + " |")


if __name__ == "__main__":
    main()
