"""Sequential: Keras' verbs, end-to-end gradients, learning, saving, and clear errors."""

import numpy as np
import pytest
from conftest import published_model
from sklearn.datasets import load_digits

from minicnn import (
    Adam,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Input,
    MaxPool2D,
    Sequential,
    gradcheck,
    load_model,
)

# The rows of Keras 3's summary() of the published model (names, output shapes, parameters).
KERAS_SUMMARY = [
    ("conv2d (Conv2D)", "(None, 28, 28, 32)", "320"),
    ("max_pooling2d (MaxPooling2D)", "(None, 14, 14, 32)", "0"),
    ("dropout (Dropout)", "(None, 14, 14, 32)", "0"),
    ("conv2d_1 (Conv2D)", "(None, 14, 14, 64)", "18,496"),
    ("max_pooling2d_1 (MaxPooling2D)", "(None, 7, 7, 64)", "0"),
    ("dropout_1 (Dropout)", "(None, 7, 7, 64)", "0"),
    ("flatten (Flatten)", "(None, 3136)", "0"),
    ("dense (Dense)", "(None, 128)", "401,536"),
    ("dropout_2 (Dropout)", "(None, 128)", "0"),
    ("dense_1 (Dense)", "(None, 10)", "1,290"),
]


def test_summary_matches_keras():
    lines = []
    published_model().summary(print_fn=lines.append)
    text = lines[0]
    rows = [[cell.strip() for cell in line.split("│")[1:4]]
            for line in text.splitlines() if line.startswith("│")]
    assert rows == [list(r) for r in KERAS_SUMMARY]
    assert "Total params: 421,642 (1.61 MB)" in text
    assert "Trainable params: 421,642" in text
    assert published_model().count_params() == 421_642


def test_whole_published_model_gradients():
    rng = np.random.default_rng(0)
    report = gradcheck.check_model(published_model(), rng.random((3, 28, 28, 1)), [3, 1, 4])
    report.assert_ok()
    assert len(report.checks) == 9  # the input and 8 parameter tensors


def small_digits_model(seed=0):
    return Sequential([
        Input((8, 8, 1)),
        Conv2D(8, 3, padding="same", activation="relu", seed=seed),
        MaxPool2D(2),
        Dropout(0.1, seed=seed),
        Flatten(),
        Dense(32, activation="relu", seed=seed),
        Dense(10, activation="softmax", seed=seed),
    ])


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    return x[:1500], data.target[:1500], x[1500:], data.target[1500:]


def test_fit_learns_the_digits(digits):
    x, y, x_val, y_val = digits
    model = small_digits_model()
    model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.evaluate(x_val, y_val)
    history = model.fit(x, y, batch_size=32, epochs=4, validation_data=(x_val, y_val),
                        verbose=0, seed=0)
    h = history.history
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(h["loss"]) == 4 and history.epoch == [0, 1, 2, 3]
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert before[1] < 0.3 and h["val_accuracy"][-1] > 0.85
    loss, acc = model.evaluate(x_val, y_val)
    assert acc == pytest.approx(h["val_accuracy"][-1])


def test_training_is_repeatable_with_seeds(digits):
    x, y, _, _ = digits
    runs = []
    for _ in range(2):
        model = small_digits_model(seed=5)
        model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        runs.append(model.fit(x[:300], y[:300], epochs=2, verbose=0, seed=1).history["loss"])
    assert runs[0] == runs[1]


def test_fit_reshuffles_every_epoch_without_replacement(digits, monkeypatch):
    x, y, _, _ = digits
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


def test_evaluate_matches_predict(digits):
    x, y, _, _ = digits
    model = small_digits_model()
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    p = model.predict(x[:100], batch_size=7).astype(np.float64)
    loss, acc = model.evaluate(x[:100], y[:100], batch_size=13)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(100), y[:100]])), rel=1e-5)
    assert acc == pytest.approx(np.mean(p.argmax(1) == y[:100]))
    np.testing.assert_allclose(model.predict(x[:100], batch_size=100), p, rtol=1e-5, atol=1e-7)


def test_integer_and_one_hot_labels_train_identically(digits):
    x, y, _, _ = digits
    losses = []
    for labels in (y[:64], np.eye(10, dtype=np.float32)[y[:64]]):
        model = small_digits_model(seed=2)
        model.compile("adam", loss="categorical_crossentropy" if labels.ndim == 2 else
                      "sparse_categorical_crossentropy")
        losses.append(model.fit(x[:64], labels, epochs=1, verbose=0, seed=0).history["loss"])
    assert losses[0] == losses[1]


def test_save_and_load_restore_architecture_weights_and_biases(tmp_path, digits):
    x, y, _, _ = digits
    model = small_digits_model()
    model.compile("adam", loss="sparse_categorical_crossentropy")
    model.fit(x[:200], y[:200], epochs=1, verbose=0)
    assert all(np.any(layer.params["bias"] != 0) for layer in model.layers if layer.params)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load_model(path)
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    assert [a.name for a in loaded.layers] == [b.name for b in model.layers]
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x[:50]), model.predict(x[:50]))
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left


def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    model = small_digits_model()
    path = tmp_path / "model.npz"
    model.save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_set_weights_checks_shapes():
    model = small_digits_model()
    weights = model.get_weights()
    weights[0] = weights[0][..., :4]
    with pytest.raises(ValueError, match="conv2d/kernel"):
        model.set_weights(weights)


# --------------------------------------------------------------------------- bad input

@pytest.fixture
def compiled():
    model = small_digits_model()
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_fit_before_compile():
    with pytest.raises(RuntimeError, match="compile"):
        small_digits_model().fit(np.zeros((2, 8, 8, 1), np.float32), [0, 1])


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


def test_compile_rejects_a_model_without_softmax_output():
    model = Sequential([Input((4,)), Dense(3)])
    with pytest.raises(ValueError, match="softmax"):
        model.compile("adam", loss="sparse_categorical_crossentropy")


def test_compile_rejects_unknown_names(compiled):
    with pytest.raises(ValueError, match="optimizer"):
        compiled.compile("adagrad")
    with pytest.raises(ValueError, match="loss"):
        compiled.compile("adam", loss="mse")


def test_input_layer_only_first():
    with pytest.raises(ValueError, match="first"):
        Sequential([Dense(3), Input((4,))])


def test_model_builds_from_first_data_without_input_layer():
    model = Sequential([Flatten(), Dense(3, activation="softmax", seed=0)])
    out = model.predict(np.ones((2, 2, 2, 1), np.float32))
    assert out.shape == (2, 3) and model.count_params() == 4 * 3 + 3
