"""FLOP counts of the AViT's forward pass (benchmarks report achieved FLOP/s against the machine's matmul peak)."""
from __future__ import annotations

import math
from collections.abc import Sequence

from physviz.model.config import ModelConfig
from physviz.model.refine import refiner_flops


def flops(config: ModelConfig, T: int, spatial: Sequence[int], n_fields: int, batch: int = 1,
          executed: bool = True) -> int:
    """Multiply-add FLOPs (2 per MAC) of one forward pass, matmuls and attention only.

    ``executed=True`` counts what this implementation runs (fused embedding, last block
    and decoder on the last frame only); False counts MPP's formulation (embedding at
    full resolution, every frame through every block and the decoder). Attention is
    counted as axial (2 * 2 * L * d per token and axis), although frames of at most 64
    tokens run it as a dense masked product (more arithmetic, less time).

    Per block and frame of N tokens (d = embed_dim, m = MLP width, T frames, L_a axis
    lengths): time attention 8Nd^2 + 4NTd, space attention 8Nd^2 + 4Nd*sum(L_a),
    MLP 4Ndm.
    """
    d, q, n = config.embed_dim, config.embed_dim // 4, config.n_spatial_dims
    s1, s2, s3 = config.stem_strides
    pix = math.prod(spatial)
    tok = pix // config.patch_size**n
    frames = batch * T
    mlp = config.mlp_dim

    def stem(frames_: int) -> int:
        f = 0
        if executed:
            f += 2 * (pix // s1**n) * (n_fields * s1**n) * q
        else:
            f += 2 * pix * n_fields * q + 2 * (pix // s1**n) * (q * s1**n) * q
        f += 2 * (pix // (s1 * s2) ** n) * (q * s2**n) * q
        f += 2 * tok * (q * s3**n) * d
        return f * frames_

    def decoder(frames_: int) -> int:
        f = 2 * tok * d * q * s3**n + 2 * (tok * s3**n) * q * q * s2**n + 2 * (pix // s1**n) * q * n_fields * s1**n
        return f * frames_

    def temporal(tq: int) -> int:
        qkv = 2 * batch * tok * d * d * (2 * T + tq)  # keys and values for every frame, queries for tq
        att = 2 * 2 * batch * tok * tq * T * d
        out = 2 * batch * tq * tok * d * d
        return qkv + att + out

    def spatial_block(fr: int) -> int:
        side = [s // config.patch_size for s in spatial]
        att = sum(2 * 2 * fr * tok * L * d for L in side)
        return fr * tok * (2 * d * 3 * d + 2 * d * d + 2 * 2 * d * mlp) + att

    total = stem(frames)
    blocks = config.processor_blocks
    if executed:
        total += (blocks - 1) * (temporal(T) + spatial_block(frames)) + temporal(1) + spatial_block(batch)
        total += decoder(batch)
    else:
        total += blocks * (temporal(T) + spatial_block(frames)) + decoder(frames)
    if config.refine_width:
        total += batch * refiner_flops(config.refine_width, n_fields, spatial)
    return int(total)
