"""scripts/compare_candidates.py at toy size: each candidate trains for the same time and is evaluated held out."""
from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import pytest

from tests.paths import REPO


@pytest.mark.slow
def test_candidates_train_for_equal_time_and_are_evaluated(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    mod = runpy.run_path(str(REPO / "scripts" / "compare_candidates.py"))
    assert mod["main"]([str(tmp_path), "--toy", "--candidates", "avit_p8,walrus_tiny"]) == 0
    res = json.loads((tmp_path / "candidates.json").read_text())
    assert list(res["candidates"]) == ["avit_p8", "walrus_tiny"]
    for name, row in res["candidates"].items():
        assert row["steps"] >= 2 and row["seconds_per_step"] > 0
        s = row["skill"]["fitzhugh_nagumo"]
        assert all(math.isfinite(s[k]) for k in ("one_step", "rollout_10", "persistence_one_step"))
    # the same persistence numbers for every candidate: the same test windows
    p = {row["skill"]["fitzhugh_nagumo"]["persistence_one_step"] for row in res["candidates"].values()}
    assert len(p) == 1
    # and the card's zero-shot sets, physics outside the corpus, against the same persistence
    zero = [row["zero_shot"] for row in res["candidates"].values()]
    assert all(set(z) == {"heat_slow", "allen_cahn"} and all(math.isfinite(v["one_step"]) for v in z.values())
               for z in zero)
    assert zero[0]["heat_slow"]["persistence_one_step"] == zero[1]["heat_slow"]["persistence_one_step"]
    out = capsys.readouterr().out
    assert "| walrus_tiny |" in out and "| zero-shot heat_slow |" in out


def test_unknown_candidates_are_refused(tmp_path: Path) -> None:
    mod = runpy.run_path(str(REPO / "scripts" / "compare_candidates.py"))
    with pytest.raises(SystemExit):
        mod["main"]([str(tmp_path), "--candidates", "avit_p8,gpt"])
