"""Small helpers for reading HDF5 attributes the same way everywhere."""
from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import h5py
import numpy as np

from physviz.errors import ExternalDataError, FieldFileNotFoundError, SchemaError


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


# Whether the file being read may keep data in other files (set by the reader around one open)
ALLOW_EXTERNAL: ContextVar[bool] = ContextVar("physviz_allow_external", default=False)
_HINT = "pass allow_external=True to open_fields to read it"


def _storage_error(path: str, dset: h5py.Dataset) -> ExternalDataError | None:
    """The refusal of a dataset that keeps its data in other files (external storage or a virtual dataset)."""
    plist = dset.id.get_create_plist()
    if plist.get_external_count():
        files = sorted({as_str(e[0]) for e in dset.external or []})
        return ExternalDataError(f"{path}: dataset {dset.name.lstrip('/')} keeps its data in {', '.join(files)}; {_HINT}.")
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        files = sorted({v.file_name for v in dset.virtual_sources()})
        return ExternalDataError(f"{path}: dataset {dset.name.lstrip('/')} is a virtual dataset over {', '.join(files)}; {_HINT}.")
    return None


def dataset(path: str, group: h5py.Group, key: str) -> h5py.Dataset:
    """group[key] as a Dataset: SchemaError when it is a group; ExternalDataError when its data is in other files."""
    obj = group[key]
    if not isinstance(obj, h5py.Dataset):
        kind = "a group" if isinstance(obj, h5py.Group) else type(obj).__name__
        raise SchemaError(f"{path}: {obj.name.lstrip('/')} is {kind} where a dataset should be; the file's layout is damaged.")
    if not ALLOW_EXTERNAL.get() and (error := _storage_error(path, obj)) is not None:
        raise error
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


def check_external(path: str, f: h5py.File, allow: bool, storage: bool = False) -> None:
    """Refuse external links (unless `allow`), and with `storage` every dataset keeping its data in other files.

    Such a file can make a reader show any file of the machine (e.g. /etc/passwd) as field values.
    Where allowed, a link to a file that does not exist is still named clearly. The readers check the
    storage of each dataset they use (`dataset`); `storage` checks all, for files read by another engine.
    """
    external: list[str] = []

    def link(name: bytes, info: Any) -> None:
        if info.type == h5py.h5l.TYPE_EXTERNAL:
            external.append(name.decode("utf-8", "replace"))

    f.id.links.visit(link, info=True)  # the low-level visit: no link objects made, no files followed
    for name in external:
        target_file, target_path = f.get(name, getlink=True).filename, f.get(name, getlink=True).path
        target = f"{target_file}:{target_path}"
        if not allow:
            raise ExternalDataError(f"{path}: {name} is an external link to {target}; {_HINT}.")
        try:
            f[name]
        except (KeyError, OSError) as exc:
            raise FieldFileNotFoundError(
                f"{path}: {name} is an external link to {target}, which cannot be opened ({exc}); copy that file beside it."
            ) from None
    if storage and not allow:
        # h5py cannot raise through its visitor; the error returned stops the visit
        error = f.visititems(lambda _, obj: _storage_error(path, obj) if isinstance(obj, h5py.Dataset) else None)
        if error is not None:
            raise error
