"""The metrics.jsonl record: parsing by offset, reading a file, kinds, trimming on resume; no torch or numpy."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from physviz.train.metrics import (KINDS, METRICS_FILE, MetricsWriter, last_step, parse_metrics, read_metrics,
                                   records_of, trim_metrics)


def _lines(*records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_parse_metrics_takes_complete_lines_and_leaves_a_partial_one():
    data = _lines({"kind": "train", "step": 1, "loss": 0.5}) + b"not json\n\n[1, 2]\n" + b'{"kind": "tra'
    records, used = parse_metrics(data)
    assert records == [{"kind": "train", "step": 1, "loss": 0.5}]
    assert used == len(data) - len(b'{"kind": "tra')
    assert parse_metrics(b'{"a": 1}') == ([], 0)
    assert parse_metrics(b"") == ([], 0)


def test_read_metrics_and_the_kinds(tmp_path):
    path = tmp_path / METRICS_FILE
    assert METRICS_FILE == "metrics.jsonl" and KINDS == ("train", "valid", "done")
    assert read_metrics(path) == []
    rows = [{"kind": "train", "step": 1, "loss": 1.0}, {"kind": "valid", "step": 2, "vrmse": {"a": 0.3}},
            {"kind": "train", "step": 2, "loss": 0.5}, {"kind": "done", "step": 2, "checkpoint": "final.safetensors"}]
    path.write_bytes(_lines(*rows) + b"garbage\n")
    records = read_metrics(path)
    assert records == rows
    assert [r["loss"] for r in records_of(records, "train")] == [1.0, 0.5]
    assert records_of(records, "done") == rows[3:]
    assert last_step(records) == 2 and last_step([]) == 0
    with pytest.raises(ValueError, match="kind"):
        records_of(records, "training")


def test_writer_appends_and_trims_on_resume(tmp_path):
    path = tmp_path / "out" / METRICS_FILE
    writer = MetricsWriter(path, enabled=True, truncate=True)
    for step in (1, 2, 3):
        writer.write({"kind": "train", "step": step, "loss": 1.0 / step})
    writer.write({"kind": "done", "step": 3})
    writer.close()
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 3]
    assert all("time" in r for r in writer.lines)
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"kind": "train", "st')  # a killed writer's last line

    resumed = MetricsWriter(path, enabled=True, truncate=False, resume_step=2)
    assert [(r["kind"], r["step"]) for r in read_metrics(path)] == [("train", 1), ("train", 2)]
    resumed.write({"kind": "train", "step": 3, "loss": 0.3})
    resumed.close()
    assert [r["step"] for r in records_of(read_metrics(path), "train")] == [1, 2, 3]

    off = MetricsWriter(tmp_path / "rank1" / METRICS_FILE, enabled=False, truncate=True)
    off.write({"kind": "train", "step": 1})
    assert len(off.lines) == 1 and not (tmp_path / "rank1").exists()


def test_trim_metrics_drops_done_lines_and_later_steps(tmp_path):
    path = tmp_path / METRICS_FILE
    path.write_bytes(_lines({"kind": "train", "step": 4}, {"kind": "done", "step": 4}, {"kind": "train", "step": 5}))
    trim_metrics(path, 4)
    assert read_metrics(path) == [{"kind": "train", "step": 4}]


def test_the_metrics_module_imports_neither_torch_nor_numpy():
    code = ("import sys, physviz.train.metrics; "
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_latest_per_step_keeps_the_last_record_of_each_step():
    from physviz.train.metrics import MetricsSeries, latest_per_step

    def train(step, loss):
        return {"kind": "train", "step": step, "loss": loss}

    once = [train(s, 1.0 / s) for s in range(1, 9)]
    # a stream read twice and then once more from its second line (what the monitor held: 1..8, 1..8, 2..8)
    records = once + once + once[1:]
    assert [r["step"] for r in latest_per_step(records, "train")] == list(range(1, 9))
    # killed after step 8, resumed from the checkpoint at step 4: the steps after it come again, with new values
    resumed = once + [{"kind": "valid", "step": 6, "vrmse": {"u": 0.5}}] + [train(s, 0.5 / s) for s in (5, 6)]
    rows = latest_per_step(resumed, "train")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]  # steps 7 and 8 of the killed run are gone
    assert [r["loss"] for r in rows[4:]] == [0.1, 0.5 / 6]
    assert latest_per_step(resumed, "valid") == []  # a valid record after the restart step is stale too
    # chunks merge into the same series; a valid record after its step's train record keeps both
    series = MetricsSeries()
    assert series.add(once[:4]) and series.add([{"kind": "valid", "step": 4, "vrmse": {"u": 0.3}}])
    assert not series.add([{"kind": "train"}, {"kind": "other", "step": 1}])
    assert series.add(once[4:]) and [r["step"] for r in series.records("train")] == list(range(1, 9))
    assert [r["step"] for r in series.records("valid")] == [4]
    with pytest.raises(ValueError, match="kind"):
        series.records("training")
