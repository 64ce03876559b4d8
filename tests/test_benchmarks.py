"""The benchmark suite runs end to end (its numbers are not asserted, only that every benchmark ran)."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.paths import REPO


def test_quick_benchmarks_run_and_report(tmp_path):
    out, js = tmp_path / "B.md", tmp_path / "b.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--json", str(js)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(js.read_text())
    names = {r["name"] for r in report["results"]}
    assert {"import physviz", "read one 256x256 frame (open_fields, lazy)"} <= names
    from physviz.fields.simulate.run import SYSTEMS

    for system in SYSTEMS:  # steps per second of every simulator
        assert any(n.startswith(system + " ") for n in names), system
    assert any(n.startswith("corpus:") for n in names)
    assert all(r["ours"]["median"] > 0 for r in report["results"])
    assert all(r["peer"]["median"] > 0 for r in report["results"] if r["peer"] is not None)
    assert report["machine"]["cpu_count"] >= 1
    from benchmarks.__main__ import BENCHMARKS

    ran = {r["extra"].get("benchmark") for r in report["results"]}
    assert ran == set(BENCHMARKS), set(BENCHMARKS) - ran  # every benchmark of the suite produced rows
    model = [r for r in report["results"] if r["area"] == "model" and "inference step" in r["name"]]
    assert model and 0 < model[0]["extra"]["fraction_of_peak"] < 1.5  # the roofline line is there
    # the same run times the eager ops alone beside the fused CPU kernels (which build on this machine)
    assert model[0]["extra"]["cpu_kernels"] is True and 0 < model[0]["extra"]["eager_fraction_of_peak"] < 1.5
    text = out.read_text()
    assert "## start-up" in text and "## data" in text and "## simulate" in text and "ratio" in text
    assert "## model" in text and "## views" in text and "## train" in text
