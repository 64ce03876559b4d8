"""Small helpers for reading HDF5 attributes the same way everywhere."""
from __future__ import annotations

from typing import Any

import numpy as np


def as_str(value: Any) -> str:
    """An HDF5 string attr (str, bytes or 0-d array) as str."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def as_str_list(value: Any) -> list[str]:
    """An HDF5 list-of-strings attr as a list of str."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return [as_str(value)]
    return [as_str(v) for v in np.asarray(value).ravel().tolist()]


def as_bool(value: Any, default: bool) -> bool:
    """An HDF5 boolean attr (numpy or Python) as bool, or `default` if absent."""
    if value is None:
        return default
    return bool(np.asarray(value).item())


def as_python(value: Any) -> Any:
    """A numeric HDF5 attr or 0-d dataset as a Python number (or list)."""
    arr = np.asarray(value)
    if arr.dtype.kind in "SUO":
        return as_str(value) if arr.shape == () else as_str_list(value)
    return arr.item() if arr.shape == () else arr.tolist()
