"""GPU check of the released Walrus configuration: peak memory and step time in bf16 on one GPU, random weights.

    .venv/bin/python scripts/device_walrus.py [--grid 256] [--frames 6] [--repeats 5] [--out result.json]
    .venv/bin/python scripts/device_walrus.py --toy      # the same code at toy size on the CPU (what the tests run)

The model is built on the meta device (no memory), materialised on the device with
`Module.to_empty` and filled with random weights, so the 1.3B-parameter model never exists
on the CPU. Three measurements, each after resetting the peak-memory counter:

- ``inference``: bf16 weights, one forward (the next frame) under ``torch.inference_mode``;
- ``train_step``: fp32 weights, bf16 autocast, the every-frame loss, backward and AdamW;
- ``train_step_checkpointed``: the same with activation checkpointing of every block.

Without a CUDA device (and without --toy) it prints why and exits with status 2.
Prints one JSON object (also written to --out).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

FIELDS = ["density", "pressure", "velocity_x", "velocity_y"]


def build(preset_name: str, device: Any, **overrides: Any) -> Any:
    """A Walrus of a preset built on the meta device, materialised on `device` with random weights."""
    import torch

    from physviz.model.walrus import Walrus, preset
    from physviz.model.walrus.blocks import AxialRotary

    cfg = preset(preset_name, **overrides)
    with torch.device("meta"):
        model = Walrus(cfg)
    model.to_empty(device=device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                fan_in = max(1, p[0].numel())
                p.copy_((torch.randn(p.shape, generator=gen) / math.sqrt(fan_in)).to(p.device))
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)
        for mod in model.modules():
            if isinstance(mod, AxialRotary):
                n = mod.freqs.numel()
                mod.freqs.copy_(torch.linspace(1.0, cfg.rope_max_freq / 2, n, device=mod.freqs.device) * math.pi)
    return model


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gb(device: Any) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _time(fn: Any, device: Any, repeats: int) -> dict[str, float]:
    fn()  # warm-up (kernels chosen, optimizer state allocated)
    _sync(device)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        samples.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples), "repeats": repeats}


def measure(preset_name: str, device: Any, grid: int, frames: int, batch: int, repeats: int,
            **overrides: Any) -> dict[str, Any]:
    """Peak memory and step times of inference and training steps of a random-weight Walrus."""
    import torch

    out: dict[str, Any] = {"preset": preset_name, "device": str(device), "grid": [grid, grid], "frames": frames,
                           "batch": batch, "fields": len(FIELDS)}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    x = torch.randn(batch, frames, len(FIELDS), grid, grid, device=device)
    bcs = [1, 1]

    # inference: bf16 weights
    _reset_peak(device)
    model = build(preset_name, device, **overrides).to(torch.bfloat16).eval()
    ids = model.field_ids(FIELDS)
    out["parameters"] = model.num_parameters()
    out["tokens_per_frame"] = math.prod(model.token_grid([grid, grid], bcs))

    def infer() -> None:
        with torch.inference_mode():
            model(x.to(torch.bfloat16), ids, bcs)

    out["inference"] = {**_time(infer, device, repeats), "peak_gb": _peak_gb(device)}
    del model
    # training: fp32 weights, bf16 autocast, AdamW
    for key, ckpt in (("train_step", False), ("train_step_checkpointed", True)):
        _reset_peak(device)
        model = build(preset_name, device, **overrides).train()
        model.gradient_checkpointing = ckpt
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
        target = torch.cat([x[:, 1:], torch.randn_like(x[:, :1])], dim=1)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                pred = model(x, ids, bcs, every_frame=True)
            torch.nn.functional.mse_loss(pred.float(), target).backward()
            opt.step()

        try:
            out[key] = {**_time(step, device, repeats), "peak_gb": _peak_gb(device)}
        except torch.OutOfMemoryError as exc:  # type: ignore[attr-defined]
            out[key] = {"error": f"out of memory: {str(exc).splitlines()[0]}"}
        del model, opt
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy", action="store_true", help="tiny model, small grid, on the CPU")
    parser.add_argument("--grid", type=int, default=None, help="points per axis of the 2D grid (default 256; toy 16)")
    parser.add_argument("--frames", type=int, default=6, help="context frames (default 6, Walrus's 2D context)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    import torch

    if args.toy:
        device, name, grid = torch.device("cpu"), "tiny", args.grid or 16
        overrides: dict[str, Any] = {"tokens_2d": 8, "drop_path": 0.0}
    else:
        if not torch.cuda.is_available():
            print("device_walrus: no CUDA device here; this check runs on a GPU (use --toy for the CPU toy run).",
                  file=sys.stderr)
            return 2
        device, name, grid = torch.device("cuda", 0), "released", args.grid or 256
        overrides = {}
    result = measure(name, device, grid, args.frames, args.batch, args.repeats, **overrides)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
