"""Walrus on CPU: inference and training step of a small Walrus against physviz's AViT at a similar width, depth and
token count, in the same process (ratio = Walrus / AViT)."""
from __future__ import annotations

from benchmarks.common import Result, Timing

T, C = 6, 4
FIELDS = ["density", "pressure", "velocity_x", "velocity_y"]
WIDTH, HEADS, BLOCKS = 128, 4, 4  # the AViT tiny preset's processor; the Walrus gets the same


def _models(n: int):
    """(walrus, avit) with equal width, heads and blocks, both making n/8 x n/8 tokens per frame of an n x n grid."""
    import torch

    from physviz.model.avit import AViT
    from physviz.model.config import ModelConfig
    from physviz.model.walrus import Walrus, preset

    torch.manual_seed(0)
    tokens = n // 8
    walrus = Walrus(preset("tiny", hidden_dim=WIDTH, num_heads=HEADS, time_heads=HEADS, processor_blocks=BLOCKS,
                           intermediate_dim=WIDTH // 4, tokens_2d=tokens, jitter=False, drop_path=0.0))
    avit = AViT(ModelConfig.preset("tiny"), registry="physviz")
    assert avit.config.embed_dim == WIDTH and avit.config.processor_blocks == BLOCKS
    assert walrus.token_grid([n, n]) == avit.token_grid([n, n]) == (tokens, tokens)
    return walrus, avit


def _step(model, x, train: bool):
    import torch

    ids = model.field_ids(FIELDS)
    bcs = [1, 1]
    if not train:
        model.eval()

        def infer() -> None:
            with torch.inference_mode():
                model(x, ids, bcs)

        return infer
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    target = torch.randn(x.shape[0], C, *x.shape[3:])

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x, ids, bcs), target).backward()
        opt.step()

    return step


def _interleaved(a, b, rounds: int) -> tuple[Timing, Timing, list[float]]:
    """Time a() and b() alternately for `rounds` rounds (after one warm-up each): both timings and the per-round ratios a/b."""
    import time

    a()
    b()
    ta, tb = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    return Timing.of(ta), Timing.of(tb), [x / y for x, y in zip(ta, tb)]


def run(quick: bool) -> list[Result]:
    """Inference and training step, Walrus against the AViT, at 64^2 and 128^2 (8x8 and 16x16 tokens per frame).

    One thread, the two models timed alternately round by round, so a busy host slows both alike; the note gives the
    median of the per-round ratios beside the ratio of the medians.
    """
    import statistics

    import torch

    from physviz.model.runtime import tune_cpu_allocator

    tune_cpu_allocator()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rounds = 3 if quick else 7
    out = []
    try:
        for n in (64, 128):
            walrus, avit = _models(n)
            x = torch.randn(1, T, C, n, n)
            tokens = T * (n // 8) ** 2
            pw, pa = walrus.num_parameters(), avit.num_parameters()
            pb = sum(p.numel() for p in walrus.blocks.parameters())
            for train in (False, True):
                t_w, t_a, ratios = _interleaved(_step(walrus, x, train), _step(avit, x, train), rounds)
                what = "training step (fwd+bwd+AdamW)" if train else "inference step"
                out.append(Result(
                    "walrus", f"{what}, Walrus {WIDTH}x{BLOCKS} blocks, {T}x{n}^2x{C} ({tokens} tokens)", t_w, t_a,
                    f"physviz AViT tiny ({WIDTH}x{BLOCKS} blocks, patch 8)",
                    note=f"Walrus {pw / 1e6:.2f}M params ({pb / 1e6:.2f}M in blocks), {t_w.median * 1e3:.0f} ms/step; "
                    f"AViT {pa / 1e6:.2f}M params, {t_a.median * 1e3:.0f} ms/step; median of {rounds} per-round ratios "
                    f"{statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}); 1 thread",
                ))
    finally:
        torch.set_num_threads(threads)
    return out
