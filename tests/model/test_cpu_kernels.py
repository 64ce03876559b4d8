"""The fused CPU kernels of the inference path: each against the eager ops it replaces, the model with and without them."""
from __future__ import annotations

import warnings

import pytest
import torch

from physviz.model import cpu_kernels
from physviz.model.avit import AViT
from physviz.model.config import ModelConfig


@pytest.fixture(scope="module")
def K():
    """The compiled kernels: this machine has a compiler (setup installs g++), so they must build."""
    k = cpu_kernels.kernels()
    assert k is not None, "the fused CPU kernels did not build"
    return k


def test_channel_moments_match_torch(K):
    x = torch.randn(5, 37, 24) * 3 + 2
    mean, m2 = K.channel_moments(x)
    ref_mean = x.mean(1)
    torch.testing.assert_close(mean, ref_mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(m2, ((x - ref_mean[:, None]) ** 2).sum(1), rtol=1e-5, atol=1e-5)


def test_instance_standardize_matches_torch(K):
    x = torch.randn(4, 64, 48) * 5 - 1
    ref = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(K.instance_standardize(x, 1e-5), ref, rtol=1e-5, atol=1e-5)


def test_qkv_epilogue_matches_eager(K):
    H, hd, M = 3, 16, 50
    y = torch.randn(M, 3 * H * hd)
    b, g, s = torch.randn(3 * H * hd), torch.randn(hd), torch.randn(hd)
    z = (y + b).view(M, H, 3, hd)
    q, k, v = z.unbind(2)
    q_ref = q / torch.sqrt((q * q).sum(-1, keepdim=True) + 0.1**2) * g + s
    k_ref = k / torch.sqrt((k * k).sum(-1, keepdim=True) + 0.2**2)
    out = y.clone()
    K.qkv_epilogue_(out, b, g, s, 0.1, 0.2, H)
    q2, k2, v2 = out.view(M, H, 3, hd).unbind(2)
    torch.testing.assert_close(q2, q_ref)
    torch.testing.assert_close(k2, k_ref)
    torch.testing.assert_close(v2, v)


def test_kernels_reject_bad_tensors_with_a_clear_error(K):
    with pytest.raises(RuntimeError, match="contiguous"):
        K.channel_moments(torch.randn(4, 8, 6).transpose(1, 2))
    with pytest.raises(RuntimeError, match="float32"):
        K.instance_standardize(torch.randn(2, 3, 4, dtype=torch.float64), 1e-5)
    with pytest.raises(RuntimeError, match="bias"):
        K.qkv_epilogue_(torch.randn(4, 18), torch.randn(17), torch.randn(2), torch.randn(2), 0.1, 0.1, 3)


class _Counting:
    """A stand-in for the kernel module that counts the calls of each kernel."""

    def __init__(self, module):
        self.module, self.calls = module, {}

    def __getattr__(self, name):
        fn = getattr(self.module, name)

        def call(*args):
            self.calls[name] = self.calls.get(name, 0) + 1
            return fn(*args)

        return call


@pytest.mark.parametrize("n_spatial,shape,floor", [(2, (24, 24), 0.0), (2, (32, 40), 1e-3), (3, (16, 16, 16), 0.0)])
def test_model_output_is_the_same_with_and_without_kernels(K, n_spatial, shape, floor, monkeypatch):
    counting = _Counting(K)
    monkeypatch.setitem(cpu_kernels._state, "module", counting)
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", n_spatial_dims=n_spatial, context_frames=3, norm_floor=floor)
    model = AViT(cfg, registry="physviz").eval()
    # layer scales away from their 1e-6 start, so that every block changes the stream
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "gamma" in name:
                p.fill_(0.3)
    x = torch.randn(2, 3, 2, *shape)
    ids = torch.tensor([6, 7])
    bcs = torch.tensor([1, 0, 1][:n_spatial])
    with torch.inference_mode():
        fast = model(x, ids, bcs)
        with cpu_kernels.disabled():
            assert cpu_kernels.usable(x) is None
            eager = model(x, ids, bcs)
    assert float((fast - eager).norm() / eager.norm()) < 1e-5
    # every kernel ran in the fast pass: per block 2 standardizations (time), 3 norm scales (space, more
    # in the stem) and 2 QKV epilogues, but 1 in the last block (its time block queries the last frame only)
    n = cfg.processor_blocks
    assert counting.calls["instance_standardize"] == 2 * n and counting.calls["qkv_epilogue_"] == 2 * n - 1
    assert counting.calls["channel_moments"] >= 3 * n
    assert not torch.equal(fast, x[:, -1])


def test_training_never_uses_the_kernels(K):
    x = torch.randn(2, 3, 4, requires_grad=True)
    assert cpu_kernels.usable(x) is None  # autograd records: the eager ops run
    with torch.no_grad():
        assert cpu_kernels.usable(x.detach()) is K


def test_cpu_autocast_runs_the_eager_ops(K):
    x = torch.randn(2, 3, 4)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert cpu_kernels.usable(x) is None  # products come out in bf16 there


def test_env_switch_turns_the_kernels_off(monkeypatch):
    monkeypatch.setenv(cpu_kernels.ENV, "0")
    assert cpu_kernels.kernels() is None
    assert cpu_kernels.main() == 0


def test_a_failed_build_warns_once_and_the_model_still_runs(monkeypatch):
    def broken():
        raise RuntimeError("Error building extension 'physviz_cpu_kernels'\ng++: command not found")

    monkeypatch.setattr(cpu_kernels, "_state", {"module": None, "tried": False, "disabled": 0})
    monkeypatch.setattr(cpu_kernels, "_load", broken)
    with pytest.warns(RuntimeWarning, match="g\\+\\+: command not found"):
        assert cpu_kernels.kernels() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        assert cpu_kernels.kernels() is None
        model = AViT(ModelConfig.preset("tiny", n_spatial_dims=2, context_frames=2), registry="physviz").eval()
        with torch.inference_mode():
            y = model(torch.randn(1, 2, 1, 16, 16), torch.tensor([6]), torch.tensor([1, 1]))
    assert y.shape == (1, 1, 16, 16) and torch.isfinite(y).all()


def test_build_dir_depends_on_the_source(monkeypatch, tmp_path):
    monkeypatch.setenv(cpu_kernels.CACHE_ENV, str(tmp_path))
    d = cpu_kernels.build_dir()
    assert d.parent == tmp_path
    src = tmp_path / "k.cpp"
    src.write_text("// another source\n")
    monkeypatch.setattr(cpu_kernels, "SOURCE", src)
    assert cpu_kernels.build_dir() != d
