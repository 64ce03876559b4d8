"""The bundled model's outputs on fixed inputs are bit-identical to the pinned ones (a refactor must not move them)."""
from __future__ import annotations

import numpy as np

from tests.model.pin_bundled import PIN, bundled_outputs


def test_bundled_model_outputs_are_bit_identical_to_the_pin() -> None:
    pinned = np.load(PIN)
    now = bundled_outputs()
    assert sorted(pinned.files) == sorted(now)
    for name, value in now.items():
        assert value.shape == pinned[name].shape, name
        assert np.isfinite(value).all(), name
        diff = np.abs(value - pinned[name]).max()
        assert np.array_equal(value, pinned[name]), f"{name} moved by up to {diff:.3g}"
