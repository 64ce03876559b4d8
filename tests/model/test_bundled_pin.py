"""The shipped models' outputs on fixed inputs match the pinned ones (a refactor must not move them).

Bit-identity holds only on the CPU that wrote the pin: other machines take other SIMD paths in
oneDNN and the fused kernels, which move float32 sums in their last bits (measured 1e-6 of the
outputs' spread between an Intel and an AMD EPYC). So the outputs must agree to 1e-4 of their
spread: far above rounding, far below any change to the model's arithmetic.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.model.pin_bundled import PINS, bundled_outputs

TOLERANCE = 1e-4


@pytest.mark.parametrize("name", sorted(PINS))
def test_shipped_model_outputs_match_the_pin(name: str) -> None:
    pinned = np.load(PINS[name])
    now = bundled_outputs(name)
    assert sorted(pinned.files) == sorted(now)
    for key, value in now.items():
        assert value.shape == pinned[key].shape, key
        assert np.isfinite(value).all(), key
        moved = float(np.abs(value - pinned[key]).max() / pinned[key].std())
        assert moved < TOLERANCE, f"{name} {key} moved by {moved:.3g} of its spread"
