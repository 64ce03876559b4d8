"""Model: inference and training step at the Ti size (16 frames, 128x128, 4 fields), FLOPs and the matmul peak,
side by side with the_well's AViT at equal width and depth (compared by tokens per second)."""
from __future__ import annotations

from benchmarks.common import Result, time_call
from benchmarks.peers import matmul_peak_gflops, the_well_avit_class

T, N, C = 16, 128, 4


def _ours(train: bool, repeats: int):
    import torch

    from physviz.model.avit import AViT, flops
    from physviz.model.config import ModelConfig

    cfg = ModelConfig.preset("Ti")
    model = AViT(cfg)
    x = torch.randn(1, T, C, N, N)
    ids = torch.tensor([6, 7, 8, 9])
    bcs = torch.tensor([1, 1])
    if not train:
        model.eval()
        with torch.inference_mode():
            timing = time_call(lambda: model(x, ids, bcs), repeats, warmup=2)
        return timing, flops(cfg, T, (N, N), C), flops(cfg, T, (N, N), C, executed=False)
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

    repeats = 3 if quick else 10
    peak_before = matmul_peak_gflops()
    tokens_ours = T * (N // 16) ** 2  # one token per 16x16 patch per frame
    tokens_peer = (N // 16) ** 2  # time folded into channels: one token per patch
    out = []
    inf, f_exec, f_mpp = _ours(False, repeats)
    peer_inf = _peer(False, repeats)
    peak = max(peak_before, matmul_peak_gflops())  # measured before and after: the machine's speed drifts
    gflops = f_exec / inf.median / 1e9
    out.append(Result(
        "model", f"inference step, Ti, {T}x{N}^2x{C} (tokens/s)",
        Timing(1 / (tokens_ours / inf.median), 1 / (tokens_ours / inf.low), 1 / (tokens_ours / inf.high), inf.repeats),
        Timing(1 / (tokens_peer / peer_inf.median), 1 / (tokens_peer / peer_inf.low), 1 / (tokens_peer / peer_inf.high), peer_inf.repeats),
        "the_well AViT (192, 3 heads, 12 blocks)", unit="s/token",
        note=f"ours {inf.median * 1e3:.0f} ms/step = {tokens_ours / inf.median:.0f} tokens/s, peer {peer_inf.median * 1e3:.1f} ms/step = "
        f"{tokens_peer / peer_inf.median:.0f} tokens/s; ours {f_exec / 1e9:.1f} GFLOP executed ({f_mpp / 1e9:.1f} in MPP's formulation), "
        f"{gflops:.0f} GFLOP/s = {100 * gflops / peak:.0f}% of the measured {peak:.0f} GFLOP/s matmul peak",
        extra={"flops_executed": f_exec, "flops_mpp": f_mpp, "gflops": gflops, "peak_gflops": peak, "fraction_of_peak": gflops / peak},
    ))
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
