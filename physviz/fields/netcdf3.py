"""The extent a NetCDF3 (classic, 64-bit offset, CDF-5) header declares, to refuse truncated files."""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from physviz.errors import CorruptFileError

_NC_DIMENSION, _NC_VARIABLE, _NC_ATTRIBUTE = 0x0A, 0x0B, 0x0C
_STREAMING = 0xFFFFFFFF
# nc_type -> bytes per value (1-6 classic; 7-11 CDF-5)
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}


class _Truncated(Exception):
    """The header ends before it is complete."""


@dataclass
class _Var:
    name: str
    shape: list[int]  # the record dimension, if any, left out
    is_record: bool
    item: int
    begin: int

    @property
    def nbytes(self) -> int:
        n = self.item
        for s in self.shape:
            n *= s
        return n


class _Reader:
    """Big-endian reads of a NetCDF3 header held in memory."""

    def __init__(self, data: bytes, version: int) -> None:
        self.data, self.pos = data, 4
        self.big = version == 5  # CDF-5: 64-bit counts and sizes

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _Truncated
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def count(self) -> int:
        return struct.unpack(">Q", self.take(8))[0] if self.big else self.int32()

    def offset(self, version: int) -> int:
        return struct.unpack(">Q", self.take(8))[0] if version in (2, 5) else self.int32()

    def name(self) -> str:
        n = self.count()
        text = self.take(n)
        self.take(-n % 4)
        return text.decode("utf-8", "replace")

    def skip_attributes(self) -> None:
        tag, n = self.int32(), self.count()
        if tag not in (0, _NC_ATTRIBUTE):
            raise ValueError(f"attribute list tag {tag:#x}")
        for _ in range(n):
            self.name()
            nc_type = self.int32()
            size = self.count() * _TYPE_SIZES.get(nc_type, 0)
            if nc_type not in _TYPE_SIZES:
                raise ValueError(f"attribute type {nc_type}")
            self.take(size + (-size % 4))


def declared_extent(head: bytes) -> tuple[int, str]:
    """The byte the header says the data reaches, and the variable that reaches it (raises _Truncated, ValueError)."""
    version = head[3]
    r = _Reader(head, version)
    numrecs = r.count()
    tag, ndims = r.int32(), r.count()
    if tag not in (0, _NC_DIMENSION):
        raise ValueError(f"dimension list tag {tag:#x}")
    dims = []
    for _ in range(ndims):
        r.name()
        dims.append(r.count())
    r.skip_attributes()
    tag, nvars = r.int32(), r.count()
    if tag not in (0, _NC_VARIABLE):
        raise ValueError(f"variable list tag {tag:#x}")
    variables = []
    for _ in range(nvars):
        name = r.name()
        ids = [r.count() for _ in range(r.count())]
        if any(i >= len(dims) for i in ids):
            raise ValueError(f"variable {name!r} names dimension ids {ids} of {len(dims)}")
        r.skip_attributes()
        nc_type = r.int32()
        if nc_type not in _TYPE_SIZES:
            raise ValueError(f"variable {name!r} has type {nc_type}")
        r.count()  # vsize: capped for large variables, so recomputed from the shape
        begin = r.offset(version)
        is_record = bool(ids) and dims[ids[0]] == 0
        shape = [dims[i] for i in (ids[1:] if is_record else ids)]
        variables.append(_Var(name, shape, is_record, _TYPE_SIZES[nc_type], begin))
    end, last = r.pos, "the header"
    records = [v for v in variables if v.is_record]
    if numrecs in (_STREAMING, 0xFFFFFFFFFFFFFFFF):
        numrecs = 0  # a file still being written: its records end where the file ends
    if len(records) == 1:
        recsize = records[0].nbytes  # one record variable: records are not padded
    else:
        recsize = sum(v.nbytes + (-v.nbytes % 4) for v in records)
    for v in variables:
        if v.is_record:
            stop = v.begin + (numrecs - 1) * recsize + v.nbytes if numrecs else 0
        else:
            stop = v.begin + v.nbytes
        if stop > end:
            end, last = stop, f"variable {v.name!r}"
    return end, last


def check_complete(path: str | os.PathLike[str]) -> None:
    """Raise CorruptFileError when a NetCDF3 file is shorter than its header declares (or its header is cut)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(min(size, 1 << 20))
        try:
            try:
                end, last = declared_extent(head)
            except _Truncated:
                if len(head) == size:
                    raise
                head += fh.read()  # a header over 1 MiB (many attributes): read it all
                end, last = declared_extent(head)
        except _Truncated:
            raise CorruptFileError(
                f"{path}: the NetCDF3 file is truncated: its {size}-byte header ends before it is complete; copy it again."
            ) from None
        except (ValueError, struct.error) as exc:
            raise CorruptFileError(f"{path}: not a valid NetCDF3 file ({exc}); the file is damaged.") from None
    if end > size:
        raise CorruptFileError(
            f"{path}: the NetCDF3 file is truncated: its header declares data up to byte {end} ({last}), "
            f"but the file has {size} bytes; copy it again."
        )
