"""Lazily indexed arrays over HDF5 datasets: metadata on open, data when indexed."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xarray.backends import BackendArray
from xarray.backends.file_manager import CachingFileManager
from xarray.core import indexing

from physviz.errors import CorruptFileError, NonFiniteFieldError

Key = tuple[Any, ...]  # ints and slices, one per axis (xarray's basic indexing)
NONFINITE_POLICIES = ("raise", "allow")
_H5_LOCK = threading.RLock()  # h5py is not thread-safe; serialize reads


def _key_length(k: Any, n: int) -> int | None:
    """Length of one axis after indexing with k (None when k is an int)."""
    return None if isinstance(k, (int, np.integer)) else len(range(*k.indices(n)))


class FieldArray(BackendArray):
    """A read-only array that reads only what is indexed, with a NaN/inf guard."""

    shape: tuple[int, ...]
    dtype: np.dtype
    label: str = "array"
    check_finite: bool = True

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self.read
        )

    def read(self, key: Key) -> np.ndarray:
        """Read a basic-indexed block (ints and slices, one per axis)."""
        key = tuple(key) + (slice(None),) * (len(self.shape) - len(key))
        data = self._read(key)
        if self.check_finite and data.dtype.kind in "fc" and data.size and not np.isfinite(data).all():
            self._raise_nonfinite(key, data)
        return data

    def _read(self, key: Key) -> np.ndarray:
        raise NotImplementedError

    def _raise_nonfinite(self, key: Key, data: np.ndarray) -> None:
        bad = np.argwhere(~np.isfinite(data))
        count = len(bad)
        local = iter(bad[0])
        where = []
        for k, n in zip(key, self.shape):
            if isinstance(k, (int, np.integer)):
                where.append(int(k))
            else:
                start, _, step = k.indices(n)
                where.append(start + int(next(local)) * step)
        raise NonFiniteFieldError(
            f"{self.label} holds {count} NaN/inf value(s) in the block read (first at index {tuple(where)}); "
            "fix the data or pass nonfinite='allow' to read it anyway."
        )


class H5Slab(FieldArray):
    """One field (or one component of a vector/tensor field) of an HDF5 dataset."""

    def __init__(
        self,
        manager: CachingFileManager,
        dataset: str,
        shape: Sequence[int],
        dtype: Any,
        template: Sequence[int | tuple[int]],
        label: str,
        check_finite: bool = True,
    ) -> None:
        """`template` maps each stored axis to a logical axis (int) or a fixed index ((i,))."""
        self.manager = manager
        self.dataset = dataset
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.template = tuple(template)
        self.label = label
        self.check_finite = check_finite

    def _read(self, key: Key) -> np.ndarray:
        h5key = tuple(key[t] if isinstance(t, int) else t[0] for t in self.template)
        try:
            with _H5_LOCK:
                data = self.manager.acquire()[self.dataset][h5key]
        except (OSError, RuntimeError, KeyError) as exc:
            raise CorruptFileError(
                f"{self.label} could not be read ({exc}); the file may be truncated or damaged."
            ) from exc
        return np.asarray(data)


class StackedArray(FieldArray):
    """Arrays of equal trailing shape stacked along a new or existing first axis."""

    def __init__(self, parts: Sequence[FieldArray], label: str) -> None:
        self.parts = list(parts)
        self.sizes = [p.shape[0] for p in self.parts]
        self.offsets = np.cumsum([0, *self.sizes])
        rest = {p.shape[1:] for p in self.parts}
        if len(rest) != 1:
            raise ValueError(f"cannot stack arrays of shapes {[p.shape for p in self.parts]}")
        self.shape = (int(self.offsets[-1]), *rest.pop())
        self.dtype = np.result_type(*[p.dtype for p in self.parts])
        self.label = label
        self.check_finite = False  # each part checks, naming its own file

    def _read(self, key: Key) -> np.ndarray:
        first, rest = key[0], key[1:]
        if isinstance(first, (int, np.integer)):
            i = int(first) % self.shape[0]
            part = int(np.searchsorted(self.offsets, i, side="right") - 1)
            return self.parts[part].read((i - int(self.offsets[part]), *rest))
        start, stop, step = first.indices(self.shape[0])
        indices = np.arange(start, stop, step)
        blocks = []
        owners = np.searchsorted(self.offsets, indices, side="right") - 1
        for part in dict.fromkeys(owners.tolist()):
            local = indices[owners == part] - int(self.offsets[part])
            sl = slice(int(local[0]), int(local[-1]) + 1, step)  # xarray passes step > 0
            blocks.append(self.parts[part].read((sl, *rest)))
        if not blocks:
            trailing = self.read((0, *rest)).shape
            return np.empty((0, *trailing), dtype=self.dtype)
        return np.concatenate(blocks, axis=0)


class RepeatedArray(FieldArray):
    """An array repeated `count` times along a new first axis (sample-invariant fields)."""

    def __init__(self, inner: FieldArray, count: int) -> None:
        self.inner = inner
        self.shape = (int(count), *inner.shape)
        self.dtype = inner.dtype
        self.label = inner.label
        self.check_finite = False

    def _read(self, key: Key) -> np.ndarray:
        data = self.inner.read(key[1:])
        n = _key_length(key[0], self.shape[0])
        return data if n is None else np.repeat(data[None], n, axis=0)


class VariableArray(FieldArray):
    """A guard around an xarray Variable opened lazily by another engine."""

    def __init__(
        self, variable: Any, label: str, check_finite: bool = True, locate: Callable[[Key], str] | None = None
    ) -> None:
        """`locate` names the damaged part of a block whose read failed (e.g. a Zarr store's chunk files)."""
        self.variable = variable
        self.shape = tuple(variable.shape)
        self.dtype = np.dtype(variable.dtype)
        self.label = label
        self.check_finite = check_finite
        self.locate = locate

    def _read(self, key: Key) -> np.ndarray:
        try:
            return np.asarray(self.variable[key].values)
        except (OSError, RuntimeError, ValueError, KeyError, EOFError) as exc:
            where = self.locate(key) if self.locate is not None else ""
            raise CorruptFileError(
                f"{self.label} could not be read{where} ({type(exc).__name__}: {exc}); the file may be truncated or damaged."
            ) from exc


@dataclass
class LazyVariable:
    """A variable before it becomes part of an xarray Dataset."""

    dims: tuple[str, ...]
    data: FieldArray | np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class FileContent:
    """What a reader found in a file: variables, coordinates, attrs and how to close."""

    variables: dict[str, LazyVariable]
    coords: dict[str, LazyVariable]
    attrs: dict[str, Any]
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Close every file this content holds open."""
        for close in self.closers:
            close()

    def to_dataset(self) -> Any:
        """Wrap the variables lazily into an xarray Dataset."""
        import xarray as xr

        def wrap(v: LazyVariable) -> xr.Variable:
            data = indexing.LazilyIndexedArray(v.data) if isinstance(v.data, FieldArray) else v.data
            return xr.Variable(v.dims, data, attrs=v.attrs)

        ds = xr.Dataset(
            {k: wrap(v) for k, v in self.variables.items()},
            coords={k: wrap(v) for k, v in self.coords.items()},
            attrs=self.attrs,
        )
        ds.set_close(self.close)
        return ds


def open_h5_manager(path: str) -> CachingFileManager:
    """A shared, picklable handle manager for an HDF5 file opened read-only."""
    import h5py

    return CachingFileManager(h5py.File, path, mode="r", lock=False)


class NumpyArray(FieldArray):
    """An in-memory array behind the same interface (for combining files)."""

    def __init__(self, array: np.ndarray, label: str) -> None:
        self.array = np.asarray(array)
        self.shape = self.array.shape
        self.dtype = self.array.dtype
        self.label = label
        self.check_finite = False

    def _read(self, key: Key) -> np.ndarray:
        return self.array[key]
