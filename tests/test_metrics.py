"""The metrics (:mod:`minicnn.metrics`) by their definitions, and as ``compile`` takes and reports them
(the Keras comparison is in ``keras_parity/test_metrics.py``)."""

import numpy as np
import pytest

from minicnn import Dense, Input, Sequential
from minicnn import metrics as m


def test_accuracy_metrics_by_their_definition():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4], [0.2, 0.2, 0.6]])
    labels = np.array([1, 1, 0, 2])
    one_hot = np.eye(3)[labels]
    np.testing.assert_array_equal(m.CategoricalAccuracy()(one_hot, scores), [1, 0, 0, 1])
    np.testing.assert_array_equal(m.SparseCategoricalAccuracy()(labels, scores), [1, 0, 0, 1])
    np.testing.assert_array_equal(m.SparseCategoricalAccuracy()(labels[:, None], scores), [1, 0, 0, 1])
    np.testing.assert_array_equal(m.TopKCategoricalAccuracy(k=2)(one_hot, scores), [1, 1, 1, 1])
    np.testing.assert_array_equal(m.SparseTopKCategoricalAccuracy(k=1)(labels, scores), [1, 0, 0, 1])


def test_top_k_counts_ties_as_in_top_k():
    """in_top_k: a class is in the top k when fewer than k classes score strictly higher."""
    scores = np.array([[0.2, 0.2, 0.2, 0.4]])
    assert m.SparseTopKCategoricalAccuracy(k=2)([0], scores)[0] == 1.0  # one higher: 0.4
    assert m.SparseTopKCategoricalAccuracy(k=1)([0], scores)[0] == 0.0
    assert m.SparseTopKCategoricalAccuracy(k=2)([3], scores)[0] == 1.0


def model_with(metrics, loss="sparse_categorical_crossentropy"):
    model = Sequential([Input((6,)), Dense(7, activation="softmax", seed=0)])
    model.compile("adam", loss=loss, metrics=metrics)
    return model


def test_fit_and_evaluate_report_every_metric_under_its_name():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 6)).astype(np.float32), rng.integers(0, 7, 50)
    model = model_with(["acc", "sparse_top_k_categorical_accuracy", m.SparseTopKCategoricalAccuracy(k=2,
                                                                                                   name="top2")])
    assert model.metrics_names == ["loss", "acc", "sparse_top_k_categorical_accuracy", "top2"]
    p = model.predict(x)
    rank = (p > p[np.arange(50), y][:, None]).sum(axis=1)  # classes scored above the label
    scores = model.evaluate(x, y, batch_size=7, return_dict=True)
    assert scores["acc"] == pytest.approx(np.mean(p.argmax(1) == y))
    assert scores["sparse_top_k_categorical_accuracy"] == pytest.approx(np.mean(rank < 5))
    assert scores["top2"] == pytest.approx(np.mean(rank < 2))
    assert model.evaluate(x, y, batch_size=7) == [scores[name] for name in model.metrics_names]
    history = model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y))
    assert set(history.history) == {"loss", "acc", "sparse_top_k_categorical_accuracy", "top2", "val_loss",
                                    "val_acc", "val_sparse_top_k_categorical_accuracy", "val_top2"}


def test_compile_rejects_unknown_or_duplicate_metrics():
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        model_with(["f1"])
    with pytest.raises(ValueError, match="metric names must be unique"):
        model_with(["accuracy", "accuracy"])


@pytest.mark.parametrize("make,message", [
    (lambda: m.TopKCategoricalAccuracy(k=0), "k must be"),
])
def test_bad_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()
