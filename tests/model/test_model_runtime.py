"""CPU inference runtime tuning: glibc keeps freed activation blocks (fewer page faults), with an opt-out."""
from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

pytest.importorskip("torch")

_PROBE = """
import json, os, resource, sys, torch
from physviz.model import AViT, ModelConfig
import physviz.model.runtime as rt
if sys.argv[1] != "tune":
    rt._state["done"] = False  # as if the tuning had been skipped
    import ctypes  # glibc's default threshold, pinned (its adaptive raise otherwise varies from run to run)
    ctypes.CDLL("libc.so.6").mallopt(-3, 128 << 10)
tuned = rt.tune_cpu_allocator()
torch.manual_seed(0)
model = AViT(ModelConfig.preset("tiny", processor_blocks=4)).eval()
x = torch.randn(1, 4, 3, 128, 128)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
with torch.inference_mode():
    for _ in range(3):
        model(x, [0, 1, 2], [1, 1])
    before = faults()
    for _ in range(10):
        model(x, [0, 1, 2], [1, 1])
print(json.dumps({"tuned": tuned, "again": rt.tune_cpu_allocator(), "faults": (faults() - before) / 10}))
"""


def _probe(mode: str, env: dict[str, str] | None = None) -> dict:
    import os

    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_tuned_allocator_reuses_freed_blocks() -> None:
    plain = _probe("plain")
    tuned = _probe("tune")
    assert tuned["tuned"] is True and tuned["again"] is True  # idempotent
    assert plain["tuned"] is False
    # untuned, freed activation buffers go back to the kernel and fault in again on every forward
    assert plain["faults"] > 1000, plain
    assert tuned["faults"] < plain["faults"] / 20, (plain, tuned)


def test_opt_out_leaves_malloc_alone() -> None:
    out = _probe("tune", {"PHYSVIZ_MALLOC_TUNING": "0"})
    assert out["tuned"] is False


_ENTRY = """
import json, torch
import physviz
from physviz.model import AViT, ModelConfig, save_model
import physviz.model.runtime as rt
model = AViT(ModelConfig.preset("tiny", processor_blocks=1)).eval()
with torch.inference_mode():
    model(torch.randn(1, 2, 1, 16, 16), [0], [1, 1])
after_forward = "done" in rt._state
path = save_model(model, __import__("sys").argv[1])
physviz.load_model(path)
print(json.dumps({"after_forward": after_forward, "after_load": rt._state.get("done")}))
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_forward_leaves_the_allocator_alone_and_entry_points_tune_it(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-c", _ENTRY, str(tmp_path / "m.safetensors")], capture_output=True,
                         text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"after_forward": False, "after_load": True}
