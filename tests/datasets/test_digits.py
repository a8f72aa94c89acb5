"""minicnn.datasets.load_digits: scikit-learn's 8x8 digits, scaled to [0, 1]."""

from __future__ import annotations

import numpy as np

from minicnn.datasets import load_digits


def test_load_digits():
    x, y = load_digits()
    assert x.shape == (1797, 8, 8, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert y.shape == (1797,) and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(10))
