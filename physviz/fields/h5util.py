"""Small helpers for reading HDF5 attributes the same way everywhere."""
from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from physviz.errors import ExternalDataError, FieldFileNotFoundError, PhysvizError, SchemaError


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


def dataset(path: str, group: h5py.Group, key: str) -> h5py.Dataset:
    """group[key] as a Dataset; SchemaError naming it when it is a group (or another object)."""
    obj = group[key]
    if not isinstance(obj, h5py.Dataset):
        kind = "a group" if isinstance(obj, h5py.Group) else type(obj).__name__
        raise SchemaError(f"{path}: {obj.name.lstrip('/')} is {kind} where a dataset should be; the file's layout is damaged.")
    return obj


def read_coordinate(path: str, group: h5py.Group, key: str) -> np.ndarray:
    """A coordinate dataset's values, its size checked before it is read."""
    from physviz.fields.checks import check_coordinate_size

    dset = dataset(path, group, key)
    check_coordinate_size(f"{path}: {dset.name.lstrip('/')}", tuple(dset.shape))
    return np.asarray(dset[()])


def as_count(path: str, name: str, value: Any) -> int:
    """A non-negative whole-number attr (e.g. n_trajectories); SchemaError naming it otherwise."""
    arr = np.asarray(value)
    if arr.shape == () and arr.dtype.kind in "iu" and int(arr) >= 0:
        return int(arr)
    if arr.shape == () and arr.dtype.kind == "f" and np.isfinite(arr) and float(arr).is_integer() and arr >= 0:
        return int(arr)
    shown = as_str(value) if arr.dtype.kind in "SUO" else value
    raise SchemaError(f"{path}: attribute {name} is {shown!r}; expected a whole number of at least 0.")


def check_external(path: str, f: h5py.File, allow: bool) -> None:
    """Refuse data held in other files (external links, external storage, virtual datasets) unless `allow`.

    Such a file can make a reader show any file of the machine (e.g. /etc/passwd) as field values.
    Where allowed, a link to a file that does not exist is still named clearly.
    """
    hint = "pass allow_external=True to open_fields to read it"

    def link(name: str, info: Any) -> PhysvizError | None:  # a value returned stops the visit
        if isinstance(info, h5py.ExternalLink):
            target = f"{info.filename}:{info.path}"
            if not allow:
                return ExternalDataError(f"{path}: {name} is an external link to {target}; {hint}.")
            try:
                f[name]
            except (KeyError, OSError) as exc:
                return FieldFileNotFoundError(
                    f"{path}: {name} is an external link to {target}, which cannot be opened ({exc}); copy that file beside it."
                )
        return None

    def data(name: str, obj: Any) -> PhysvizError | None:
        if not isinstance(obj, h5py.Dataset) or allow:
            return None
        if obj.external:
            files = sorted({as_str(e[0]) for e in obj.external})
            return ExternalDataError(f"{path}: dataset {name} keeps its data in {', '.join(files)}; {hint}.")
        if obj.is_virtual:
            files = sorted({s.file_name for s in obj.virtual_sources()})
            return ExternalDataError(f"{path}: dataset {name} is a virtual dataset over {', '.join(files)}; {hint}.")
        return None

    # h5py cannot raise through its visitors; each returns the error that stops the visit
    error = f.visititems_links(link) or f.visititems(data)
    if error is not None:
        raise error
