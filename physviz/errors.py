"""Errors physviz raises on bad input: one clear sentence naming what is wrong."""
from __future__ import annotations


class PhysvizError(Exception):
    """Base class of every error physviz raises about user input."""


class FieldFileNotFoundError(PhysvizError, FileNotFoundError):
    """A path given to a reader does not exist."""


class NotHDF5Error(PhysvizError):
    """A file was expected to be HDF5 (or another supported format) and is not."""


class CorruptFileError(PhysvizError):
    """A file is truncated or damaged, so its data cannot be read."""


class ExternalDataError(PhysvizError):
    """A file points at data held in other files (HDF5 external links or storage), read only when allowed."""


class UnknownLayoutError(PhysvizError):
    """An HDF5 file opens but matches none of the layouts physviz reads."""


class InconsistentShapeError(PhysvizError):
    """Arrays in a file (or files in a directory) disagree in shape or grid."""


class UnknownFieldError(PhysvizError, KeyError):
    """A field or dimension name is not known or not present."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NonFiniteFieldError(PhysvizError, ValueError):
    """A field holds NaN or infinite values."""


class SchemaError(PhysvizError, ValueError):
    """An xarray Dataset does not follow the physviz schema."""


class OptionError(PhysvizError, ValueError):
    """An option passed to a physviz function has a value it cannot take."""


class ParameterError(PhysvizError, ValueError):
    """A simulation or model parameter is out of its valid range."""


class SimulationError(PhysvizError, RuntimeError):
    """A simulation went unstable (NaN/inf) or could not advance."""


class TrainingFailedError(PhysvizError, RuntimeError):
    """A training run in a subprocess (``python -m physviz.train``) ended with a non-zero exit status."""
