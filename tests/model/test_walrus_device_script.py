"""scripts/device_walrus.py at toy size on the CPU: the meta-built, materialised model runs inference and training steps."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from tests.paths import REPO

SCRIPT = REPO / "scripts" / "device_walrus.py"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def test_toy_run_reports_memory_and_step_times(tmp_path) -> None:
    out = tmp_path / "walrus_device.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--toy", "--frames", "3", "--repeats", "1", "--out", str(out)],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert json.loads(proc.stdout) == result
    from physviz.model.walrus import Walrus, preset

    assert result["parameters"] == Walrus(preset("tiny")).num_parameters()
    assert result["tokens_per_frame"] == 64 and result["device"] == "cpu"
    for key in ("inference", "train_step", "train_step_checkpointed"):
        assert result[key]["median_s"] > 0 and result[key]["peak_gb"] > 0, result[key]


def test_materialised_weights_are_finite_and_rotary_frequencies_rebuilt() -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import device_walrus
    finally:
        sys.path.remove(str(SCRIPT.parent))
    from physviz.model.walrus import Walrus, preset

    model = device_walrus.build("tiny", torch.device("cpu"), tokens_2d=8)
    ref = Walrus(preset("tiny", tokens_2d=8))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    for (name, buf), (_, want) in zip(model.named_buffers(), ref.named_buffers()):
        torch.testing.assert_close(buf, want, msg=name)
    y = model(torch.randn(1, 3, 2, 16, 16), model.field_ids(["density", "pressure"]), [1, 1])
    assert y.shape == (1, 2, 16, 16) and torch.isfinite(y).all()


def test_without_a_gpu_it_says_so() -> None:
    if torch.cuda.is_available():
        return  # on a GPU machine the full check would run; this test is about its absence
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
