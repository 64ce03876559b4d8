"""The training data reads The Well's layout through the fields layer, wrapping its errors as config errors."""
from __future__ import annotations

import h5py
import pytest

from physviz.fields.well import split_files
from physviz.train import sources
from physviz.train.config import TrainConfigError
from physviz.train.sources import read_file_info
from tests.handmade import write_well_2d


def test_sources_use_the_fields_layers_split_files():
    assert sources.split_files is split_files


def test_read_well_errors_come_from_the_fields_layer_and_train_wraps_them(tmp_path):

    path = tmp_path / "a.hdf5"
    write_well_2d(path)
    with h5py.File(path, "a") as f:
        del f["dimensions/time"]
    with pytest.raises(TrainConfigError, match=r"a\.hdf5: dimensions/time is missing"):
        read_file_info(path)
