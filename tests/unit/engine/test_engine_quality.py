"""Frame quality measures keep their exact values when computed the faster way."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from bioverify.engine.quality import grey, mean_luma


@given(st.integers(1, 64), st.integers(1, 64), st.integers(0, 2**32 - 1), st.integers(0, 255))
def test_mean_luma_is_numpys_mean_of_the_luma(height: int, width: int, seed: int, top: int) -> None:
    image = np.random.default_rng(seed).integers(0, top + 1, (height, width, 3), dtype=np.uint8)
    assert mean_luma(image) == float(np.mean(grey(image)))


def test_mean_luma_of_an_empty_image_is_zero() -> None:
    assert mean_luma(np.zeros((0, 0, 3), np.uint8)) == 0.0
