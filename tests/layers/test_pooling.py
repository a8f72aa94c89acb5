"""MaxPooling2D (:mod:`minicnn.layers.pooling`) beyond the layer spec: gradient checks on random shapes."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minicnn import MaxPool2D, gradcheck


@given(n=st.integers(1, 3), h=st.integers(2, 9), w=st.integers(2, 9), c=st.integers(1, 3),
       pool=st.integers(1, 3), stride=st.integers(1, 3))
def test_maxpool_gradients_on_random_shapes(n, h, w, c, pool, stride):
    if pool > min(h, w):
        return
    x = np.random.default_rng(h * w).permutation(n * h * w * c).reshape(n, h, w, c) * 0.1  # no ties
    gradcheck.check_layer(MaxPool2D(pool, strides=stride), x).assert_ok()
