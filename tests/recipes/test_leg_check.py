"""scripts/leg_check.py: a training checkpoint (.pt) is read with its config and registry and compared with the shipped model."""
from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from tests.paths import REPO


@pytest.mark.slow
def test_a_leg_checkpoint_is_compared_with_the_shipped_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import physviz
    from physviz.fields import to_well
    from physviz.train.checkpoints import list_checkpoints
    from physviz.train.example import example_config
    from physviz.train.loop import run

    data = tmp_path / "fhn"
    physviz.simulate("fitzhugh_nagumo", 3, resolution=32, steps=12, seed=0, out=data, progress=False)
    work = tmp_path / "work"
    (work / "eval").mkdir(parents=True)
    to_well(physviz.simulate("fitzhugh_nagumo", 2, resolution=32, steps=10, seed=7, progress=False),
            work / "eval" / "fitzhugh_nagumo.hdf5", stats=False)
    cfg = example_config(data, tmp_path / "run", steps=2, checkpoint_every=1, progress=False)
    cfg["model"] = {"init_from": "bundled", "overrides": {"step_scale": "context", "norm_floor": 0.1}}
    run(cfg)
    _, pt = list_checkpoints(tmp_path / "run")[-1]
    mod = runpy.run_path(str(REPO / "scripts" / "leg_check.py"))
    model = mod["load_candidate"](pt)
    assert model.config.step_scale == "context" and model.config.norm_floor == 0.1 and not model.training
    rows = mod["one_step_table"](work, model, None, 2, 8)
    assert [r[0] for r in rows] == ["fitzhugh_nagumo", "zero-shot allen_cahn", "zero-shot heat_slow"]
    final = mod["one_step_table"](work, mod["load_candidate"](tmp_path / "run" / "final.safetensors"), None, 2, 8)
    assert [r[2] for r in final] == pytest.approx([r[2] for r in rows])  # the last checkpoint is the final model
    assert all(r[1] != r[2] for r in rows)  # shipped and candidate differ: another unit, other weights
    assert mod["main"]([str(work), str(pt), "--trajectories", "2", "--frames", "8"]) == 0
    assert "| zero-shot heat_slow |" in capsys.readouterr().out
