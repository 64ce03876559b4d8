"""The metrics.jsonl record a training run writes: one JSON object a line, ``kind`` train/valid/done.

A "train" line has ``step``, ``loss``, ``lr`` (and throughput); a "valid" line ``step``, ``vrmse``
(per dataset) and ``loss``; the "done" line ``step`` and ``checkpoint``. Every line has ``time``.
After a resume, the lines of steps after the checkpoint are dropped and written again.
Imports neither torch nor numpy: the jobs, the server and the views read it too.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

METRICS_FILE = "metrics.jsonl"
KINDS = ("train", "valid", "done")


def _record(line: bytes | str) -> dict[str, Any] | None:
    """The JSON object on one line, or None for a blank, unfinished or foreign line."""
    line = line.strip()
    if not line:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def parse_metrics(chunk: bytes) -> tuple[list[dict[str, Any]], int]:
    """Parsed complete lines of a metrics.jsonl chunk and the bytes they took (a partial last line waits)."""
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], 0
    records = [r for r in map(_record, chunk[: end + 1].splitlines()) if r is not None]
    return records, end + 1


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file ([] if it does not exist); lines that do not parse are left out."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [r for r in map(_record, text.splitlines()) if r is not None]


def records_of(records: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The records of one kind ("train", "valid" or "done"), in order."""
    if kind not in KINDS:
        raise ValueError(f"unknown metrics kind {kind!r} (one of {', '.join(KINDS)})")
    return [r for r in records if r.get("kind") == kind]


class MetricsSeries:
    """A metrics.jsonl stream merged from chunks: for each kind, the last record of each step, in step order.

    A resumed run writes the steps after its checkpoint again, and a stream read twice (after a reset of
    its offset, or from a new reader) repeats its records. So a record whose step is at or before the
    last step of its kind starts over from that step: the records of every kind from that step on are
    dropped, then it is added. Records without a step are left out.
    """

    def __init__(self) -> None:
        self._steps: dict[str, dict[int, dict[str, Any]]] = {kind: {} for kind in KINDS}

    def add(self, records: Iterable[dict[str, Any]]) -> bool:
        """Merge records in the order they were written; True if any series changed."""
        changed = False
        for record in records:
            kind, step = record.get("kind"), record.get("step")
            if kind not in self._steps or not isinstance(step, (int, float)) or isinstance(step, bool):
                continue
            step = int(step)
            series = self._steps[kind]
            if series and step <= next(reversed(series)):
                for other in self._steps.values():
                    for old in [s for s in other if s >= step]:
                        del other[old]
            series[step] = record
            changed = True
        return changed

    def records(self, kind: str) -> list[dict[str, Any]]:
        """The records of one kind ("train", "valid" or "done"), one a step, in step order."""
        if kind not in KINDS:
            raise ValueError(f"unknown metrics kind {kind!r} (one of {', '.join(KINDS)})")
        return list(self._steps[kind].values())

    def clear(self) -> None:
        """Forget every record (a reader starting the stream over)."""
        for series in self._steps.values():
            series.clear()


def latest_per_step(records: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The records of one kind as they stand: the last of each step, in step order (see MetricsSeries)."""
    series = MetricsSeries()
    series.add(records)
    return series.records(kind)


def last_step(records: Iterable[dict[str, Any]]) -> int:
    """The highest step of the records (0 if there is none)."""
    return max((int(r.get("step", 0)) for r in records), default=0)


def trim_metrics(path: Path, step: int) -> None:
    """Keep the lines of steps up to `step`, minus "done" lines and a last line a killed writer left unfinished."""
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        record = _record(line)
        if record is not None and record.get("kind") != "done" and int(record.get("step", 0)) <= step:
            kept.append(line + "\n")
    from physviz.fields import atomic

    with atomic.atomic_path(path) as tmp:
        tmp.write_text("".join(kept), encoding="utf-8")


class MetricsWriter:
    """Appends JSON lines to metrics.jsonl on rank 0, flushed after every line.

    On a resume from step ``resume_step`` the lines of later steps (which the resumed run
    writes again) and any earlier run's "done" line are dropped first, so every step
    appears once.
    """

    def __init__(self, path: Path, enabled: bool, truncate: bool, resume_step: int = 0) -> None:
        self.path = path
        self.lines: list[dict[str, Any]] = []
        self._fh: IO[str] | None = None
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not truncate and path.exists():
                trim_metrics(path, resume_step)
            self._fh = open(path, "w" if truncate else "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Add one record (stamped with ``time``), on disk at once."""
        record = {**record, "time": time.time()}
        self.lines.append(record)
        if self._fh is not None:
            self._fh.write(json.dumps(record, allow_nan=False, default=float) + "\n")
            self._fh.flush()

    def close(self) -> None:
        """Close the file (the records stay in ``lines``)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
