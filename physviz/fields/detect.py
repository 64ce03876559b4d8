"""Tell which format a path holds, from its first bytes and its layout."""
from __future__ import annotations

import os
from pathlib import Path

from physviz.errors import FieldFileNotFoundError, NotHDF5Error, UnknownLayoutError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NETCDF3_SIGNATURES = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
SPLITS = ("train", "valid", "test")
HDF5_SUFFIXES = (".hdf5", ".h5")


def has_hdf5_signature(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the HDF5 superblock (also after a user block)."""
    with open(path, "rb") as fh:
        for offset in (0, 512, 1024, 2048, 4096):
            fh.seek(offset)
            if fh.read(8) == HDF5_SIGNATURE:
                return True
    return False


def hdf5_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The .hdf5/.h5 files directly inside a folder (hidden ones left out), sorted."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix in HDF5_SUFFIXES and not p.name.startswith(".") and p.is_file())


def is_zarr_store(path: Path) -> bool:
    """True for a Zarr v2 or v3 store directory."""
    return path.is_dir() and any((path / m).exists() for m in (".zgroup", ".zattrs", "zarr.json", ".zmetadata"))


def _why_missing(p: Path) -> str:
    """Why a path that does not exist cannot be opened: a symlink loop, a dangling link, or nothing there."""
    if p.is_symlink():
        try:
            target = p.resolve(strict=True)
        except RuntimeError:
            return f"{p}: a symbolic link that loops back on itself; point it at a field file."
        except OSError as exc:
            if "symbolic links" in str(exc):
                return f"{p}: a symbolic link that loops back on itself; point it at a field file."
            target = Path(os.readlink(p))
        return f"{p}: a symbolic link to {target}, which does not exist."
    return f"{p}: no such file or directory."


def kind_of(path: str | os.PathLike[str]) -> str:
    """One of 'hdf5', 'netcdf3', 'zarr', 'well_dataset', 'directory' for an existing path."""
    p = Path(path)
    if not p.exists():
        raise FieldFileNotFoundError(_why_missing(p))
    if p.is_dir():
        if is_zarr_store(p):
            return "zarr"
        if (p / "data").is_dir() and any((p / "data" / s).is_dir() for s in SPLITS):
            return "well_dataset"
        if any(c.suffix in HDF5_SUFFIXES for c in p.iterdir()):
            return "directory"
        raise UnknownLayoutError(
            f"{p}: this directory holds no .hdf5/.h5 files, no data/{{train,valid,test}} split and is not a Zarr store."
        )
    if not p.is_file():
        raise NotHDF5Error(f"{p}: not a regular file (a pipe, socket or device); give the path of a field file or folder.")
    if p.stat().st_size == 0:
        raise NotHDF5Error(f"{p}: the file is empty; expected HDF5, NetCDF or Zarr.")
    if has_hdf5_signature(p):
        return "hdf5"
    with open(p, "rb") as fh:
        head = fh.read(8)
    if head[:4] in NETCDF3_SIGNATURES:
        return "netcdf3"
    raise NotHDF5Error(
        f"{p}: not an HDF5 file (it starts with {head!r}, not the HDF5 signature), nor NetCDF or Zarr."
    )
