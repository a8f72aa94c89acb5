"""What fit trains on (minicnn.trainers.data_adapters): arrays as epochs of reshuffled batches,
the validation split, labels turned into the loss's targets, and clear errors for bad data."""

import numpy as np
import pytest
from example_models import digits, small_digits_model, tiny_data, tiny_model

from minicnn import SparseCategoricalCrossentropy


def test_fit_reshuffles_every_epoch_without_replacement(monkeypatch):
    x, y, _, _ = digits()
    x = x[:100].copy()
    x[:, 0, 0, 0] = np.arange(100)  # tag each sample
    model = small_digits_model()
    model.compile("adam", loss="sparse_categorical_crossentropy")
    seen = []
    original = model._train_step
    monkeypatch.setattr(model, "_train_step", lambda xb, yb, *rest: (
        seen.append(xb[:, 0, 0, 0].astype(int)), original(xb, yb, *rest))[1])
    model.fit(x, y[:100], batch_size=16, epochs=3, verbose=0, seed=0)
    epochs = [np.concatenate(seen[i * 7:(i + 1) * 7]) for i in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(100))  # every sample exactly once
    assert not np.array_equal(epochs[0], epochs[1])
    assert [len(b) for b in seen[:7]] == [16] * 6 + [4]


def test_validation_split_takes_the_last_samples_before_the_labels_are_encoded():
    x, y = tiny_data(10)
    model = tiny_model()
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=1, validation_split=0.2, verbose=0, shuffle=False)
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x[8:], y[8:])[0], rel=1e-6)


def test_integer_and_one_hot_labels_train_identically():
    x, y, _, _ = digits()
    losses = []
    for labels in (y[:64], np.eye(10, dtype=np.float32)[y[:64]]):
        model = small_digits_model(seed=2)
        model.compile("adam", loss="categorical_crossentropy" if labels.ndim == 2 else
                      "sparse_categorical_crossentropy")
        losses.append(model.fit(x[:64], labels, epochs=1, verbose=0, seed=0).history["loss"])
    assert losses[0] == losses[1]


def test_losses_say_which_labels_they_expect():
    model = tiny_model()
    model.compile("adam", loss="categorical_crossentropy")
    x, y = tiny_data()
    with pytest.raises(ValueError, match=r"categorical_crossentropy expects one-hot labels of shape \(N, 4\)"
                                         r".*sparse_categorical_crossentropy"):
        model.fit(x, y, verbose=0)
    model.compile("adam", loss=SparseCategoricalCrossentropy())
    with pytest.raises(ValueError, match=r"integer labels of shape \(N,\) or \(N, 1\).*"
                                         r"For one-hot labels use loss='categorical_crossentropy'"):
        model.fit(x, np.eye(4)[y], verbose=0)
    model.fit(x, y[:, None], verbose=0)  # (N, 1), as keras.datasets.cifar10 returns them


# --------------------------------------------------------------------------- bad input

@pytest.fixture
def compiled():
    model = small_digits_model()
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("x,y,error,message", [
    (np.zeros((4, 8, 8), np.float32), [0, 1, 2, 3], ValueError, r"\(None, 8, 8, 1\).*\(4, 8, 8\)"),
    (np.zeros((4, 8, 8, 1), np.uint8), [0, 1, 2, 3], TypeError, "uint8.*255"),
    (np.full((4, 8, 8, 1), np.nan, np.float32), [0, 1, 2, 3], ValueError, "NaN"),
    (np.zeros((4, 8, 8, 1), np.float32), [0, 1, 2], ValueError, "4 samples.*3"),
    (np.zeros((4, 8, 8, 1), np.float32), [0, 1, 2, 10], ValueError, r"\[0, 10\)"),
    (np.zeros((4, 8, 8, 1), np.float32), np.ones((4, 10)), ValueError, "one-hot.*categorical_crossentropy'"),
    (np.zeros((4, 8, 8, 1), np.float32), np.zeros((4, 3)), ValueError, r"\(N,\) or \(N, 1\)"),
    (np.zeros((4, 8, 8, 1), np.float32), np.array(["a", "b", "a", "c"]), TypeError, "LabelEncoder"),
    (np.zeros((4, 1, 8, 8), np.float32), [0, 1, 2, 3], ValueError, "channels-first.*transpose"),
])
def test_bad_data_gets_a_clear_error(compiled, x, y, error, message):
    with pytest.raises(error, match=message):
        compiled.fit(x, y, verbose=0)


@pytest.mark.parametrize("weights,message", [
    ([1.0, 1.0, 1e39, 1.0], r"fit: sample_weight must be finite as float32 .*3\.4e\+38.*"
                            r"got 1e\+39 for sample 2"),
    ([1.0, np.inf, 1.0, 1.0], r"fit: sample_weight must be finite and >= 0; got inf for sample 1"),
    ([1.0, 1.0, 1.0, -2.0], r"fit: sample_weight must be finite and >= 0; got -2\.0 for sample 3"),
])
def test_a_sample_weight_float32_cannot_hold_is_named_not_blamed_on_the_learning_rate(compiled, weights,
                                                                                     message):
    before = compiled.get_weights()
    with pytest.raises(ValueError, match=message):
        compiled.fit(np.zeros((4, 8, 8, 1), np.float32), [0, 1, 2, 3], sample_weight=np.array(weights),
                     verbose=0)
    for a, b in zip(before, compiled.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # refused before any step


def test_a_class_weight_float32_cannot_hold_is_named(compiled):
    message = r"fit: class_weight must be finite as float32.*got 1e\+300 for sample 1"
    with pytest.raises(ValueError, match=message):
        compiled.fit(np.zeros((4, 8, 8, 1), np.float32), [0, 1, 2, 3], class_weight={1: 1e300}, verbose=0)
