"""Model: inference and training step at the Ti size (16 frames, 128x128, 4 fields), FLOPs and the matmul peak,
side by side with the_well's AViT at equal width and depth (compared by tokens per second)."""
from __future__ import annotations

import time

from benchmarks.common import Result, time_call
from benchmarks.peers import interleaved_peak_fraction, matmul_peak_gflops, the_well_avit_class

T, N, C = 16, 128, 4
REFINE_WIDTH = 32  # physviz/recipes/configs/bundled.yaml


def _ti_inference():
    """Our Ti model in eval mode with its input and FLOP counts: (step function, executed FLOPs, MPP FLOPs)."""
    import torch

    from physviz.model.avit import AViT
    from physviz.model.config import ModelConfig
    from physviz.model.flops import flops

    cfg = ModelConfig.preset("Ti")
    model = AViT(cfg).eval()
    x = torch.randn(1, T, C, N, N)
    ids = torch.tensor([6, 7, 8, 9])
    bcs = torch.tensor([1, 1])

    def step() -> None:
        with torch.inference_mode():
            model(x, ids, bcs)

    return step, flops(cfg, T, (N, N), C), flops(cfg, T, (N, N), C, executed=False)


def _ours(train: bool, repeats: int):
    import torch

    from physviz.model.avit import AViT
    from physviz.model.config import ModelConfig

    cfg = ModelConfig.preset("Ti")
    model = AViT(cfg)
    x = torch.randn(1, T, C, N, N)
    ids = torch.tensor([6, 7, 8, 9])
    bcs = torch.tensor([1, 1])
    if not train:
        step, f_exec, f_mpp = _ti_inference()
        return time_call(step, repeats, warmup=2), f_exec, f_mpp
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    target = torch.randn(1, C, N, N)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x, ids, bcs), target)
        loss.backward()
        opt.step()

    return time_call(step, repeats, warmup=1), None, None


def _peer(train: bool, repeats: int):
    import torch

    AViT = the_well_avit_class()
    model = AViT(dim_in=T * C, dim_out=C, n_spatial_dims=2, spatial_resolution=(N, N), hidden_dim=192, num_heads=3, processor_blocks=12)
    x = torch.randn(1, N, N, T * C)  # time folded into channels
    if not train:
        model.eval()
        with torch.inference_mode():
            return time_call(lambda: model(x), repeats, warmup=2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    target = torch.randn(1, N, N, C)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x), target).backward()
        opt.step()

    return time_call(step, repeats, warmup=1)


def run(quick: bool) -> list[Result]:
    """Inference and training step, ours vs the_well's AViT, with FLOPs and the fraction of the matmul peak."""
    from benchmarks.common import Timing

    from physviz.model import cpu_kernels
    from physviz.model.runtime import tune_cpu_allocator

    tune_cpu_allocator()  # process-wide, as in a notebook that loads or rolls out a model
    repeats = 3 if quick else 10
    kernels_on = cpu_kernels.available()  # built (once per machine) before anything is timed
    peak_before = matmul_peak_gflops()
    tokens_ours = T * (N // 16) ** 2  # one token per 16x16 patch per frame
    tokens_peer = (N // 16) ** 2  # time folded into channels: one token per patch
    out = []
    inf, f_exec, f_mpp = _ours(False, repeats)
    peer_inf = _peer(False, repeats)
    peak = max(peak_before, matmul_peak_gflops())  # measured before and after: the machine's speed drifts
    gflops = f_exec / inf.median / 1e9
    step, _, _ = _ti_inference()
    il = interleaved_peak_fraction(step, f_exec, rounds=4 if quick else 12)
    with cpu_kernels.disabled():  # the same step on the eager ops alone (PHYSVIZ_CPU_KERNELS=0)
        il_eager = interleaved_peak_fraction(step, f_exec, rounds=3 if quick else 8)
    path = ("with the fused CPU kernels" if kernels_on else "eager ops only (the fused CPU kernels did not build)")
    out.append(Result(
        "model", f"inference step, Ti, {T}x{N}^2x{C} (tokens/s)",
        Timing(1 / (tokens_ours / inf.median), 1 / (tokens_ours / inf.low), 1 / (tokens_ours / inf.high), inf.repeats),
        Timing(1 / (tokens_peer / peer_inf.median), 1 / (tokens_peer / peer_inf.low), 1 / (tokens_peer / peer_inf.high), peer_inf.repeats),
        "the_well AViT (192, 3 heads, 12 blocks)", unit="s/token",
        note=f"ours {inf.median * 1e3:.0f} ms/step = {tokens_ours / inf.median:.0f} tokens/s, peer {peer_inf.median * 1e3:.1f} ms/step = "
        f"{tokens_peer / peer_inf.median:.0f} tokens/s; ours {f_exec / 1e9:.1f} GFLOP executed ({f_mpp / 1e9:.1f} in MPP's formulation), "
        f"{100 * il['fraction']:.0f}% of the matmul peak, median over {len(il['fractions'])} rounds that each time a 4096^3 "
        f"product and then the step (per-round {100 * min(il['fractions']):.0f}-{100 * max(il['fractions']):.0f}%, "
        f"step {il['step'] * 1e3:.0f} ms, peak {il['peak']:.0f} GFLOP/s); against the best peak of the whole run "
        f"({peak:.0f} GFLOP/s) and the median step above: {gflops:.0f} GFLOP/s = {100 * gflops / peak:.0f}%; best step "
        f"({min(il['steps']) * 1e3:.0f} ms) against the best round's peak ({max(il['peaks']):.0f}): "
        f"{100 * f_exec / min(il['steps']) / 1e9 / max(il['peaks']):.0f}%; {path}; the eager ops alone in the same "
        f"run: {100 * il_eager['fraction']:.0f}% (step {il_eager['step'] * 1e3:.0f} ms, {len(il_eager['fractions'])} rounds)",
        extra={"flops_executed": f_exec, "flops_mpp": f_mpp, "gflops": gflops, "peak_gflops": peak,
               "fraction_of_peak": il["fraction"], "fraction_of_best_peak": gflops / peak,
               "fraction_best_vs_best": f_exec / min(il["steps"]) / 1e9 / max(il["peaks"]),
               "interleaved": {k: il[k] for k in ("fractions", "steps", "peaks")}, "cpu_kernels": kernels_on,
               "eager_fraction_of_peak": il_eager["fraction"],
               "eager_interleaved": {k: il_eager[k] for k in ("fractions", "steps", "peaks")}},
    ))
    out += _rollouts(quick)
    out += _gpu_note()
    tr, _, _ = _ours(True, max(2, repeats // 2))
    peer_tr = _peer(True, max(2, repeats // 2))
    out.append(Result(
        "model", f"training step (fwd+bwd+AdamW), Ti, {T}x{N}^2x{C} (tokens/s)",
        Timing(tr.median / tokens_ours, tr.low / tokens_ours, tr.high / tokens_ours, tr.repeats),
        Timing(peer_tr.median / tokens_peer, peer_tr.low / tokens_peer, peer_tr.high / tokens_peer, peer_tr.repeats),
        "the_well AViT (192, 3 heads, 12 blocks)", unit="s/token",
        note=f"ours {tr.median * 1e3:.0f} ms/step, peer {peer_tr.median * 1e3:.0f} ms/step",
    ))
    return out


def _fno_peer(C: int, n_spatial: int, context: int):
    """neuraloperator's FNO with a parameter count near our tiny model's (time folded into channels)."""
    from neuralop.models import FNO

    modes = (16, 16) if n_spatial == 2 else (8, 8, 8)
    return FNO(n_modes=modes, hidden_channels=64 if n_spatial == 2 else 32, in_channels=context * C, out_channels=C).eval()


def _rollouts(quick: bool) -> list[Result]:
    """32-step autoregressive rollouts, 2D 128^2 and 3D 32^3, ours (tiny, without and with the bundled model's refiner) vs neuraloperator's FNO."""
    import torch

    from physviz.model.avit import AViT
    from physviz.model.config import ModelConfig
    from physviz.recipes.evaluate import autoregress

    steps, context, C = (8 if quick else 32), 4, 3
    out = []
    for n, shape in ((2, (128, 128)), (3, (32, 32, 32))):
        bcs = torch.ones(n, dtype=torch.long)
        x = torch.randn(1, context, C, *shape)
        fno = _fno_peer(C, n, context)

        def peer() -> None:
            with torch.inference_mode():
                autoregress(lambda a: fno(torch.from_numpy(a).reshape(1, -1, *shape)).numpy(), x.numpy(), steps, batch=1)

        t_peer = time_call(peer, 2 if quick else 3, warmup=1)
        p_peer = sum(p.numel() for p in fno.parameters())
        label = "x".join(map(str, shape))
        for refine in (0, REFINE_WIDTH):
            torch.manual_seed(0)
            model = AViT(ModelConfig.preset("tiny", n_spatial_dims=n, context_frames=context, delta_prediction=True,
                                            refine_width=refine), registry="physviz").eval()
            ids = model.field_ids(["vorticity", "velocity_x", "velocity_y"])

            def ours() -> None:
                with torch.inference_mode():
                    autoregress(lambda a: model(torch.from_numpy(a), ids, bcs).numpy(), x.numpy(), steps, batch=1)

            t_ours = time_call(ours, 2 if quick else 3, warmup=1)
            p_ours = sum(p.numel() for p in model.parameters())
            what = f"tiny + refiner {refine} (the bundled model's layout)" if refine else "tiny"
            out.append(Result(
                "model", f"{steps}-step rollout, {what}, {context} frames of {label}, 3 fields", t_ours, t_peer,
                f"neuraloperator FNO ({p_peer / 1e6:.1f}M params)",
                note=f"ours {p_ours / 1e6:.2f}M params, {t_ours.median / steps * 1e3:.0f} ms/step; FNO "
                f"{t_peer.median / steps * 1e3:.0f} ms/step",
            ))
    return out


def _gpu_note() -> list[Result]:
    """On a CUDA device: bf16 and torch.compile inference at the Ti size against the measured bf16 matmul peak."""
    import torch

    if not torch.cuda.is_available():
        print("[bench] model: no CUDA device, GPU section skipped", flush=True)
        return []
    from benchmarks.common import Timing
    from physviz.model.avit import AViT
    from physviz.model.config import ModelConfig
    from physviz.model.flops import flops

    cfg = ModelConfig.preset("Ti")
    model = AViT(cfg).cuda().eval()
    x = torch.randn(8, T, C, N, N, device="cuda")
    ids = torch.tensor([6, 7, 8, 9], device="cuda")
    bcs = torch.tensor([1, 1], device="cuda")
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)

    def sync_time(fn, repeats: int = 10) -> Timing:
        fn()
        torch.cuda.synchronize()
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            samples.append(time.perf_counter() - t0)
        return Timing.of(samples)

    mm = sync_time(lambda: a @ a)
    peak = 2 * 8192**3 / mm.median / 1e12
    f = flops(cfg, T, (N, N), C, batch=8)
    out = []
    for label, compiled in (("eager", False), ("torch.compile", True)):
        m = torch.compile(model) if compiled else model

        def step() -> None:
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
                m(x, ids, bcs)

        t = sync_time(step)
        tf = f / t.median / 1e12
        out.append(Result("model", f"GPU inference, Ti, batch 8, bf16, {label}", t, mm, "bf16 matmul 8192^2",
                          note=f"{tf:.1f} TFLOP/s = {100 * tf / peak:.0f}% of the measured {peak:.0f} TFLOP/s peak"))
    return out
