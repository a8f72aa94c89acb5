"""The metrics (:mod:`minicnn.metrics`) against Keras': the same values, ties included, under the same names.

Skipped without TensorFlow: ``pip install -e ".[keras]"``.
"""

import os

import numpy as np
import pytest

from minicnn import Dense, Input, Sequential
from minicnn import metrics as minicnn_metrics
from minicnn.keras_compat import to_keras

from .helpers import batch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ start-up chatter
tf = pytest.importorskip("tensorflow", reason='the Keras parity tests need pip install -e ".[keras]"')
keras = pytest.importorskip("keras", reason='the Keras parity tests need pip install -e ".[keras]"')


@pytest.mark.parametrize("ours,theirs,sparse", [
    (minicnn_metrics.CategoricalAccuracy(), keras.metrics.categorical_accuracy, False),
    (minicnn_metrics.SparseCategoricalAccuracy(), keras.metrics.sparse_categorical_accuracy, True),
    (minicnn_metrics.TopKCategoricalAccuracy(), keras.metrics.top_k_categorical_accuracy, False),
    (minicnn_metrics.TopKCategoricalAccuracy(k=2),
     lambda y, p: keras.metrics.top_k_categorical_accuracy(y, p, k=2), False),
    (minicnn_metrics.SparseTopKCategoricalAccuracy(k=3),
     lambda y, p: keras.metrics.sparse_top_k_categorical_accuracy(y, p, k=3), True),
])
def test_metrics_match_keras_ties_included(ours, theirs, sparse):
    """Scores drawn from 4 values over 8 classes, so most rows have ties: exact agreement."""
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, (500, 8)).astype(np.float32)
    labels = rng.integers(0, 8, 500)
    y = labels if sparse else np.eye(8, dtype=np.float32)[labels]
    np.testing.assert_array_equal(ours(y, scores), np.asarray(theirs(y, scores)))


def test_compiled_metric_names_match_keras_logs():
    model = Sequential([Input((4,)), Dense(3, activation="softmax", seed=0)])
    keras_model = to_keras(model)
    names = ["accuracy", "top_k_categorical_accuracy", "categorical_accuracy"]
    model.compile("sgd", loss="categorical_crossentropy", metrics=names)
    keras_model.compile("sgd", loss="categorical_crossentropy", metrics=names)
    x, y = batch(model)
    ours = model.evaluate(x, y, return_dict=True)
    theirs = keras_model.evaluate(x, y, return_dict=True, verbose=0)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6)
