"""The Trainer's verbs on a Sequential: compile (the optimizer, loss, metrics and implementation it
pins), fit (learning, seeds, resuming, a loss that diverges, its arguments), train_on_batch,
evaluate and predict."""

import numpy as np
import pytest
from example_models import (
    digits,
    every_layer_data,
    every_layer_model,
    small_digits_model,
    tiny_data,
    tiny_model,
)

from minicnn import Adam, CategoricalCrossentropy, Dense, Input, Layer, MaxPool2D, Sequential, implementation

# --------------------------------------------------------------------------- compile

def test_compile_pins_the_implementation_and_none_follows_the_active_one():
    x, _ = tiny_data()
    model = Sequential([Input((6, 6, 2)), MaxPool2D(2)])
    seen = []

    class Spy(Layer):
        def forward(self, x, training=False):
            seen.append(implementation.current())
            return x

    model.add(Spy())
    model.compile("adam", implementation="reference")
    assert model.implementation == "reference"
    model.predict(x)
    with implementation.use("fast"):
        model.predict(x)
    model.compile("adam")  # implementation=None: follow the active one
    with implementation.use("reference"):
        model.predict(x)
    model.predict(x)
    assert seen == ["reference", "reference", "reference", implementation.DEFAULT]
    with pytest.raises(ValueError, match=r"compile: implementation must be one of \('fast', 'reference'\)"):
        model.compile("adam", implementation="numpy")


def test_compile_kernels_is_the_deprecated_name_of_implementation():
    x, _ = tiny_data()
    model = Sequential([Input((6, 6, 2)), MaxPool2D(2)])
    seen = []

    class KernelsSpy(Layer):
        def forward(self, x, training=False):
            seen.append(implementation.current())
            return x

    model.add(KernelsSpy())
    with pytest.warns(DeprecationWarning, match="compile: kernels= is deprecated, use implementation="):
        model.compile("adam", kernels="reference")
    assert model.implementation == "reference"
    with implementation.use("fast"):
        model.predict(x)
    assert seen == ["reference"]
    for both in ({"implementation": "fast"}, {"implementation": None}):
        with pytest.raises(TypeError, match="compile: got both implementation= and kernels="):
            model.compile("adam", kernels="fast", **both)
    with pytest.raises(TypeError, match="compile: got both implementation= and kernels="):
        model.compile("adam", None, None, "fast", kernels="fast")  # implementation given by position
    assert model.implementation == "reference"  # unchanged by the refused calls
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="compile: implementation must be"):
        model.compile("adam", kernels="numpy")


def test_compile_rejects_a_model_without_softmax_output():
    model = Sequential([Input((4,)), Dense(3)])
    with pytest.raises(ValueError, match="softmax"):
        model.compile("adam", loss="sparse_categorical_crossentropy")


def test_compile_rejects_a_loss_on_logits_for_a_model_that_ends_in_softmax():
    model = tiny_model()
    with pytest.raises(ValueError, match="from_logits=True.*softmax"):
        model.compile("adam", loss=CategoricalCrossentropy(from_logits=True))


def test_compile_rejects_unknown_names():
    compiled = small_digits_model()
    compiled.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.raises(ValueError, match="optimizer"):
        compiled.compile("adagrad")
    with pytest.raises(ValueError, match="loss"):
        compiled.compile("adam", loss="mse")


# --------------------------------------------------------------------------- fit

def test_fit_before_compile():
    with pytest.raises(RuntimeError, match="compile"):
        small_digits_model().fit(np.zeros((2, 8, 8, 1), np.float32), [0, 1])


def test_fit_learns_the_digits():
    x, y, x_val, y_val = digits()
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


def test_training_is_repeatable_with_seeds():
    x, y, _, _ = digits()
    runs = []
    for _ in range(2):
        model = small_digits_model(seed=5)
        model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        runs.append(model.fit(x[:300], y[:300], epochs=2, verbose=0, seed=1).history["loss"])
    assert runs[0] == runs[1]


def test_resuming_with_initial_epoch_equals_an_uninterrupted_run():
    x, y = tiny_data(16)
    whole, parts = tiny_model(), tiny_model()
    for m in (whole, parts):
        m.compile("adam", loss="sparse_categorical_crossentropy")
    whole.fit(x, y, epochs=3, batch_size=4, verbose=0, seed=9)
    parts.fit(x, y, epochs=1, batch_size=4, verbose=0, seed=9)
    parts.fit(x, y, epochs=3, initial_epoch=1, batch_size=4, verbose=0, seed=9)
    for a, b in zip(whole.get_weights(), parts.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_non_finite_loss_stops_fit_naming_epoch_and_batch():
    x, y = tiny_data(16)
    model = tiny_model()
    model.compile("adam", loss="sparse_categorical_crossentropy")
    model.layers[-1].params["bias"][0] = np.inf  # logits inf - inf: the loss is NaN from the first batch
    frozen = [w.copy() for w in model.get_weights()]
    message = r"loss is nan at epoch 1, batch 1 of 4.*smaller learning rate"
    with pytest.raises(FloatingPointError, match=message):
        with np.errstate(invalid="ignore"):
            model.fit(x, y, epochs=5, batch_size=4, verbose=0)
    for before, after in zip(frozen, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)  # no step was taken with the bad gradients


@pytest.mark.parametrize("kwargs,message", [
    ({"validation_split": 0.9}, "leaves 0 for training"),
    ({"batch_size": True}, "batch_size must be an integer"),
    ({"epochs": 2, "initial_epoch": 2}, "initial_epoch"),
])
def test_fit_arguments_get_clear_errors(kwargs, message):
    x, y = tiny_data(2)
    model = tiny_model()
    model.compile("adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, verbose=0, **kwargs)


# --------------------------------------------------------------------------- evaluate and predict

def test_evaluate_matches_predict():
    x, y, _, _ = digits()
    model = small_digits_model()
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    p = model.predict(x[:100], batch_size=7).astype(np.float64)
    loss, acc = model.evaluate(x[:100], y[:100], batch_size=13)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(100), y[:100]])), rel=1e-5)
    assert acc == pytest.approx(np.mean(p.argmax(1) == y[:100]))
    np.testing.assert_allclose(model.predict(x[:100], batch_size=100), p, rtol=1e-5, atol=1e-7)


def test_evaluate_returns_a_dict_or_a_list_in_metrics_names_order():
    x, y = every_layer_data()
    model = every_layer_model()
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert model.metrics_names == ["loss", "accuracy"]
    scores = model.evaluate(x, y, return_dict=True)
    assert list(scores) == ["loss", "accuracy"]
    assert model.evaluate(x, y) == [scores["loss"], scores["accuracy"]]
    assert scores["accuracy"] == np.mean(model.predict(x).argmax(1) == y)
    model.compile("adam", loss="sparse_categorical_crossentropy")
    assert model.evaluate(x, y) == scores["loss"] and model.metrics_names == ["loss"]
    assert model.train_on_batch(x, y, return_dict=True).keys() == {"loss"}
