"""The core's explicit choices outside the model: losses as objects, layers registered explicitly."""

import numpy as np
import pytest

from minicnn import CategoricalCrossentropy, Dense, Layer, SparseCategoricalCrossentropy
from minicnn.registry import LAYERS, Registry


def test_loss_objects_compute_keras_values():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    expected = -np.mean(np.log([0.7, 0.8]))
    assert SparseCategoricalCrossentropy()([0, 2], p) == pytest.approx(expected)
    assert CategoricalCrossentropy()(np.eye(3)[[0, 2]], p) == pytest.approx(expected)
    z = np.log(p) + 3.0  # logits of the same probabilities
    assert SparseCategoricalCrossentropy(from_logits=True)([0, 2], z) == pytest.approx(expected)


def test_layer_classes_are_registered_explicitly_once():
    assert {"Conv2D", "Dense", "Dropout", "Flatten", "Input", "MaxPooling2D", "ReLU", "Softmax"} <= set(
        LAYERS.names())
    assert "Dense" not in Registry("layer")  # each registry holds what was registered in it, nothing else
    subclass = type("MyDense", (Dense,), {})
    assert "MyDense" not in LAYERS  # defining a subclass registers nothing
    with pytest.raises(ValueError, match="a layer named 'Dense' is registered already"):
        LAYERS.register()(type("Dense", (Layer,), {}))
    assert LAYERS.get("Dense") is Dense and subclass is not Dense
