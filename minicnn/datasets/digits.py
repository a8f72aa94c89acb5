"""scikit-learn's 8x8 digits: bundled, no download, for quick runs and offline tests."""

from __future__ import annotations

import numpy as np

from minicnn.datasets.base import Split


def load_digits() -> Split:
    """scikit-learn's bundled 8x8 digits: x (1797, 8, 8, 1) float32 in [0, 1], y (1797,) int64.

    The pixels are counts 0..16, so they are divided by 16 (not 255) to reach [0, 1].
    Bundled with scikit-learn, so it needs no download: handy for quick runs and offline tests.
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    digits = sklearn_load_digits()
    x = np.divide(digits.images[..., np.newaxis], 16, dtype=np.float32)
    return x, digits.target.astype(np.int64)
