"""Dense (:mod:`minicnn.layers.dense`) beyond the layer spec: seeded initialisation, and images refused."""

import numpy as np
import pytest

from minicnn import Dense


def test_seeded_layers_initialise_identically():
    a, b = Dense(4, seed=3), Dense(4, seed=3)
    a.build((6,))
    b.build((6,))
    np.testing.assert_array_equal(a.params["kernel"], b.params["kernel"])


def test_dense_on_images_suggests_flatten():
    with pytest.raises(ValueError, match="Flatten"):
        Dense(3).build((4, 4, 1))
