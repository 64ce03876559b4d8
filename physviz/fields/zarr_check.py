"""Zarr store checks from the store's listing: array metadata present, chunk files present, damaged chunks named."""
from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from physviz.errors import CorruptFileError

MISSING_CHUNK_POLICIES = ("raise", "fill")
_METADATA = {".zarray", ".zattrs", ".zgroup", "zarr.json", ".zmetadata"}
_CHUNK_KEY = re.compile(r"^(c([./]\d+)*|\d+([./]\d+)*)$")
_SHOWN = 4  # chunk keys named in a message


def _open_array(store: str, name: str) -> Any:
    import zarr

    return zarr.open_array(store, path=name, mode="r")


def _present(folder: Path) -> set[str]:
    """The chunk keys stored under an array's folder (relative, '/'-separated)."""
    found: set[str] = set()
    for root, _, files in os.walk(folder):
        rel = os.path.relpath(root, folder)
        for f in files:
            if f in _METADATA:
                continue
            key = f if rel == "." else f"{rel}/{f}".replace(os.sep, "/")
            if _CHUNK_KEY.match(key):
                found.add(key)
    return found


def _shown(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOWN]) + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")


def check_metadata(store: str, names: Iterable[str]) -> None:
    """Refuse a store where an array's folder holds data but no metadata (xarray would leave it out silently)."""
    root = Path(store)
    known = set(names)
    meta = "zarr.json" if (root / "zarr.json").exists() else ".zarray"
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.name.startswith(".") or child.name in known:
            continue
        if not any((child / m).exists() for m in (".zarray", ".zgroup", "zarr.json")) and any(child.iterdir()):
            raise CorruptFileError(
                f"{store}: folder {child.name!r} holds data but no {meta} metadata, so the variable cannot be read; "
                "the store is incomplete: copy it again."
            )


def check_chunks(store: str, blocks: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]) -> None:
    """Refuse a store whose arrays lack chunk files (read back as the fill value), naming array and chunks.

    blocks: array name -> (shape, chunk or shard shape), as xarray's encoding gives them. The listing is
    counted first; only an array with too few files is opened to name the missing keys.
    """
    for name, (shape, block) in blocks.items():
        folder = Path(store) / name
        if not folder.is_dir() or not block:
            continue  # inline or consolidated-only arrays have no folder to list
        grid = tuple(-(-int(s) // int(b)) for s, b in zip(shape, block))
        expected = 1
        for g in grid:
            expected *= g
        present = _present(folder)
        if len(present) >= expected:
            continue
        encode = _open_array(store, name).metadata.encode_chunk_key
        missing = [k for k in (encode(c) for c in itertools.product(*(range(g) for g in grid))) if k not in present]
        if missing:
            raise CorruptFileError(
                f"{store}: variable {name!r} is missing {len(missing)} of {expected} chunk file(s) ({_shown(missing)}); "
                "the store is incomplete: copy it again, or pass missing_chunks='fill' to read them as the fill value."
            )


def damaged_chunks(store: str, name: str, key: tuple[Any, ...], limit: int = 64) -> list[str]:
    """The keys of the chunks a block read touches that cannot be decoded (tried one by one, at most `limit`)."""
    try:
        arr = _open_array(store, name)
        block = getattr(arr, "shards", None) or arr.chunks
        ranges = []
        for k, n, b in zip(key, arr.shape, block):
            if isinstance(k, slice):
                start, stop, _ = k.indices(int(n))
                ranges.append(range(start // b, max(start, stop - 1) // b + 1))
            else:
                ranges.append(range(int(k) // b, int(k) // b + 1))
        bad = []
        for coords in itertools.islice(itertools.product(*ranges), limit):
            region = tuple(slice(c * b, min((c + 1) * b, int(n))) for c, b, n in zip(coords, block, arr.shape))
            try:
                arr[region]
            except Exception:  # noqa: BLE001 - any codec's own error: what is wanted is which chunk
                bad.append(arr.metadata.encode_chunk_key(coords))
        return bad
    except Exception:  # noqa: BLE001 - only names chunks for a message; the read's own error is raised
        return []
