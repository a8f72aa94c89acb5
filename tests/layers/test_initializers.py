"""The kernel initialisers (:mod:`minicnn.layers.initializers`) have Keras' variances."""

import numpy as np
import pytest

from minicnn.layers import initializers

rng = np.random.default_rng


@pytest.mark.parametrize("name,fan_in,fan_out", [("glorot_uniform", 300, 200), ("he_uniform", 300, 200),
                                                 ("he_normal", 300, 200)])
def test_initializers_have_keras_variances(name, fan_in, fan_out):
    values = initializers.INITIALIZERS[name]((400, 500), fan_in, fan_out, rng(0))
    assert values.dtype == np.float32
    values = values.astype(np.float64)
    expected = {"glorot_uniform": 2 / (fan_in + fan_out), "he_uniform": 2 / fan_in, "he_normal": 2 / fan_in}
    assert abs(values.var() / expected[name] - 1) < 0.02
    assert abs(values.mean()) < 0.01 * np.sqrt(expected[name])
    if name == "he_normal":  # truncated at two of the untruncated deviations
        assert np.abs(values).max() <= 2 * np.sqrt(2 / fan_in) / 0.87962566103423978
